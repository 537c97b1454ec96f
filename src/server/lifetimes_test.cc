#include "server/lifetimes.h"

#include <gtest/gtest.h>

namespace adhoc::server {
namespace {

constexpr state::Millis kHour = 3600 * 1000;

state::Environment Env(state::EnvStatus status = state::EnvStatus::kRunning) {
  state::Environment e;
  e.name = "demo";
  e.status = status;
  e.created_at = 100 * kHour;
  return e;
}

TEST(LifetimesTest, TtlCountsFromCreationUntilTheFirstRequest) {
  auto e = Env();
  e.ttl_seconds = 2 * 3600;
  EXPECT_EQ(ExpiresAt(e), 102 * kHour);
  EXPECT_EQ(WhatIsDue(e, 102 * kHour - 1, 0), Due::kNothing);
  EXPECT_EQ(WhatIsDue(e, 102 * kHour, 0), Due::kExpire);
  e.last_request_at = 101 * kHour;  // a request moves the end
  EXPECT_EQ(ExpiresAt(e), 103 * kHour);
  EXPECT_EQ(WhatIsDue(e, 102 * kHour, 0), Due::kNothing);
  EXPECT_NE(ExpiryReason(e).find("past its ttl of 2h (last request"), std::string::npos)
      << ExpiryReason(e);
}

TEST(LifetimesTest, NoTtlOrNeverIsNeverCollected) {
  auto e = Env();
  EXPECT_FALSE(ExpiresAt(e).has_value());
  EXPECT_EQ(WhatIsDue(e, 100000 * kHour, 0), Due::kNothing);
  e.ttl_seconds = 0;  // "never" as recorded by an older writer
  EXPECT_EQ(WhatIsDue(e, 100000 * kHour, 0), Due::kNothing);
}

TEST(LifetimesTest, SleepCountsFromTheLaterOfRequestCreationAndWake) {
  auto e = Env();
  e.sleep_after_seconds = 1800;
  EXPECT_EQ(WhatIsDue(e, 100 * kHour + kHour / 2 - 1, 0), Due::kNothing);
  EXPECT_EQ(WhatIsDue(e, 100 * kHour + kHour / 2, 0), Due::kSleep);
  // Woken at 101h: awake until 101h30.
  EXPECT_EQ(IdleSince(e, 101 * kHour), 101 * kHour);
  EXPECT_EQ(WhatIsDue(e, 101 * kHour + kHour / 4, 101 * kHour), Due::kNothing);
  e.last_request_at = 102 * kHour;
  EXPECT_EQ(WhatIsDue(e, 102 * kHour + kHour / 4, 101 * kHour), Due::kNothing);
  EXPECT_EQ(WhatIsDue(e, 102 * kHour + kHour / 2, 101 * kHour), Due::kSleep);
}

TEST(LifetimesTest, OnlySettledEnvironmentsAreTouchedAndOnlyRunningOnesSleep) {
  for (auto status :
       {state::EnvStatus::kCreating, state::EnvStatus::kUpdating, state::EnvStatus::kDestroying}) {
    auto e = Env(status);
    e.ttl_seconds = 1;
    e.sleep_after_seconds = 1;
    EXPECT_EQ(WhatIsDue(e, 1000 * kHour, 0), Due::kNothing) << state::ToString(status);
  }
  auto asleep = Env(state::EnvStatus::kSleeping);
  asleep.sleep_after_seconds = 1;
  EXPECT_EQ(WhatIsDue(asleep, 1000 * kHour, 0), Due::kNothing);
  asleep.ttl_seconds = 60;  // a sleeping environment still expires
  EXPECT_EQ(WhatIsDue(asleep, 1000 * kHour, 0), Due::kExpire);
}

}  // namespace
}  // namespace adhoc::server
