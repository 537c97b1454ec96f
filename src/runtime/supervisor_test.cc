#include "runtime/supervisor.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "runtime/fake_runtime.h"
#include "runtime/test_util.h"

namespace adhoc::runtime {
namespace {

using namespace std::chrono_literals;
using Kind = SupervisorEvent::Kind;

class SupervisorLogicTest : public ::testing::Test {
 protected:
  Supervisor::SpecMaker Maker(const std::string& slot) {
    return [this, slot] {
      TaskSpec s;
      s.id = slot + "-" + std::to_string(++made_);
      s.task_folder = dir_.path() / s.id;
      s.log_path = dir_.path() / (s.id + ".log");
      s.command = "run";
      return s;
    };
  }
  std::string CurrentId() { return supervisor_.Current("web")->id; }

  testing::TempDir dir_;
  int made_ = 0;
  FakeRuntime runtime_;
  FakeClock clock_;
  Supervisor supervisor_{runtime_, clock_, RestartPolicy{}};
};

TEST_F(SupervisorLogicTest, StartsThenReplacesAKilledTaskAfterBackoff) {
  supervisor_.Add("web", Maker("web"));
  auto events = supervisor_.Tick();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kStarted);
  EXPECT_EQ(CurrentId(), "web-1");

  runtime_.Exit("web-1", ExitStatus{-1, SIGKILL});
  events = supervisor_.Tick();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kExited);
  EXPECT_EQ(events[0].exit.signal, SIGKILL);
  EXPECT_FALSE(supervisor_.Current("web"));

  clock_.Advance(499ms);
  EXPECT_TRUE(supervisor_.Tick().empty()) << "back-off not over";
  clock_.Advance(1ms);
  events = supervisor_.Tick();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kStarted);
  EXPECT_EQ(CurrentId(), "web-2");
  EXPECT_EQ(supervisor_.Restarts("web"), 1);
}

TEST_F(SupervisorLogicTest, BackoffDoublesUpToTheMaximumAndResetsAfterALongRun) {
  RestartPolicy policy;
  policy.max_quick_failures = 100;
  Supervisor supervisor(runtime_, clock_, policy);
  supervisor.Add("web", Maker("web"));
  supervisor.Tick();
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 8; ++i) {
    runtime_.Exit(supervisor.Current("web")->id, ExitStatus{1, 0});
    supervisor.Tick();
    std::chrono::milliseconds waited{0};
    while (!supervisor.Current("web")) {
      clock_.Advance(100ms);
      waited += 100ms;
      supervisor.Tick();
    }
    waits.push_back(waited);
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{500ms, 1000ms, 2000ms, 4000ms, 8000ms,
                                                           16000ms, 30000ms, 30000ms}));
  // A task that ran 60 s: the next exit waits the initial back-off again.
  clock_.Advance(60s);
  supervisor.Tick();
  runtime_.Exit(supervisor.Current("web")->id, ExitStatus{1, 0});
  supervisor.Tick();
  clock_.Advance(500ms);
  supervisor.Tick();
  EXPECT_TRUE(supervisor.Current("web"));
}

TEST_F(SupervisorLogicTest, ACrashLoopEndsAsFailedWithItsLastLines) {
  supervisor_.Add("web", Maker("web"));
  std::vector<SupervisorEvent> all;
  for (int i = 0; i < 50 && !supervisor_.IsFailed("web"); ++i) {
    auto events = supervisor_.Tick();
    all.insert(all.end(), events.begin(), events.end());
    if (auto h = supervisor_.Current("web")) {
      std::ofstream(dir_.path() / (h->id + ".log"))
          << "2024-01-01T00:00:00.000Z booting\n2024-01-01T00:00:00.001Z ImportError: x\n";
      runtime_.Exit(h->id, ExitStatus{3, 0});
    }
    clock_.Advance(31s);
  }
  ASSERT_TRUE(supervisor_.IsFailed("web"));
  ASSERT_EQ(all.back().kind, Kind::kFailed);
  EXPECT_EQ(all.back().last_lines, (std::vector<std::string>{"booting", "ImportError: x"}));
  EXPECT_NE(all.back().message.find("5 times in a row"), std::string::npos) << all.back().message;
  EXPECT_EQ(runtime_.started().size(), 5u);
  clock_.Advance(1h);
  EXPECT_TRUE(supervisor_.Tick().empty()) << "a failed slot stays failed";
}

