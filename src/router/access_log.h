// Per-environment JSON-lines access logs (paths::AccessLog(home, env)), written by one
// background thread so the request path never waits on disk: Log() only queues a line.
// If the queue grows past a bound (disk stalled), lines are dropped and counted.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace adhoc::router {

struct AccessRecord {
  int64_t time_ms = 0;  // ms since the epoch, when the request started
  std::string method;
  std::string path;
  int status = 0;
  uint64_t bytes = 0;  // response bytes sent to the client
  int64_t duration_ms = 0;
  std::string target;  // upstream target id, "folder", or "" (answered by the router)
};

class AccessLog {
 public:
  // An empty home disables logging (Log() then does nothing).
  explicit AccessLog(std::filesystem::path home);
  ~AccessLog();  // writes what is queued, then stops the thread
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void Log(const std::string& env, const AccessRecord& record);
  // Blocks until everything queued so far is written (tests, shutdown).
  void Flush();
  uint64_t dropped() const;

 private:
  void Run();

  std::filesystem::path home_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_;
  std::deque<std::pair<std::string, std::string>> queue_;  // env, line
  uint64_t queued_ = 0, written_ = 0, dropped_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace adhoc::router
