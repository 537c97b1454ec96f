// Entry points of the processes the adhoc binary becomes besides the CLI: `adhoc serve` (the
// control plane, in the foreground until SIGTERM or SIGINT) and the keeper. The CLI calls
// these; it never reaches inside the control plane.
#pragma once

#include <filesystem>

#include "common/result.h"

namespace adhoc::server {

// Runs the control plane of `home` (settings from the environment: ADHOC_ROUTER_LISTEN...)
// until it is stopped. A SIGTERM or SIGINT is a deliberate stop: the keeper stops too.
Status ServeForeground(const std::filesystem::path& home);

}  // namespace adhoc::server
