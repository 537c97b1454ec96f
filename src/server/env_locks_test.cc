#include "server/env_locks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace adhoc::server {
namespace {

TEST(EnvLocksTest, ASecondOperationOnOneEnvironmentWaitsOrIsRefused) {
  EnvLocks locks;
  auto first = locks.Acquire("demo", "up", true);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(locks.Holder("demo"), "up");
  auto refused = locks.Acquire("demo", "deploy", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind(), ErrorKind::kConflict);
  EXPECT_NE(refused.error().message().find("up is running"), std::string::npos);

  std::atomic<bool> got{false};
  std::string told;
  std::thread waiter([&] {
    auto second = locks.Acquire("demo", "deploy", true, [&](const std::string& h) { told = h; });
    got = second.ok();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(got) << "it must wait while the first holds the environment";
  // Another environment is not held up.
  auto other = locks.Acquire("beta", "up", false);
  EXPECT_TRUE(other.ok());
  { auto release = std::move(*first); }
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(told, "up");
  EXPECT_EQ(locks.Holder("demo"), "");
}

}  // namespace
}  // namespace adhoc::server
