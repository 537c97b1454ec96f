// The keeper: a tiny process per home that starts the control plane again when it dies (a
// kill -9, a crash), within a fraction of a second. The control plane in turn restarts the
// router and the keeper. So any one of them, or the control plane and the router together,
// can die and routing comes back by itself; only a deliberate stop (base down, shutdown)
// stops the keeper first.
//
// The keeper holds <home>/keeper.lock (flock; its pid inside) for its life and polls the
// control plane's server.lock: when it can take that lock, no control plane runs, and it
// starts `adhoc serve` detached. It exits when told to (SIGTERM), when a deliberate stop left
// <home>/keeper.stop behind, and when its home is gone: it never brings back a stopped or
// removed home.
#pragma once

#include <chrono>
#include <filesystem>

#include "common/result.h"

namespace adhoc::server {

// `adhoc __keeper`: runs until SIGTERM. Returns the process exit status.
int KeeperMain(const std::filesystem::path& home, const std::filesystem::path& adhoc_binary,
               std::chrono::milliseconds poll = std::chrono::milliseconds(200));

// Starts the home's keeper unless one runs.
Status EnsureKeeper(const std::filesystem::path& home, const std::filesystem::path& adhoc_binary);

// Whether a keeper holds the home's keeper.lock.
bool KeeperRunning(const std::filesystem::path& home);

// A deliberate stop: leaves keeper.stop (no keeper restarts anything from now on), then stops
// the home's keeper (SIGTERM to the pid in keeper.lock) and waits for it to go.
Status StopKeeper(const std::filesystem::path& home);

// A control plane that starts clears keeper.stop: its keeper may keep it again.
void AllowKeeper(const std::filesystem::path& home);

// Whether a deliberate stop left keeper.stop: then nothing may start a keeper (a control plane
// going down must not start one that outlives the marker and brings a removed home back).
bool KeeperStopRequested(const std::filesystem::path& home);

}  // namespace adhoc::server
