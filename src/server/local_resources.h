// The real EnvResources: the release cache, the home's PostgreSQL cluster (as `postgres` when
// root), one Redis per environment, the environment folders, and the router through RouterLink.
// Thread-safe: starting the base is serialized by a mutex; the rest acts on one environment's
// own things, and the caller serializes operations on one environment.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "server/env_resources.h"
#include "server/fork_servers.h"
#include "server/router_link.h"

namespace adhoc::server {

class LocalResources : public EnvResources {
 public:
  // `on_router_started` is called (without locks held) when EnsureRouter started a new router,
  // which starts empty: the caller feeds it the whole table.
  // `fork_servers` (may be null): a release ready for an image with `python` gets its fork
  // server started at once, so it imports while the rest of an `up` runs.
  LocalResources(std::filesystem::path home, int postgres_port, RouterLink& router,
                 std::function<void()> on_router_started, ForkServers* fork_servers = nullptr);
  // Waits for a spare copy being made (resources/templates.h), if any.
  ~LocalResources() override;

  Result<BuiltRelease> EnsureRelease(const spec::Image& image, const git::ResolvedVersion& version,
                                     const std::filesystem::path& repo) override;
  Status EnsurePostgres() override;
  Status EnsureRouter() override;
  Status CheckRouterPort() override;
  std::string PostgresHost() const override;
  int PostgresPort() const override { return postgres_port_; }
  Result<state::DatabaseCredentials> CreateDatabase(const std::string& env,
                                                    const std::string& database) override;
  Result<state::DatabaseCredentials> CreateRole(const std::string& env,
                                                const std::string& database) override;
  Status DropDatabases(const std::string& env) override;
  Result<RedisEndpoint> EnsureRedis(const std::string& env, const std::string& address,
                                    int memory_mib) override;
  Status StopRedis(const std::string& env, const std::string& address) override;
  Status DestroyRedis(const std::string& env, const std::string& address) override;
  // For the control plane's loop: starts `env`'s Redis again if it died, unless it was
  // stopped on purpose (StopRedis or DestroyRedis, until the next EnsureRedis). One Redis
  // start or stop of an environment at a time, so this never undoes a stop running meanwhile.
  Status KeepRedisRunning(const std::string& env, const std::string& address, int memory_mib);
  Status CreateFolders(const std::string& env) override;
  Status RemoveFolders(const std::string& env) override;
  Result<int64_t> DumpDatabase(const std::string& database,
                               const std::filesystem::path& file) override;
  Status LoadDatabase(const std::string& env, const std::string& database,
                      const std::filesystem::path& file) override;
  Result<int64_t> DumpRedis(const RedisEndpoint& redis, const std::filesystem::path& file) override;
  Result<int64_t> LoadRedis(const RedisEndpoint& redis, const std::filesystem::path& file) override;
  Status KeepStartDatabase(const std::string& env, const std::string& database) override;
  Status ResetDatabase(const std::string& env, const std::string& database) override;
  // Also has the template's next spare copy made, on a thread of its own, a moment later: off
  // the path of the operation that took this one.
  Result<TemplateCopy> CopyDatabaseTemplate(const std::string& env, const std::string& database,
                                            const std::string& key, const std::string& release,
                                            const TemplateBuild& build) override;
  Result<bool> CopyStaticCache(const std::string& env, const std::string& key,
                               const std::string& release,
                               const std::function<Status()>& build) override;

  // Templates whose build a dead control plane left unfinished, removed (recovery only: no
  // build runs then). Nothing to do when the home has no cluster.
  Status RemoveUnfinishedTemplates();

  // Stops the cluster (base down).
  Status StopPostgres();

 private:
  // Failed when the home's state.db is gone: nothing may be started into a removed home.
  Status CheckHomeKept() const;
  std::shared_ptr<std::mutex> RedisLock(const std::string& env);
  Result<RedisEndpoint> StartRedis(const std::string& env, const std::string& address,
                                   int memory_mib);
  std::mutex redis_mu_;  // the two below
  std::map<std::string, std::shared_ptr<std::mutex>> redis_locks_;
  std::set<std::string> redis_stopped_;
  std::filesystem::path home_;
  int postgres_port_;
  RouterLink& router_;
  std::function<void()> on_router_started_;
  ForkServers* fork_servers_;
  std::mutex base_mu_;
  // One mutex per cache key: a cache is built once even when environments ask at once.
  std::shared_ptr<std::mutex> KeyLock(const std::string& key);
  std::mutex keys_mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> key_locks_;
  // Spare copies to make, one at a time; a failure only means the next copy is slower.
  void QueueSpare(const std::string& key);
  void MakeSpares();
  static constexpr std::chrono::seconds kSpareDelay{1};
  std::mutex spares_mu_;
  std::condition_variable spares_cv_;
  std::deque<std::string> spares_wanted_;
  bool spares_stop_ = false;
  std::thread spares_thread_;
};

}  // namespace adhoc::server
