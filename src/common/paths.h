// The on-disk layout of an adhoc home: the one place that knows where things live.
//
// The home is chosen by HomeDir(): $ADHOC_HOME if set; else /var/lib/adhoc when
// running as root; else $XDG_DATA_HOME/adhoc or ~/.local/share/adhoc.
//
//   <home>/
//     state.db                     SQLite state store (WAL): environments, tasks, journal
//     server.lock                  held by the one `adhoc serve` of this home
//     server.sock                  the control plane's API (HTTP+JSON), mode 0660
//     server.log                   the control plane's own log
//     secrets.key                  key that encrypts {secret.*} values, mode 0600
//     api-token                    the token of the API over TCP (adhoc.<domain>), mode 0600
//     router/
//       router.sock                the router's feed socket (control plane -> router)
//       router.pid, router.log
//       access/<env>.log           JSON-lines access log per environment
//     base/postgres/
//       data/                      the shared cluster (owned by `postgres` when root)
//       run/                       its Unix socket directory
//       postgres.log
//     releases/
//       <image>/<tree>/            a built release, shared by every env on that tree
//       .building/<image>-<tree>-<pid>/   a build in progress (renamed when done)
//     envs/<env>/
//       static/                    {static}: static and media files, served by the router
//       redis/                     redis.conf, dump.rdb
//       tasks/<task-id>/           one task's folder, written by its shim:
//         shim.json                pid + start time of the shim and of the task
//         exit                     the task's exit status, written when it ends
//         work/                    {taskdir}: the task's writable folder, templates rendered here
//       logs/<service-or-task>/<task-id>.log   output with timestamps, rotated by size
//       start/                     its start data, for `adhoc reset` (0700):
//         redis.keys               its Redis keys when creation finished (0600)
//         start.json               the versions it was taken on
//                                  (its database: the cluster's "adhoc-start-<env>")
//     snapshots/                   saved data (0700), `adhoc snapshot ENV NAME`:
//       <name>/database.dump       pg_dump's custom format (0600)
//       <name>/redis.keys          the Redis keys (0600)
//       .incoming/<name>-<pid>/    one being taken (renamed when done)
//
// Thread-safe: pure functions of their arguments and the process environment.
#pragma once

#include <filesystem>
#include <string>

namespace adhoc::paths {

namespace fs = std::filesystem;

// The home directory as described above (not created).
fs::path HomeDir();

inline fs::path StateDb(const fs::path& home) { return home / "state.db"; }
inline fs::path ServerLock(const fs::path& home) { return home / "server.lock"; }
inline fs::path ServerSocket(const fs::path& home) { return home / "server.sock"; }
inline fs::path ServerLog(const fs::path& home) { return home / "server.log"; }
inline fs::path SecretsKey(const fs::path& home) { return home / "secrets.key"; }
inline fs::path ApiToken(const fs::path& home) { return home / "api-token"; }

inline fs::path RouterDir(const fs::path& home) { return home / "router"; }
inline fs::path RouterSocket(const fs::path& home) { return RouterDir(home) / "router.sock"; }
inline fs::path RouterPid(const fs::path& home) { return RouterDir(home) / "router.pid"; }
inline fs::path RouterLog(const fs::path& home) { return RouterDir(home) / "router.log"; }
inline fs::path AccessLog(const fs::path& home, const std::string& env) {
  return RouterDir(home) / "access" / (env + ".log");
}

inline fs::path PostgresDir(const fs::path& home) { return home / "base" / "postgres"; }
inline fs::path PostgresData(const fs::path& home) { return PostgresDir(home) / "data"; }
inline fs::path PostgresRun(const fs::path& home) { return PostgresDir(home) / "run"; }
inline fs::path PostgresLog(const fs::path& home) { return PostgresDir(home) / "postgres.log"; }

inline fs::path ReleasesDir(const fs::path& home) { return home / "releases"; }
// Fork servers (server/fork_servers.h): one folder per release and modules, and the program.
inline fs::path ForkServersDir(const fs::path& home) { return home / "forks"; }
inline fs::path Release(const fs::path& home, const std::string& image, const std::string& tree) {
  return ReleasesDir(home) / image / tree;
}
inline fs::path BuildingDir(const fs::path& home) { return ReleasesDir(home) / ".building"; }
// HOME of build commands: shared so npm's and pip's caches serve every build.
inline fs::path BuildHome(const fs::path& home) { return ReleasesDir(home) / ".home"; }

// Files a task wrote into {static}, kept per cache key (resources/static_cache.h).
inline fs::path StaticCacheDir(const fs::path& home) { return home / "cache" / "static"; }
inline fs::path EnvsDir(const fs::path& home) { return home / "envs"; }
inline fs::path EnvDir(const fs::path& home, const std::string& env) { return EnvsDir(home) / env; }
inline fs::path StaticDir(const fs::path& home, const std::string& env) {
  return EnvDir(home, env) / "static";
}
inline fs::path RedisDir(const fs::path& home, const std::string& env) {
  return EnvDir(home, env) / "redis";
}
inline fs::path TasksDir(const fs::path& home, const std::string& env) {
  return EnvDir(home, env) / "tasks";
}
inline fs::path TaskDir(const fs::path& home, const std::string& env, const std::string& task_id) {
  return TasksDir(home, env) / task_id;
}
inline fs::path TaskWorkDir(const fs::path& home, const std::string& env,
                            const std::string& task_id) {
  return TaskDir(home, env, task_id) / "work";
}
inline fs::path LogsDir(const fs::path& home, const std::string& env) {
  return EnvDir(home, env) / "logs";
}
inline fs::path TaskLog(const fs::path& home, const std::string& env, const std::string& process,
                        const std::string& task_id) {
  return LogsDir(home, env) / process / (task_id + ".log");
}

// Data: snapshots and each environment's start data (see the drawing above).
inline fs::path SnapshotsDir(const fs::path& home) { return home / "snapshots"; }
inline fs::path SnapshotDir(const fs::path& home, const std::string& name) {
  return SnapshotsDir(home) / name;
}
inline fs::path IncomingSnapshotsDir(const fs::path& home) {
  return SnapshotsDir(home) / ".incoming";
}
inline fs::path StartDataDir(const fs::path& home, const std::string& env) {
  return EnvDir(home, env) / "start";
}

}  // namespace adhoc::paths
