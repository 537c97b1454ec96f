// Per-environment JSON-lines access logs (paths::AccessLog(home, env)), written by one
// background thread so the request path never waits on disk: Log() only formats the line
// (by hand: a few hundred instructions, no JSON library) and queues it. The thread writes
// in batches, woken when the queue goes from empty to non-empty and then collecting lines
// for up to kBatchDelay (or kBatchLines), so a busy router costs a few wakeups and write
// syscalls per second, not one per request; lines reach the disk within about
// kBatchDelay. If the queue grows past a bound (disk stalled), lines are dropped and
// counted. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace adhoc::router {

struct AccessRecord {
  int64_t time_ms = 0;  // ms since the epoch, when the request started
  std::string method;
  std::string path;
  int status = 0;
  uint64_t bytes = 0;  // response bytes sent to the client
  int64_t duration_ms = 0;
  std::string target;           // upstream target id, "folder", or "" (answered by the router)
  std::string_view request_id;  // X-Request-Id (given or generated); read during Log() only
};

// Appends `s` to `out` as a JSON string literal (quotes included): `"` `\` and control
// characters escaped, valid UTF-8 passed through, each invalid byte replaced by U+FFFD.
void AppendJsonString(std::string& out, std::string_view s);

// One access log line, newline included:
// {"time":ms,"method":"GET","path":"/x","status":200,"bytes":5,"duration_ms":1,"target":"t",
//  "request_id":"..."}
std::string FormatAccessLine(std::string_view method, std::string_view path,
                             const AccessRecord& record);

class AccessLog {
 public:
  static constexpr std::chrono::milliseconds kBatchDelay{50};
  static constexpr size_t kBatchLines = 4096;

  // An empty home disables logging (Log() then does nothing).
  explicit AccessLog(std::filesystem::path home);
  ~AccessLog();  // writes what is queued, then stops the thread
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void Log(const std::string& env, const AccessRecord& record);
  // Like Log, without copying the record's strings (the hot path's form).
  void Log(const std::string& env, std::string_view method, std::string_view path,
           const AccessRecord& record);
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
  int flush_waiters_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace adhoc::router
