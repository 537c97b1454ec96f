#include "runtime/log_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace adhoc::runtime {

namespace fs = std::filesystem;

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

bool ParseTimestamp(const std::string& text, std::chrono::system_clock::time_point* t) {
  struct tm tm {};
  int ms = 0;
  char z = 0;
  if (text.size() < 24 ||
      sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z) != 8 ||
      z != 'Z')
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t secs = timegm(&tm);
  *t = std::chrono::system_clock::time_point(std::chrono::seconds(secs)) +
       std::chrono::milliseconds(ms);
  return true;
}

fs::path RotatedLogPath(const fs::path& log, int n) {
  fs::path p = log;
  p += "." + std::to_string(n);
  return p;
}

RotatingLogWriter::RotatingLogWriter(fs::path path, uint64_t max_bytes, int keep)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep) {}

RotatingLogWriter::~RotatingLogWriter() {
  if (fd_ >= 0) close(fd_);
}

Status RotatingLogWriter::Open() {
  std::error_code ec;
  fs::create_directories(path_.parent_path(), ec);
  // 0600: a task's output may hold its secrets.
  fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return Failed("opening log " + path_.string() + ": " + strerror(errno));
  struct stat st;
  size_ = fstat(fd_, &st) == 0 ? st.st_size : 0;
  return OkStatus();
}

Status RotatingLogWriter::Rotate() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  std::error_code ec;
  if (keep_ <= 0) {
    fs::remove(path_, ec);
  } else {
    fs::remove(RotatedLogPath(path_, keep_), ec);
    for (int n = keep_ - 1; n >= 1; --n)
      fs::rename(RotatedLogPath(path_, n), RotatedLogPath(path_, n + 1), ec);
    fs::rename(path_, RotatedLogPath(path_, 1), ec);
  }
  return Open();
}

Status RotatingLogWriter::WriteLine(const std::string& line) {
  std::string out = FormatTimestamp(std::chrono::system_clock::now()) + " " + line + "\n";
  if (size_ > 0 && size_ + out.size() > max_bytes_) ADHOC_RETURN_IF_ERROR(Rotate());
  if (fd_ < 0) return Failed("log " + path_.string() + " is not open");
  const char* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    ssize_t n = write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Failed("writing log " + path_.string() + ": " + strerror(errno));
    p += n;
    left -= n;
  }
  size_ += out.size();
  return OkStatus();
}

}  // namespace adhoc::runtime
