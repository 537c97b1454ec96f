// Time as the runtime's logic sees it: a narrow interface so health checks and the
// restart policy can be tested with a fake clock, deterministically.
//
// SystemClock is stateless and thread-safe. FakeClock is thread-safe too: a test advances
// it by hand, and a SleepFor on it advances it instead of waiting.
#pragma once

#include <chrono>
#include <mutex>
#include <thread>

namespace adhoc::runtime {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Waits `d` (a poll between two looks at something that changes on its own).
  virtual void SleepFor(std::chrono::steady_clock::duration d) const = 0;
};

class SystemClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  void SleepFor(std::chrono::steady_clock::duration d) const override {
    std::this_thread::sleep_for(d);
  }
};

// Starts at an arbitrary fixed point; moves only when Advance() or SleepFor() is called.
class FakeClock : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void SleepFor(std::chrono::steady_clock::duration d) const override {
    std::lock_guard lock(mu_);
    now_ += d;
  }
  void Advance(std::chrono::steady_clock::duration d) { SleepFor(d); }

 private:
  mutable std::mutex mu_;
  mutable TimePoint now_ = TimePoint(std::chrono::hours(1000));
};

}  // namespace adhoc::runtime
