// What `adhoc ls` and `adhoc status` show (docs/api.md): an environment's record, versions,
// services and tasks as they run now (process state read live, not the last probe), memory,
// its one-off tasks, its last operation (a failed deploy says what failed and what it left),
// and the commands to reach it; `status` (not `ls`) also says who may enter and with which
// credentials (server/access_rules.h). Reads the store and the fleet; changes nothing but a
// {random.NAME} of an access rule made on first use.
// Thread-safe as they are.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "server/fleet.h"
#include "state/store.h"

namespace adhoc::server {

Result<nlohmann::json> EnvironmentJson(state::Store& store, Fleet& fleet, const std::string& env);
Result<nlohmann::json> ListJson(state::Store& store, Fleet& fleet);

// The command that opens the environment's database: Django's dbshell when the service's
// release has manage.py, else psql with the PG* variables `adhoc exec` sets; empty without
// [postgres].
std::string DatabaseCommand(const LaunchContext& context, const std::string& env,
                            const std::string& service);

}  // namespace adhoc::server
