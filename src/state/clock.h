// The wall clock the state store stamps records with, behind an interface so tests
// can hold time still (FakeClock) and assert exact timestamps.
//
// Times are integer milliseconds since the Unix epoch (Millis). Implementations
// must be thread-safe: the store reads the clock from whichever thread writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace adhoc::state {

using Millis = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis NowMillis() const = 0;
};

// The system's real-time clock. Shared, never null.
std::shared_ptr<const Clock> SystemClock();

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(Millis start = 1'700'000'000'000) : now_(start) {}
  Millis NowMillis() const override { return now_.load(); }
  void Set(Millis now) { now_.store(now); }
  void Advance(Millis by) { now_.fetch_add(by); }

 private:
  std::atomic<Millis> now_;
};

}  // namespace adhoc::state
