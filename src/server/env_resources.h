// What an environment is made of besides its processes: releases, the base (PostgreSQL and the
// router), its database and role, its Redis, its folders. The executor acts through this
// narrow interface; LocalResources (local_resources.h) is the real one, tests use a fake.
// Every removal is idempotent (removing what is gone succeeds), so an interrupted destroy or
// undo can be run again. Implementations must be safe to call from several operation threads.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/git.h"
#include "common/result.h"
#include "spec/spec.h"
#include "state/records.h"

namespace adhoc::server {

struct RedisEndpoint {
  std::string host;
  int port = 0;
  std::string password;
};

struct BuiltRelease {
  std::filesystem::path path;
  bool built_now = false;
};

class EnvResources {
 public:
  virtual ~EnvResources() = default;

  // The release of `image` at `version`, built once (cached by tree and build inputs).
  virtual Result<BuiltRelease> EnsureRelease(const spec::Image& image,
                                             const git::ResolvedVersion& version,
                                             const std::filesystem::path& repo) = 0;

  // The base: the shared PostgreSQL cluster, the router (fed the whole table when it starts).
  virtual Status EnsurePostgres() = 0;
  virtual Status EnsureRouter() = 0;
  // A Conflict naming the address when the router is not running and its port is taken.
  virtual Status CheckRouterPort() = 0;
  // Where environments reach the cluster.
  virtual std::string PostgresHost() const = 0;
  virtual int PostgresPort() const = 0;

  // The environment's role and database (idempotent; a fresh password).
  virtual Result<state::DatabaseCredentials> CreateDatabase(const std::string& env,
                                                            const std::string& database) = 0;
  // The environment's role alone (a fresh password) and the credentials for `database`, which
  // CopyDatabaseTemplate then makes.
  virtual Result<state::DatabaseCredentials> CreateRole(const std::string& env,
                                                        const std::string& database) = 0;
  // Every database of the environment, then its role.
  virtual Status DropDatabases(const std::string& env) = 0;

  // The environment's Redis on `address`, started unless it runs (data kept across restarts),
  // bounded to `memory_mib` ([redis] memory; a running one is changed live); 0 keeps the bound
  // it has (for a caller without the environment's files).
  virtual Result<RedisEndpoint> EnsureRedis(const std::string& env, const std::string& address,
                                            int memory_mib) = 0;
  // Stopped after saving its data (a sleep); a no-op when it does not run.
  virtual Status StopRedis(const std::string& env, const std::string& address) = 0;
  // Stopped and its data removed.
  virtual Status DestroyRedis(const std::string& env, const std::string& address) = 0;

  virtual Status CreateFolders(const std::string& env) = 0;
  // Its folders and its access log.
  virtual Status RemoveFolders(const std::string& env) = 0;

  // The caches of what every environment on one release would compute alike (issue 12). `key`
  // names the inputs (16 hex digits), `release` the release it was made for ("<image>/<key>",
  // what `adhoc gc` looks at). One build per key at a time: a caller that finds one running
  // waits for it and then copies. A failed build leaves nothing cached. Both return whether
  // this call built the cache.
  //
  // The environment's `database` (just created by this operation, empty) becomes a copy of the
  // migrated template `key`; `build` first runs the cached tasks against the template's
  // credentials when it is not built yet.
  using TemplateBuild = std::function<Status(const state::DatabaseCredentials& template_database)>;
  struct TemplateCopy {
    bool built = false;  // this call built the template
    bool spare = false;  // the copy was the one made ahead (resources/templates.h)
  };
  virtual Result<TemplateCopy> CopyDatabaseTemplate(const std::string& env,
                                                    const std::string& database,
                                                    const std::string& key,
                                                    const std::string& release,
                                                    const TemplateBuild& build) = 0;
  // The environment's static folder gets the cached files of `key` (hard links); when there
  // are none yet, `build` writes them into that folder first and they are kept.
  virtual Result<bool> CopyStaticCache(const std::string& env, const std::string& key,
                                       const std::string& release,
                                       const std::function<Status()>& build) = 0;

  // --- Data: snapshots, start data, data sources (resources/snapshots.h). Files are 0600. ---
  // `database` saved into `file` (pg_dump's custom format) without disturbing its users;
  // returns the file's size.
  virtual Result<int64_t> DumpDatabase(const std::string& database,
                                       const std::filesystem::path& file) = 0;
  // `env`'s `database` emptied (made again, empty) and loaded from `file` (pg_dump's custom
  // format or plain SQL); every object is owned by the environment's role.
  virtual Status LoadDatabase(const std::string& env, const std::string& database,
                              const std::filesystem::path& file) = 0;
  // Every key of the Redis at `redis` into `file`; returns how many.
  virtual Result<int64_t> DumpRedis(const RedisEndpoint& redis,
                                    const std::filesystem::path& file) = 0;
  // The Redis at `redis` emptied, then given the keys of `file`; returns how many.
  virtual Result<int64_t> LoadRedis(const RedisEndpoint& redis,
                                    const std::filesystem::path& file) = 0;
  // `env`'s start copy of its `database` made, replacing an older one.
  virtual Status KeepStartDatabase(const std::string& env, const std::string& database) = 0;
  // `database` replaced by a fresh clone of `env`'s start copy (its connections ended);
  // NotFound when there is no start copy.
  virtual Status ResetDatabase(const std::string& env, const std::string& database) = 0;
};

}  // namespace adhoc::server
