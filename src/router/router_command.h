// `adhoc router --home H [--listen 127.0.0.1:8080] [--threads N]`: the router process.
// Raises RLIMIT_NOFILE to its hard limit, writes paths::RouterPid(home), serves an empty
// table until the control plane feeds it over paths::RouterSocket(home), and stops
// cleanly on SIGTERM or SIGINT (removing the pid file).
#pragma once

namespace adhoc::router {

// argv[0] is "router". Returns the process exit status (2 bad usage, 1 failure).
int RouterMain(int argc, char** argv);

}  // namespace adhoc::router
