// Finding or starting the control plane of a home: what every CLI command that needs the engine
// calls first. The control plane is started fully detached (own session, standard streams on
// its log, no inherited descriptors) so it never holds the caller's terminal or a CI pipe open.
#pragma once

#include <filesystem>

#include "common/result.h"
#include "server/api_client.h"

namespace adhoc::server {

// The running adhoc binary (/proc/self/exe), for starting shims, the router and the server.
std::filesystem::path SelfBinary();

// Returns a client of the home's control plane, starting `adhoc serve` when none answers.
// Waits up to `timeout` for it to answer; an error says where its log is.
Result<ApiClient> EnsureControlPlane(const std::filesystem::path& home,
                                     const std::filesystem::path& adhoc_binary,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Starts `argv` detached from the caller: double fork, setsid, stdin from /dev/null, stdout and
// stderr appended to `log`, every other descriptor closed, `env` as its environment (plus the
// caller's when `inherit_env`). Returns the pid of the detached process.
Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::filesystem::path& log,
                            const std::vector<std::string>& extra_env = {});

// Whether a process holds an exclusive flock on `lock_file` (false when the file does not
// exist). Probes with a lock of its own for a moment.
bool LockHeld(const std::filesystem::path& lock_file);

// Holds the home's server.lock for the life of the object (flock, exclusive). A second holder
// fails with a Conflict naming the pid that holds it.
class HomeLock {
 public:
  static Result<std::unique_ptr<HomeLock>> Acquire(const std::filesystem::path& lock_file);
  ~HomeLock();
  HomeLock(const HomeLock&) = delete;
  HomeLock& operator=(const HomeLock&) = delete;

 private:
  explicit HomeLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace adhoc::server
