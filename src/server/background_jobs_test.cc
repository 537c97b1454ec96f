#include "server/background_jobs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

namespace adhoc::server {
namespace {

TEST(BackgroundJobsTest, OneJobPerKeyAtATime) {
  BackgroundJobs jobs;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> ran{0};
  ASSERT_TRUE(jobs.Start("demo", [&] {
    gate.wait();
    ++ran;
  }));
  EXPECT_FALSE(jobs.Start("demo", [&] { ++ran; })) << "demo already has a job";
  EXPECT_TRUE(jobs.Running("demo"));
  EXPECT_TRUE(jobs.Start("other", [&] { ++ran; })) << "other keys never wait";
  release.set_value();
  for (int i = 0; i < 200 && jobs.Running("demo"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(jobs.Running("demo"));
  EXPECT_TRUE(jobs.Start("demo", [&] { ++ran; })) << "a finished job frees its key";
  jobs.JoinAll();
  EXPECT_EQ(ran, 3);
}

TEST(BackgroundJobsTest, JoinAllWaitsAndThenRefuses) {
  BackgroundJobs jobs;
  std::atomic<bool> done{false};
  ASSERT_TRUE(jobs.Start("slow", [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    done = true;
  }));
  jobs.JoinAll();
  EXPECT_TRUE(done);
  EXPECT_FALSE(jobs.Start("late", [] {}));
}

}  // namespace
}  // namespace adhoc::server
