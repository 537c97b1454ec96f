// An environment's folders under the home (see common/paths.h):
//
//   envs/                  0700  (all of these: the owner's alone)
//   envs/<env>/            0700
//     static/              0700  {static}: served by the router, which runs as the owner
//     tasks/               0700  the tasks' records hold their environments (secrets)
//     logs/                0700  task output may hold secrets
//
// No other user needs to reach anything here: PostgreSQL's user has its own folder under
// base/, and nginx's workers (`nobody`) serve release folders, not task folders. (A request
// body too large for nginx's memory buffer would need its task's temporary folder: frontends
// behind nginx take uploads through the backend instead.)
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
