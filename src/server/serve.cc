#include "server/serve.h"

#include <signal.h>

#include <atomic>
#include <thread>

#include "server/control_plane.h"

namespace adhoc::server {

namespace {
std::atomic<bool> g_stop_requested{false};
void OnStopSignal(int) { g_stop_requested = true; }
}  // namespace

Status ServeForeground(const std::filesystem::path& home) {
  ADHOC_ASSIGN_OR_RETURN(auto options, OptionsFromEnvironment(home));
  ADHOC_ASSIGN_OR_RETURN(auto cp, ControlPlane::Open(std::move(options)));
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (g_stop_requested) {
        cp->Shutdown(true);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  Status s = cp->Serve();
  done = true;
  watcher.join();
  return s;
}

}  // namespace adhoc::server
