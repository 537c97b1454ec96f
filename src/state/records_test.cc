#include "state/records.h"

#include <gtest/gtest.h>

namespace adhoc::state {
namespace {

TEST(RecordsTest, StatusNamesRoundTrip) {
  for (auto s : {EnvStatus::kCreating, EnvStatus::kRunning, EnvStatus::kUpdating,
                 EnvStatus::kSleeping, EnvStatus::kFailed, EnvStatus::kDestroying})
    EXPECT_EQ(*ParseEnvStatus(ToString(s)), s);
  for (auto s : {TaskStatus::kStarting, TaskStatus::kHealthy, TaskStatus::kUnhealthy,
                 TaskStatus::kExited, TaskStatus::kFailed, TaskStatus::kStopped})
    EXPECT_EQ(*ParseTaskStatus(ToString(s)), s);
  for (auto s : {OperationStatus::kRunning, OperationStatus::kDone, OperationStatus::kFailed,
                 OperationStatus::kUndone})
    EXPECT_EQ(*ParseOperationStatus(ToString(s)), s);
  for (auto s : {StepStatus::kPending, StepStatus::kRunning, StepStatus::kDone, StepStatus::kFailed,
                 StepStatus::kUndone})
    EXPECT_EQ(*ParseStepStatus(ToString(s)), s);
  EXPECT_EQ(ToString(RouteKind::kFolder), "folder");
  EXPECT_EQ(*ParseRouteKind("service"), RouteKind::kService);
}

TEST(RecordsTest, UnknownNamesAreBadInput) {
  auto parsed = ParseTaskStatus("zombie");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().kind(), ErrorKind::kBadInput);
  EXPECT_EQ(parsed.error().message(), "unknown task status 'zombie'");
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(100);
  EXPECT_EQ(clock.NowMillis(), 100);
  clock.Advance(50);
  EXPECT_EQ(clock.NowMillis(), 150);
  clock.Set(7);
  EXPECT_EQ(clock.NowMillis(), 7);
  EXPECT_GT(SystemClock()->NowMillis(), 1'600'000'000'000);  // after 2020
}

}  // namespace
}  // namespace adhoc::state
