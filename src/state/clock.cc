#include "state/clock.h"

#include <chrono>

namespace adhoc::state {
namespace {

class RealClock : public Clock {
 public:
  Millis NowMillis() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

}  // namespace

std::shared_ptr<const Clock> SystemClock() {
  static const std::shared_ptr<const Clock> clock = std::make_shared<RealClock>();
  return clock;
}

}  // namespace adhoc::state
