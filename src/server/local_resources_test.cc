#include "server/local_resources.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "common/paths.h"
#include "common/test_support.h"
#include "resources/redis.h"
#include "resources/test_support.h"
#include "runtime/runtime.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;

// A real Redis, started and stopped through LocalResources as the control plane does.
class LocalResourcesRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(paths::StateDb(home())) << "";  // a kept home (nothing starts into a removed one)
    router_ = std::make_unique<RouterLink>(home(), runtime_, RouterOptions{});
    resources_ = std::make_unique<LocalResources>(home(), 5432, *router_, [] {});
  }
  void TearDown() override {
    if (resources_) (void)resources_->DestroyRedis("demo", address_);
  }
  fs::path home() const { return dir_.path(); }

  // Whether demo's Redis runs (by its recorded pid and start time).
  bool Running() {
    resources::RedisInstance redis(home(), "demo", {.host = address_});
    if (!redis.Adopt().ok()) return false;
    auto running = redis.Running();
    return running.ok() && *running;
  }

  testutil::TempDir dir_;
  runtime::LocalRuntime runtime_{runtime::LocalRuntimeOptions{}};
  std::unique_ptr<RouterLink> router_;
  std::unique_ptr<LocalResources> resources_;
  const std::string address_ = resources::test_servers::UniqueLoopback();
};

TEST_F(LocalResourcesRedisTest, TheLoopRestartsADeadRedisButNotOneStoppedOnPurpose) {
  ASSERT_TRUE(resources_->EnsureRedis("demo", address_, 0).ok());
  ASSERT_TRUE(Running());

  // Died by itself: the loop's check starts it again.
  resources::RedisInstance redis(home(), "demo", {.host = address_});
  ASSERT_TRUE(redis.Adopt().ok());
  ASSERT_TRUE(redis.Stop().ok());
  ASSERT_FALSE(Running());
  ASSERT_TRUE(resources_->KeepRedisRunning("demo", address_, 0).ok());
  EXPECT_TRUE(Running()) << "a Redis that died is started again";

  // Stopped on purpose (a sleep): the loop leaves it stopped, also if it asks at once.
  std::thread loop([&] { (void)resources_->KeepRedisRunning("demo", address_, 0); });
  ASSERT_TRUE(resources_->StopRedis("demo", address_).ok());
  loop.join();
  ASSERT_TRUE(resources_->KeepRedisRunning("demo", address_, 0).ok());
  EXPECT_FALSE(Running()) << "the loop started a Redis a sleep had stopped";

  // Started again by an operation (a wake): the loop looks after it again.
  ASSERT_TRUE(resources_->EnsureRedis("demo", address_, 0).ok());
  ASSERT_TRUE(redis.Adopt().ok());
  ASSERT_TRUE(redis.Stop().ok());
  ASSERT_TRUE(resources_->KeepRedisRunning("demo", address_, 0).ok());
  EXPECT_TRUE(Running());
}

}  // namespace
}  // namespace adhoc::server
