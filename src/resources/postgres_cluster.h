// The base's PostgreSQL cluster: one PostgreSQL 15 cluster per adhoc home, shared by
// every environment of that home (DESIGN: base; the seed's shared RDS).
//
// Layout (paths.h): data in paths::PostgresData(home), the private Unix socket folder
// paths::PostgresRun(home) (mode 0700: only its owner, and root, reach the socket, where
// the `postgres` superuser logs in without a password), the server log
// paths::PostgresLog(home). Over TCP every role needs its password (scram-sha-256).
//
// Root: PostgreSQL refuses to run as root, so when the caller's euid is 0 the data, run
// and log paths belong to the `postgres` OS user and initdb/pg_ctl run as that user.
// Otherwise everything runs as the calling user.
//
// The cluster listens ONLY on the address and port the caller gives (an address of the
// home's own loopback range, never 127.0.0.1, so it never meets the machine's own
// cluster). Settings are written on every Start, so a new address or port applies at the
// next start. Commits are durable (synchronous_commit, fsync and full_page_writes on): a
// confirmed COMMIT survives a kill -9 of the server and a crash of the machine.
//
// Thread-safety: not thread-safe (it caches the tool folder); the operations are not
// atomic against each other either, so callers serialize them per home (the base's lock).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/exec.h"
#include "common/result.h"

namespace adhoc::resources {

// The folder holding initdb, pg_ctl and postgres: /usr/lib/postgresql/15/bin when it
// has them, else `pg_config --bindir` when that folder has them.
Result<std::filesystem::path> FindPostgresBinDir();

struct PostgresClusterOptions {
  std::string listen_address;  // required: the one TCP address the cluster listens on
  int port = 5432;
  int max_connections = 500;      // many environments, each with a pool (PostgreSQL's default: 100)
  std::filesystem::path bin_dir;  // empty: FindPostgresBinDir()
  std::chrono::seconds start_timeout{60};
};

struct PostgresClusterStatus {
  bool initialized = false;  // initdb has run (PG_VERSION exists)
  bool running = false;      // a postmaster serves the data folder
  pid_t pid = 0;             // the postmaster's pid when running
};

class PostgresCluster {
 public:
  PostgresCluster(std::filesystem::path home, PostgresClusterOptions options);

  // Runs initdb once (superuser `postgres`, UTF8, C.UTF-8 locale, local trust over the
  // private socket, scram-sha-256 over TCP); a no-op when already initialized. As root it
  // also makes the home traversable (0711: passable, not listable) so the `postgres` user
  // can reach its folders (base/ and base/postgres/ are 0711 too), and fails clearly if a
  // parent of the home is not traversable.
  Status Init();

  // Starts the server (`pg_ctl start -w`) if it is not running; idempotent. Init()s first
  // when needed. A Conflict error when the address:port is already taken.
  Status Start();

  // `pg_ctl stop -m fast`; a no-op when not running.
  Status Stop();

  // Running? via `pg_ctl status`.
  Result<PostgresClusterStatus> GetStatus();

  // Stops the server and removes the cluster's folder (data, socket folder, log).
  Status Destroy();

  const std::filesystem::path& home() const { return home_; }
  const std::string& listen_address() const { return options_.listen_address; }
  int port() const { return options_.port; }
  // Where the server's Unix socket lives (libpq's host for the admin connection).
  std::filesystem::path SocketDir() const;

 private:
  // Runs a server tool from bin_dir (as `postgres` when root) with a clean environment.
  Result<ExecResult> RunTool(const std::string& tool, const std::vector<std::string>& args);
  Status RunToolOk(const std::string& tool, const std::vector<std::string>& args);
  Status WriteSettings();

  std::filesystem::path home_;
  PostgresClusterOptions options_;
};

// The settings file the cluster reads at start (postgresql.conf includes it). Pure, for tests.
std::string RenderPostgresSettings(const PostgresClusterOptions& options,
                                   const std::filesystem::path& socket_dir,
                                   const std::filesystem::path& log_file);

// pg_hba.conf: trust over the private socket, scram-sha-256 over loopback TCP, nothing else.
std::string RenderPostgresHba();

}  // namespace adhoc::resources
