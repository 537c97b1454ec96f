// What `adhoc ls` and `adhoc status` show (docs/api.md): an environment's record, versions,
// services and tasks as they run now (process state read live, not the last probe), memory,
// its one-off tasks, its last operation (a failed deploy says what failed and what it left),
// and the commands to reach it; `status` (not `ls`) also says who may enter and with which
// credentials (server/access_rules.h); with Costs, what it takes: memory (the resident memory
// of its service tasks and its Redis) and disk (disk_usage.h's last figures). Reads the store
// and the fleet; changes nothing but a {random.NAME} of an access rule made on first use.
// Thread-safe as they are.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "server/disk_usage.h"
#include "server/fleet.h"
#include "state/store.h"

namespace adhoc::server {

struct Costs {
  std::filesystem::path home;       // where each Redis's pid file is; empty: Redis not counted
  const DiskUsage* disk = nullptr;  // nullptr: no disk figures
};

Result<nlohmann::json> EnvironmentJson(state::Store& store, Fleet& fleet, const std::string& env,
                                       const Costs& costs = {});
// Every environment, and `total` (memory and disk summed).
Result<nlohmann::json> ListJson(state::Store& store, Fleet& fleet, const Costs& costs = {});

// The command that opens the environment's database: Django's dbshell when the service's
// release has manage.py, else psql with the PG* variables `adhoc exec` sets; empty without
// [postgres].
std::string DatabaseCommand(const LaunchContext& context, const std::string& env,
                            const std::string& service);

}  // namespace adhoc::server
