#include "router/access_log.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "common/paths.h"

namespace adhoc::router {

namespace {
constexpr size_t kMaxQueued = 100000;
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
  if (home_.empty()) return;
  nlohmann::json j = {{"time", r.time_ms},  {"method", r.method}, {"path", r.path},
                      {"status", r.status}, {"bytes", r.bytes},   {"duration_ms", r.duration_ms},
                      {"target", r.target}};
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.emplace_back(env, std::move(line));
    ++queued_;
  }
  cv_.notify_one();
}

void AccessLog::Flush() {
  if (home_.empty()) return;
  std::unique_lock lock(mu_);
  uint64_t target = queued_;
  cv_.notify_one();
  flushed_.wait(lock, [&] { return written_ >= target || stop_; });
}

uint64_t AccessLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void AccessLog::Run() {
  std::map<std::string, FILE*> files;
  std::error_code ec;
  std::filesystem::create_directories(paths::AccessLog(home_, "x").parent_path(), ec);
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    std::deque<std::pair<std::string, std::string>> batch;
    batch.swap(queue_);
    bool stopping = stop_;
    lock.unlock();
    for (auto& [env, line] : batch) {
      FILE*& f = files[env];
      if (!f) f = std::fopen(paths::AccessLog(home_, env).c_str(), "ae");
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
