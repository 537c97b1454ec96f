// Writes a task's output lines to its log file, each prefixed with an RFC 3339 UTC
// timestamp with milliseconds ("2024-05-01T12:34:56.789Z hello"), rotating by size:
// when a line would take the file past max_bytes, <log>.1 becomes <log>.2 (and so on up
// to `keep`), <log> becomes <log>.1 and a fresh <log> is started.
//
// Used by the shim only. Not thread-safe: one writer per log file.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "common/result.h"

namespace adhoc::runtime {

// "2024-05-01T12:34:56.789Z"
std::string FormatTimestamp(std::chrono::system_clock::time_point t);
// The inverse of FormatTimestamp; false when `text` does not start with one.
bool ParseTimestamp(const std::string& text, std::chrono::system_clock::time_point* t);

// <log>.N, the N-th rotated file (1 = newest).
std::filesystem::path RotatedLogPath(const std::filesystem::path& log, int n);

class RotatingLogWriter {
 public:
  RotatingLogWriter(std::filesystem::path path, uint64_t max_bytes, int keep);
  ~RotatingLogWriter();
  RotatingLogWriter(const RotatingLogWriter&) = delete;
  RotatingLogWriter& operator=(const RotatingLogWriter&) = delete;

  // Opens (appending to) the log, creating its folder.
  Status Open();
  // Writes one line (without its newline) stamped with the current time.
  Status WriteLine(const std::string& line);

 private:
  Status Rotate();

  std::filesystem::path path_;
  uint64_t max_bytes_;
  int keep_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace adhoc::runtime
