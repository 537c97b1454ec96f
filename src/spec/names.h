// Naming rules for what the user names: environments, and the services, tasks and
// images of adhoc.toml.
//
// Environment: a DNS label, [a-z0-9-], 1-40 characters, starting with a letter, not
// ending with '-'; "adhoc", "www" and "api" are reserved (the dashboard lives at
// adhoc.<domain>). Service, task, image (and project) names: [a-z][a-z0-9-]*, at most
// 30 characters, not ending with '-'. Environment variable names: [A-Za-z_][A-Za-z0-9_]*.
// Thread-safe: pure functions.
#pragma once

#include <string_view>

#include "common/result.h"

namespace adhoc::spec {

inline constexpr size_t kMaxEnvNameLength = 40;
inline constexpr size_t kMaxObjectNameLength = 30;

// OK, or a BadInput error saying which rule `name` breaks, e.g.
// "environment name 'A': only lowercase letters, digits and '-' are allowed (found 'A')".
Status ValidateEnvName(std::string_view name);

// Same for a service, task or image name; `what` ("service", "task", "image") starts
// the message.
Status ValidateObjectName(std::string_view what, std::string_view name);

bool IsValidEnvVarName(std::string_view name);

}  // namespace adhoc::spec
