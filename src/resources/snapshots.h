// An environment's data as files and copies: what `adhoc snapshot`, `adhoc reset` and an env
// file's `data = "snapshot:|env:|file:"` are made of (DESIGN: "resources: ... snapshots").
//
// Redis: every key of every logical database, read with SCAN + DUMP + PTTL (no command that
// blocks the server or its clients), written to a keys file; restored with FLUSHALL and then
// RESTORE ... REPLACE. The file is the RESTORE commands themselves in Redis's protocol, after a
// header line ("adhoc-redis-keys 1\n"), so restoring is streaming it back. Keys that expire or
// change while SCAN runs are taken as SCAN finds them: each key is whole, the set is not one
// instant (Redis has no snapshot of its own that leaves clients alone without a fork).
//
// PostgreSQL, as files: pg_dump's custom format (a consistent snapshot, taking no lock that
// blocks the environment's reads or writes), loaded into a new, empty database so that every
// object is created as (and so owned by) the environment's role: custom-format dumps with
// pg_restore --no-owner --no-privileges --role, plain SQL (pg_dump's default format, the
// seed's "SQL dump of pre-production") with psql in one transaction after SET ROLE, its
// ownership and privilege statements left out the way --no-owner --no-privileges would.
//
// PostgreSQL, as copies in the cluster (reset): the start copy "adhoc-start-<env>" is a
// CREATE DATABASE ... TEMPLATE clone of the environment's database made when its creation
// finished, owned by its role, marked "adhoc:env=<env>" (so destroy and gc find it), and
// closed to connections (datallowconn = false). A reset clones it again and swaps the clone
// in for the live database: DROP ... WITH (FORCE) ends the environment's own connections, then
// a RENAME; the environment's services keep running (Django connects per request).
//
// Every outside touchpoint is narrow: Redis through RedisClient, PostgreSQL's tools through
// PgTools::exec, SQL through SqlSession (databases.h); fakes stand in for them in tests.
// Files written here are 0600. Not thread-safe per object; callers serialize per environment.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/exec.h"
#include "common/result.h"
#include "resources/databases.h"
#include "resources/redis.h"

namespace adhoc::resources {

// ---- Redis ---------------------------------------------------------------------------

// One Redis server: each call sends its commands at once and returns every reply in order.
class RedisClient {
 public:
  virtual ~RedisClient() = default;
  virtual Result<std::vector<RespReply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands) = 0;
};

// The real one: a connection per call (AUTH first when `password` is not empty).
std::unique_ptr<RedisClient> MakeRedisClient(std::string host, int port, std::string password);

struct RedisKeysCount {
  int64_t keys = 0;
  int64_t bytes = 0;  // of the keys file
};

// Every key of every database of `redis` into `file` (created 0600, replaced).
Result<RedisKeysCount> DumpRedisKeys(RedisClient& redis, const std::filesystem::path& file);
// `redis` emptied (FLUSHALL), then every key of `file` restored with its time to live.
// A file that is not a keys file is a BadInput, before anything is flushed.
Result<RedisKeysCount> RestoreRedisKeys(RedisClient& redis, const std::filesystem::path& file);

// ---- PostgreSQL's tools ----------------------------------------------------------------

struct PgTools {
  std::filesystem::path bin_dir;     // pg_dump, pg_restore, psql
  std::filesystem::path socket_dir;  // the cluster's private socket folder (superuser, trust)
  int port = 5432;
  std::filesystem::path scratch_dir;  // private (0700) folder for a filtered plain dump
  // Runs a tool; Exec by default (tests put a fake here).
  std::function<Result<ExecResult>(const std::vector<std::string>&, const ExecOptions&)> exec;
};

// The tools of a home's cluster (bin_dir: FindPostgresBinDir(); scratch_dir made 0700).
Result<PgTools> PgToolsFor(const std::filesystem::path& home, int port);

// `database` into `file` in pg_dump's custom format (0600). Returns the file's size.
Result<int64_t> DumpDatabase(const PgTools& tools, const std::string& database,
                             const std::filesystem::path& file);

// Whether `file` is in pg_dump's custom format (else it is taken as plain SQL).
bool IsCustomFormatDump(const std::filesystem::path& file);

// `file` (custom format or plain SQL) into `database`, an existing empty database, every
// object created as `role`. Errors end with the tool's last lines.
Status LoadDatabase(const PgTools& tools, const std::filesystem::path& file,
                    const std::string& database, const std::string& role);

// Plain SQL without the statements that name roles: `ALTER ... OWNER TO`, `GRANT`, `REVOKE`,
// `SET SESSION AUTHORIZATION`, `COMMENT ON EXTENSION` (statements of pg_dump's own form: one
// line each), outside COPY data. Pure, for tests.
void FilterPlainDump(std::istream& in, std::ostream& out);

// ---- Copies in the cluster -------------------------------------------------------------

std::string StartCopyName(const std::string& env);   // "adhoc-start-<env>"
std::string ResetCloneName(const std::string& env);  // "adhoc-reset-<env>": a reset's clone

// `copy` made from `live` (replacing an older copy), owned by `role`, marked for `env`, closed
// to connections. A live database that has connections (a worker keeping one) is closed to new
// ones for the moment of the copy and its connections ended; it is open again afterwards,
// whatever happened.
Status MakeStartCopy(SqlSession& admin, const std::string& env, const std::string& role,
                     const std::string& live, const std::string& copy);

// `live` replaced by a new clone of `copy` (which must exist: NotFound otherwise). Until the
// drop, the live database is untouched: a failure before it leaves it as it was.
Status SwapInStartCopy(SqlSession& admin, const std::string& env, const std::string& role,
                       const std::string& copy, const std::string& live);

Result<bool> StartCopyExists(SqlSession& admin, const std::string& copy);

// `database` dropped (its connections ended) and made again empty from template0, owned by
// `role`, with an environment database's grants and mark: where a dump is loaded.
Status RecreateEmpty(SqlSession& admin, const std::string& env, const std::string& role,
                     const std::string& database);

}  // namespace adhoc::resources
