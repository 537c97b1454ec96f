#include "runtime/logs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>

#include "runtime/log_writer.h"

namespace adhoc::runtime {

namespace fs = std::filesystem;

namespace {

// The files of a log, oldest first.
std::vector<fs::path> LogFiles(const fs::path& log) {
  std::vector<fs::path> rotated;
  for (int n = 1; n < 1000 && fs::exists(RotatedLogPath(log, n)); ++n)
    rotated.push_back(RotatedLogPath(log, n));
  std::vector<fs::path> files(rotated.rbegin(), rotated.rend());
  if (fs::exists(log)) files.push_back(log);
  return files;
}

template <typename Visit>
Status ForEachLine(const fs::path& log, Visit visit) {
  for (const auto& f : LogFiles(log)) {
    std::ifstream in(f);
    if (!in) continue;  // rotated away meanwhile
    std::string line;
    while (std::getline(in, line)) visit(line);
  }
  return OkStatus();
}

}  // namespace

LogLine ParseLogLine(const std::string& raw) {
  LogLine l;
  l.raw = raw;
  if (ParseTimestamp(raw, &l.time) && raw.size() >= 25 && raw[24] == ' ')
    l.text = raw.substr(25);
  else
    l.text = raw;
  return l;
}

Result<std::vector<LogLine>> ReadLastLines(const fs::path& log, size_t n) {
  std::deque<std::string> last;
  ADHOC_RETURN_IF_ERROR(ForEachLine(log, [&](const std::string& line) {
    last.push_back(line);
    if (last.size() > n) last.pop_front();
  }));
  std::vector<LogLine> out;
  for (const auto& l : last) out.push_back(ParseLogLine(l));
  return out;
}

Result<std::vector<LogLine>> ReadLinesSince(const fs::path& log,
                                            std::chrono::system_clock::time_point since) {
  std::vector<LogLine> out;
  ADHOC_RETURN_IF_ERROR(ForEachLine(log, [&](const std::string& line) {
    LogLine l = ParseLogLine(line);
    if (l.time >= since) out.push_back(std::move(l));
  }));
  return out;
}

LogFollower::LogFollower(fs::path log, bool from_end) : path_(std::move(log)) {
  struct stat st;
  if (from_end && stat(path_.c_str(), &st) == 0) {
    skip_to_ = st.st_size;
    inode_ = st.st_ino;
  }
}

LogFollower::~LogFollower() {
  if (fd_ >= 0) close(fd_);
}

void LogFollower::ReadAvailable(std::vector<LogLine>* out) {
  char buf[16384];
  ssize_t n;
  while ((n = read(fd_, buf, sizeof buf)) > 0) {
    partial_.append(buf, n);
    size_t start = 0, nl;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
      out->push_back(ParseLogLine(partial_.substr(start, nl - start)));
      start = nl + 1;
    }
    partial_.erase(0, start);
  }
}

std::vector<LogLine> LogFollower::Poll() {
  std::vector<LogLine> out;
  if (fd_ < 0) {
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return out;
    struct stat st;
    fstat(fd_, &st);
    // The skip only holds for the very file that was there at construction.
    if (skip_to_ > 0 && st.st_ino == inode_) lseek(fd_, static_cast<off_t>(skip_to_), SEEK_SET);
    inode_ = st.st_ino;
  }
  ReadAvailable(&out);
  struct stat st;
  if (stat(path_.c_str(), &st) == 0 && st.st_ino != inode_) {
    // Rotated: the old file is complete (the writer moved on); read its end, then switch.
    ReadAvailable(&out);
    close(fd_);
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    inode_ = st.st_ino;
    partial_.clear();
    if (fd_ >= 0) ReadAvailable(&out);
  }
  return out;
}

}  // namespace adhoc::runtime
