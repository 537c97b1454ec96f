// One operation at a time per environment, in this control plane: a second `up`, `deploy` or
// `destroy` of the same environment waits for the first (saying so), or is refused at once
// when the caller asked not to wait. Different environments never wait on each other. The
// journal's one-running-operation rule stays as the cross-process check underneath.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "common/result.h"

namespace adhoc::server {

class EnvLocks {
 public:
  class Held {
   public:
    Held() = default;
    Held(Held&& other) noexcept : locks_(other.locks_), env_(std::move(other.env_)) {
      other.locks_ = nullptr;
    }
    Held& operator=(Held&&) = delete;
    ~Held();

   private:
    friend class EnvLocks;
    Held(EnvLocks* locks, std::string env) : locks_(locks), env_(std::move(env)) {}
    EnvLocks* locks_ = nullptr;
    std::string env_;
  };

  // Takes `env` for `what` ("up", "deploy #12"). When another holds it: Conflict naming the
  // holder if `!wait`; else `on_wait(holder)` is called once and the call blocks until free.
  Result<Held> Acquire(const std::string& env, const std::string& what, bool wait,
                       const std::function<void(const std::string& holder)>& on_wait = {});

  // Who holds `env` now ("" when free).
  std::string Holder(const std::string& env);

 private:
  void Release(const std::string& env);

  std::mutex mu_;
  std::condition_variable freed_;
  std::map<std::string, std::string> held_;  // env -> what holds it
};

}  // namespace adhoc::server
