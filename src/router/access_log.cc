#include "router/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <map>

#include "common/paths.h"

namespace adhoc::router {

namespace {
constexpr size_t kMaxQueued = 100000;

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one.
size_t Utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  unsigned char c = byte(i);
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 > 0x9F) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    unsigned char c1 = byte(i + 1);
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}
}  // namespace

// Bytes a JSON string holds as they are: printable ASCII but '"' and '\'.
constexpr auto kPlainJson = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlainJson[c]) {
      size_t run = i + 1;
      while (run < s.size() && kPlainJson[static_cast<unsigned char>(s[run])]) ++run;
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
      ++i;
    } else if (size_t n = Utf8Length(s, i)) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out.push_back('"');
}

std::string FormatAccessLine(std::string_view method, std::string_view path,
                             const AccessRecord& r) {
  std::string line;
  line.reserve(112 + method.size() + path.size() + r.target.size() + r.request_id.size());
  line += "{\"time\":";
  AppendInt(line, r.time_ms);
  line += ",\"method\":";
  AppendJsonString(line, method);
  line += ",\"path\":";
  AppendJsonString(line, path);
  line += ",\"status\":";
  AppendInt(line, r.status);
  line += ",\"bytes\":";
  AppendUint(line, r.bytes);
  line += ",\"duration_ms\":";
  AppendInt(line, r.duration_ms);
  line += ",\"target\":";
  AppendJsonString(line, r.target);
  line += ",\"request_id\":";
  AppendJsonString(line, r.request_id);
  line += "}\n";
  return line;
}

AccessLog::AccessLog(std::filesystem::path home) : home_(std::move(home)) {
  if (!home_.empty()) thread_ = std::thread([this] { Run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AccessLog::Log(const std::string& env, const AccessRecord& r) {
  Log(env, r.method, r.path, r);
}

void AccessLog::Log(const std::string& env, std::string_view method, std::string_view path,
                    const AccessRecord& r) {
  if (home_.empty()) return;
  std::string line = FormatAccessLine(method, path, r);
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.emplace_back(env, std::move(line));
    ++queued_;
    // The writer sleeps only on an empty queue, or while collecting a batch.
    wake = queue_.size() == 1 || queue_.size() == kBatchLines;
  }
  if (wake) cv_.notify_one();
}

void AccessLog::Flush() {
  if (home_.empty()) return;
  std::unique_lock lock(mu_);
  uint64_t target = queued_;
  ++flush_waiters_;
  cv_.notify_one();
  flushed_.wait(lock, [&] { return written_ >= target || stop_; });
  --flush_waiters_;
}

uint64_t AccessLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void AccessLog::Run() {
  std::map<std::string, FILE*> files;
  std::error_code ec;
  std::filesystem::create_directories(paths::AccessLog(home_, "x").parent_path(), ec);
  std::filesystem::permissions(paths::AccessLog(home_, "x").parent_path(),
                               std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty() || flush_waiters_ > 0; });
    // Collect a batch: one wakeup and one write per file for many requests.
    cv_.wait_for(lock, kBatchDelay,
                 [&] { return stop_ || flush_waiters_ > 0 || queue_.size() >= kBatchLines; });
    std::deque<std::pair<std::string, std::string>> batch;
    batch.swap(queue_);
    bool stopping = stop_;
    lock.unlock();
    for (auto& [env, line] : batch) {
      FILE*& f = files[env];
      if (!f) {
        // 0600: an access log is no one else's business (paths, addresses, users).
        int fd = open(paths::AccessLog(home_, env).c_str(),
                      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0 && !(f = fdopen(fd, "a"))) close(fd);
      }
      if (f) std::fwrite(line.data(), 1, line.size(), f);
    }
    for (auto& [env, f] : files) {
      if (f) std::fflush(f);
    }
    // Keep few files open: environments come and go.
    if (files.size() > 256) {
      for (auto& [env, f] : files) {
        if (f) std::fclose(f);
      }
      files.clear();
    }
    lock.lock();
    written_ += batch.size();
    flushed_.notify_all();
    if (stopping && queue_.empty()) break;
  }
  for (auto& [env, f] : files) {
    if (f) std::fclose(f);
  }
}

}  // namespace adhoc::router
