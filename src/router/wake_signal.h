// The router's "wake ENV" to the control plane (docs/router.md, "Sleeping environments").
// The feed is the control plane's request-reply channel into the router; this is the one
// message the other way. It goes to the control plane's own API socket as
// `POST /v1/environments/{env}/wake {"background":true}`, which answers at once (202) and
// wakes the environment in the background: no new listener, no polling, and the same
// owner-only socket every other client uses. Idempotent, so the router simply sends it again
// (at most once a second per environment) while it holds requests: a control plane that was
// restarting, or busy putting that very environment to sleep, gets it on a later try.
//
// Request() never blocks: messages are sent by a thread of its own (a connect and a short
// exchange on a local socket, each bounded by a 2 s timeout). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace adhoc::router {

class WakeSignal {
 public:
  // `send` delivers one "wake ENV" (tests give their own); default: SendWake to `socket`.
  explicit WakeSignal(std::filesystem::path socket,
                      std::function<void(const std::string& env)> send = {});
  ~WakeSignal();
  WakeSignal(const WakeSignal&) = delete;
  WakeSignal& operator=(const WakeSignal&) = delete;

  // Asks for `env` to be woken, unless it was asked less than `min_interval` ago.
  void Request(const std::string& env);

  std::chrono::milliseconds min_interval{1000};

 private:
  void Run();

  std::filesystem::path socket_;
  std::function<void(const std::string&)> send_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_;
  bool stop_ = false;
  std::thread thread_;
};

// One `POST /v1/environments/{env}/wake` to the API socket at `socket`; false when nothing
// accepted it (no control plane) or no answer came within `timeout`.
bool SendWake(const std::filesystem::path& socket, const std::string& env,
              std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace adhoc::router
