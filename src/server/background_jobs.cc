#include "server/background_jobs.h"

namespace adhoc::server {

void BackgroundJobs::ReapFinished() {
  for (const auto& key : finished_) {
    auto it = running_.find(key);
    if (it == running_.end()) continue;
    if (it->second.joinable()) it->second.join();
    running_.erase(it);
  }
  finished_.clear();
}

bool BackgroundJobs::Start(const std::string& key, std::function<void()> job) {
  std::lock_guard lock(mu_);
  ReapFinished();
  if (closed_ || running_.count(key)) return false;
  running_.emplace(key, std::thread([this, key, job = std::move(job)] {
                     job();
                     std::lock_guard lock(mu_);
                     finished_.insert(key);
                     done_.notify_all();
                   }));
  return true;
}

bool BackgroundJobs::Running(const std::string& key) {
  std::lock_guard lock(mu_);
  ReapFinished();
  return running_.count(key) > 0;
}

void BackgroundJobs::JoinAll() {
  std::unique_lock lock(mu_);
  closed_ = true;
  done_.wait(lock, [this] { return finished_.size() >= running_.size(); });
  ReapFinished();
}

}  // namespace adhoc::server
