#include "server/keeper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/paths.h"
#include "server/launcher.h"

namespace adhoc::server {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_keeper_stop{false};
void OnKeeperStop(int) { g_keeper_stop = true; }

fs::path KeeperLock(const fs::path& home) { return home / "keeper.lock"; }
fs::path StopMarker(const fs::path& home) { return home / "keeper.stop"; }

// Whether `path` is certainly gone (not merely unreadable for a moment).
bool Gone(const fs::path& path) {
  std::error_code ec;
  return !fs::exists(path, ec) && !ec;
}

// Told to stop, or the home is being removed. server.lock goes only with the home (or with a
// deliberate stop): a keeper is started by a control plane that holds it.
bool ToldToStop(const fs::path& home) {
  std::error_code ec;
  return g_keeper_stop || fs::exists(StopMarker(home), ec) || Gone(home) ||
         Gone(KeeperLock(home)) || Gone(paths::StateDb(home)) || Gone(paths::ServerLock(home));
}

pid_t RecordedPid(const fs::path& file) {
  std::ifstream in(file);
  long pid = 0;
  in >> pid;
  return pid > 1 ? static_cast<pid_t>(pid) : 0;
}

}  // namespace

int KeeperMain(const fs::path& home, const fs::path& adhoc_binary, std::chrono::milliseconds poll) {
  // A keeper that starts late (a slow exec) may find its home stopped or removed already:
  // taking its lock would make the folder again.
  std::error_code ec;
  if (fs::exists(StopMarker(home), ec) || !fs::exists(paths::StateDb(home), ec)) return 0;
  auto lock = HomeLock::Acquire(KeeperLock(home));
  if (!lock.ok()) return 0;  // another keeper keeps this home
  struct sigaction sa {};
  sa.sa_handler = OnKeeperStop;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  while (!ToldToStop(home)) {
    if (!LockHeld(paths::ServerLock(home)) && !ToldToStop(home)) {
      auto pid = SpawnDetached({adhoc_binary.string(), "serve"}, paths::ServerLog(home),
                               {"ADHOC_HOME=" + home.string(), "ADHOC_HOME_MUST_EXIST=1"});
      // Give it time to take its lock before looking again (a slow start is not a death).
      for (int i = 0; pid.ok() && i < 100 && !g_keeper_stop; ++i) {
        if (LockHeld(paths::ServerLock(home))) break;
        if (kill(*pid, 0) != 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    std::this_thread::sleep_for(poll);
  }
  return 0;
}

bool KeeperRunning(const fs::path& home) { return LockHeld(KeeperLock(home)); }

Status EnsureKeeper(const fs::path& home, const fs::path& adhoc_binary) {
  if (KeeperRunning(home)) return OkStatus();
  auto pid = SpawnDetached({adhoc_binary.string(), "__keeper"}, home / "keeper.log",
                           {"ADHOC_HOME=" + home.string()});
  if (!pid.ok()) return std::move(pid).context("starting the keeper").error();
  return OkStatus();
}

bool KeeperStopRequested(const fs::path& home) {
  std::error_code ec;
  return fs::exists(StopMarker(home), ec);
}

void AllowKeeper(const fs::path& home) {
  std::error_code ec;
  fs::remove(StopMarker(home), ec);
}

Status StopKeeper(const fs::path& home) {
  std::ofstream(StopMarker(home)) << "stopped on purpose\n";
  if (!KeeperRunning(home)) return OkStatus();
  pid_t pid = RecordedPid(KeeperLock(home));
  if (pid == 0) return Failed("the keeper's lock holds no pid");
  kill(pid, SIGTERM);
  for (int i = 0; i < 250; ++i) {
    if (!KeeperRunning(home)) return OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  return OkStatus();
}

}  // namespace adhoc::server
