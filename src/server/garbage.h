// `adhoc gc`: what no environment owns, found and removed. An environment owns what carries
// its name (DESIGN: nothing is left that no environment owns); anything else of adhoc's in
// the home is garbage, left by a crash, a hand, or an older adhoc:
//
//   process   a process tied to envs/<name>/ (its command line, working folder or
//             environment names it: a task, its shim, a Redis) when <name> has no record
//   database  a database of the home's cluster marked "adhoc:env=<name>" (every one adhoc
//   role      makes is, databases.h), and such a role, when <name> has no record
//   route     an environment in the router's table with no record
//   folder    envs/<name>/ with no record (its Redis data, static files, task folders, logs)
//   log       router/access/<name>.log with no record
//   fork-server  the fork server (server/fork_servers.h) of a release no environment uses
//   release   a release of the cache that no environment's recorded versions or tasks use
//   template  a migrated template database (resources/templates.h) built for such a release
//             (one still being built is left to the next build of its key)
//   static    cached static files (resources/static_cache.h) kept for such a release
//
// Inventory() looks at the home first and at the records last, so something made while it
// looks (a record always comes before its folder, database and processes) is never taken
// for garbage. FindGarbage() is the pure decision. Remove() removes in an order that leaves
// nothing running on what it removes: processes, routes, databases and roles, folders, logs,
// fork servers, releases. Each removal is independent: one that fails is reported and the others go
// on. Not thread-safe; the control plane runs one gc at a time.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "resources/databases.h"
#include "resources/release_cache.h"
#include "resources/static_cache.h"
#include "resources/templates.h"
#include "server/fork_servers.h"
#include "server/router_link.h"
#include "state/store.h"

namespace adhoc::server {

struct Garbage {
  std::string kind;  // process, database, role, route, folder, log, release, template, static
  std::string name;  // pid, database or role name, environment name, image/key
  std::string env;   // the environment it was made for ("" for releases)
  std::string detail;
  std::string error;  // set by Remove() when this one could not be removed
};

struct HomeProcess {
  pid_t pid = 0;
  std::string env;  // the envs/<env>/ it is tied to
  std::string cmdline;
};

struct HomeInventory {
  std::set<std::string> recorded;  // environments with a record
  std::vector<HomeProcess> processes;
  std::vector<resources::ManagedObject> databases;  // databases and roles with adhoc's mark
  std::vector<std::string> routed;                  // environments in the router's table
  std::vector<std::string> folders;                 // names under envs/
  std::vector<std::string> access_logs;             // names of router/access/<name>.log
  std::vector<resources::ReleaseInfo> releases;
  std::vector<resources::DatabaseTemplate> templates;
  std::vector<resources::StaticCacheEntry> static_caches;
  std::vector<ForkServerInfo> fork_servers;
  std::set<std::string> used_releases;  // release paths recorded versions and tasks use
};

// The release paths that recorded environments' versions and tasks use.
Result<std::set<std::string>> UsedReleases(state::Store& store);

std::vector<Garbage> FindGarbage(const HomeInventory& inventory);

class GarbageCollector {
 public:
  // `fork_servers` may be null: none are looked for.
  GarbageCollector(std::filesystem::path home, int postgres_port, state::Store& store,
                   RouterLink& router, ForkServers* fork_servers = nullptr);

  Result<HomeInventory> Inventory();
  // Removes each item (sets its `error` when that fails); returns them.
  std::vector<Garbage> Remove(std::vector<Garbage> garbage);

 private:
  std::filesystem::path home_;
  int postgres_port_;
  state::Store& store_;
  RouterLink& router_;
  ForkServers* fork_servers_;
};

// Processes tied to `home`/envs/<name>/, with <name>. Skips the calling process.
std::vector<HomeProcess> ProcessesOfEnvironments(const std::filesystem::path& home);

nlohmann::json GarbageJson(const Garbage& g);

}  // namespace adhoc::server
