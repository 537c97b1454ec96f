#include "server/env_locks.h"

namespace adhoc::server {

EnvLocks::Held::~Held() {
  if (locks_) locks_->Release(env_);
}

Result<EnvLocks::Held> EnvLocks::Acquire(const std::string& env, const std::string& what, bool wait,
                                         const std::function<void(const std::string&)>& on_wait) {
  std::unique_lock lock(mu_);
  auto it = held_.find(env);
  if (it != held_.end()) {
    if (!wait)
      return Conflict("'" + env + "' is busy: " + it->second +
                      " is running (leave out --no-wait to wait for it)");
    if (on_wait) {
      std::string holder = it->second;
      lock.unlock();  // the callback may write to a slow client
      on_wait(holder);
      lock.lock();
    }
    freed_.wait(lock, [&] { return held_.find(env) == held_.end(); });
  }
  held_[env] = what;
  return Held(this, env);
}

std::string EnvLocks::Holder(const std::string& env) {
  std::lock_guard lock(mu_);
  auto it = held_.find(env);
  return it == held_.end() ? "" : it->second;
}

void EnvLocks::Release(const std::string& env) {
  {
    std::lock_guard lock(mu_);
    held_.erase(env);
  }
  freed_.notify_all();
}

}  // namespace adhoc::server
