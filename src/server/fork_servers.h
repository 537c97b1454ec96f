// The fork servers of a home (runtime/warm_start.h): for each release of an image that names
// its `python`, one interpreter with the image's `preload` modules imported, from which the
// release's Python programs (gunicorn, Celery, manage.py) start by fork. It belongs to the
// release, not to an environment: a sleeping environment still runs no process, and its wake
// skips the interpreter's start-up.
//
//   <home>/forks/fork_server.py       the program (this binary's copy, rewritten when changed)
//   <home>/forks/<key>/               one server: a task folder (launch.json, shim.json, exit),
//     socket                          where it listens once its modules are imported
//     release                         the release folder it serves
//     server.log                      its output
//
// <key>: 16 hex digits of SHA-256 of the release folder, the interpreter and the modules.
// Started when a release is ready (so it imports while the database and Redis are made) and
// again by any launch that finds it gone. Once no environment uses its release it is kept for
// a grace period (kForkServerGrace: a new environment on the same release, such as a review
// app made again or CI's next run, often follows), then stopped by the control plane's loop;
// `adhoc gc` and `base down` stop it at once.
// Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/runtime.h"

namespace adhoc::server {

// How long a fork server outlives the last environment on its release.
inline constexpr std::chrono::minutes kForkServerGrace{10};

struct ForkServerInfo {
  std::string key;
  std::filesystem::path release;  // empty when its record is unreadable
  bool running = false;
};

class ForkServers {
 public:
  // `warn` gets a line for every server that could not be started (default: none).
  ForkServers(std::filesystem::path home, runtime::Runtime& runtime,
              std::function<void(const std::string&)> warn = {});

  // The socket of the release's server for `python` and `preload`, starting it when it does
  // not run. Does not wait for it: until it listens, programs start by exec. Servers of the
  // same release with other modules are stopped. A failure is also passed to `warn`.
  Result<std::filesystem::path> Ensure(const std::filesystem::path& release,
                                       const std::string& python,
                                       const std::vector<std::string>& preload);

  std::vector<ForkServerInfo> List();

  // Stops the server and removes its folder. Stopping one that is gone is a success.
  Status Stop(const std::string& key);

  // Stops every server whose release has not been in `used_releases` for `grace` (measured
  // from the first call that found it unused; zero: at once); returns how many.
  int StopUnused(const std::set<std::string>& used_releases,
                 std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  void StopAll();

 private:
  std::filesystem::path Folder(const std::string& key) const;
  bool Running(const std::string& key);
  Status StopLocked(const std::string& key);
  Result<std::filesystem::path> Start(const std::string& key, const std::filesystem::path& release,
                                      const std::string& python,
                                      const std::vector<std::string>& preload);

  std::filesystem::path home_;
  runtime::Runtime& runtime_;
  std::function<void(const std::string&)> warn_;
  std::mutex mu_;
  std::mutex unused_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> unused_since_;  // by key
};

}  // namespace adhoc::server