TEST_F(SupervisorLogicTest, FailedStartsCountAsFailures) {
  supervisor_.Add("web", Maker("web"));
  for (int i = 0; i < 5; ++i) {
    runtime_.FailNextStart(Conflict("127.1.1.10:8000 is already in use"));
    supervisor_.Tick();
    clock_.Advance(31s);
  }
  EXPECT_TRUE(supervisor_.IsFailed("web"));
}

TEST_F(SupervisorLogicTest, AnAdoptedTaskIsWatchedNotStartedAgain) {
  auto h = runtime_.Start(Maker("old")());
  ASSERT_TRUE(h.ok());
  supervisor_.Add("web", Maker("web"), *h);
  EXPECT_TRUE(supervisor_.Tick().empty());
  runtime_.Vanish(h->id);
  auto events = supervisor_.Tick();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kExited);
  EXPECT_NE(events[0].message.find("vanished"), std::string::npos);
}

// The real thing: a task killed with -9 is replaced by a new process.
TEST(SupervisorRealTest, ATaskKilledWith9IsReplaced) {
  testing::TempDir dir;
  testing::TaskReaper reaper;
  LocalRuntimeOptions o;
  o.shim_binary = ADHOC_BINARY;
  LocalRuntime runtime(o);
  SystemClock clock;
  RestartPolicy policy;
  policy.initial_backoff = 10ms;
  Supervisor supervisor(runtime, clock, policy);
  int n = 0;
  std::string base = testing::UniqueId("sup");
  supervisor.Add("worker", [&] {
    TaskSpec s;
    s.id = base + "-" + std::to_string(++n);
    s.task_folder = dir.path() / s.id;
    s.log_path = dir.path() / "worker.log";
    s.command = "echo up; exec sleep 60";
    s.env = testing::CleanEnv();
    s.stop_timeout = 1s;
    return s;
  });
  supervisor.Tick();
  auto first = supervisor.Current("worker");
  ASSERT_TRUE(first);
  reaper.Add(*first);
  ASSERT_EQ(kill(first->task.pid, SIGKILL), 0);
  std::optional<TaskHandle> second;
  bool saw_exit = false;
  for (int i = 0; i < 1000 && !(second && second->id != first->id); ++i) {
    for (const auto& e : supervisor.Tick())
      if (e.kind == Kind::kExited) {
        saw_exit = true;
        EXPECT_EQ(e.exit.signal, SIGKILL);
      }
    second = supervisor.Current("worker");
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(second);
  reaper.Add(*second);
  EXPECT_TRUE(saw_exit);
  EXPECT_NE(second->task.pid, first->task.pid);
  EXPECT_EQ(runtime.Inspect(*second).kind, TaskState::kRunning);
  EXPECT_TRUE(runtime.Stop(*second).ok());
}

// The real thing: a crash loop ends as failed with the task's last lines.
TEST(SupervisorRealTest, ACrashLoopEndsAsFailed) {
  testing::TempDir dir;
  LocalRuntimeOptions o;
  o.shim_binary = ADHOC_BINARY;
  LocalRuntime runtime(o);
  SystemClock clock;
  RestartPolicy policy;
  policy.initial_backoff = 1ms;
  policy.max_backoff = 5ms;
  policy.max_quick_failures = 3;
  Supervisor supervisor(runtime, clock, policy);
  int n = 0;
  std::string base = testing::UniqueId("crash");
  supervisor.Add("web", [&] {
    TaskSpec s;
    s.id = base + "-" + std::to_string(++n);
    s.task_folder = dir.path() / s.id;
    s.log_path = dir.path() / (s.id + ".log");
    s.command = "echo 'ImportError: no module named backend' >&2; exit 1";
    s.env = testing::CleanEnv();
    return s;
  });
  std::optional<SupervisorEvent> failed;
  for (int i = 0; i < 3000 && !failed; ++i) {
    for (const auto& e : supervisor.Tick())
      if (e.kind == Kind::kFailed) failed = e;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->last_lines, (std::vector<std::string>{"ImportError: no module named backend"}));
  EXPECT_EQ(n, 3);
}

}  // namespace
}  // namespace adhoc::runtime
