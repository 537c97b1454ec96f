// An environment's folders under the home (see common/paths.h):
//
//   envs/<env>/            0711  others may pass through (nginx workers reach their task
//     static/              0755  {static}: served by the router, readable by all
//     tasks/               0711  folders), but may not list what is there
//     logs/                0700  task output may hold secrets
//
// Creating is idempotent and resets these modes; removing deletes the whole tree,
// including folders a task made read-only. Both refuse a name that is not a valid
// environment name (a DNS label: [a-z0-9-], 1-40 characters, starting with a letter),
// a second line of defence so that no name can reach outside envs/.
// Thread-safe as the filesystem is; callers serialize work on one environment.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"

namespace adhoc::resources {

// True for a DNS-label environment name as DESIGN defines it (reserved names aside).
bool IsValidEnvironmentName(const std::string& env);

// Creates envs/<env>/ with static/, tasks/ and logs/ (modes above).
Status CreateEnvironmentFolders(const std::filesystem::path& home, const std::string& env);

// Removes envs/<env>/ and everything in it; an absent folder is fine.
Status RemoveEnvironmentFolders(const std::filesystem::path& home, const std::string& env);

}  // namespace adhoc::resources
