// Reading a task's log for `adhoc logs` and for streaming a one-off task's output.
// A log is <log> plus its rotated files <log>.1 (newer) .. <log>.N (older), each line
// "2024-05-01T12:34:56.789Z text" (see log_writer.h). Plain functions of the files;
// thread-safe. LogFollower is not thread-safe (one reader owns it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::runtime {

struct LogLine {
  std::chrono::system_clock::time_point time;  // epoch when the line had no timestamp
  std::string text;                            // without the timestamp
  std::string raw;                             // the line as stored
};

LogLine ParseLogLine(const std::string& raw);

// The last `n` lines over the rotated files and the current one, oldest first.
// A log that does not exist yet has no lines (not an error).
Result<std::vector<LogLine>> ReadLastLines(const std::filesystem::path& log, size_t n);

// Every line stamped at or after `since`, oldest first.
Result<std::vector<LogLine>> ReadLinesSince(const std::filesystem::path& log,
                                            std::chrono::system_clock::time_point since);

// Follows a log as it grows (`adhoc logs -f`, one-off task output): each Poll() returns the
// complete lines written since the last one, following the file across a rotation.
class LogFollower {
 public:
  // from_end: skip what the log holds now (at construction); else start at its beginning.
  LogFollower(std::filesystem::path log, bool from_end);
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  std::vector<LogLine> Poll();

 private:
  void ReadAvailable(std::vector<LogLine>* out);

  std::filesystem::path path_;
  int fd_ = -1;
  ino_t inode_ = 0;
  uint64_t skip_to_ = 0;  // offset to seek to when the file is first opened
  std::string partial_;
};

}  // namespace adhoc::runtime
