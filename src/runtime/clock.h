// Time as the runtime's logic sees it: a narrow interface so health checks and the
// restart policy can be tested with a fake clock, deterministically.
//
// SystemClock is stateless and thread-safe. FakeClock is not thread-safe: a test
// owns it and advances it by hand.
#pragma once

#include <chrono>

namespace adhoc::runtime {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

// Starts at an arbitrary fixed point; moves only when Advance() is called.
class FakeClock : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  void Advance(std::chrono::steady_clock::duration d) { now_ += d; }

 private:
  TimePoint now_ = TimePoint(std::chrono::hours(1000));
};

}  // namespace adhoc::runtime
