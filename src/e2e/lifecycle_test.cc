// The control plane and the router with real processes, through the command line a user types:
// environments side by side, failures that leave nothing behind, and a control plane that dies
// (kill -9) at the worst moments and comes back. The app is src/e2e/testdata/miniapp: every part
// μblog has (database, Redis, worker, frontend, static files, tasks), starting in milliseconds.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
  }

  void Up(const std::string& env) {
    CommandResult r = box_.Adhoc({"up", env});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_NE(r.output.find("http://" + env + ".localhost:"), std::string::npos) << r.output;
  }

  std::map<std::string, int> Tasks(const std::string& env) { return box_.TaskPids(env); }

  static bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

  // Waits up to 30 s for `env`'s status to be `want`; whether it was.
  bool WaitForStatus(const std::string& env, const std::string& want) {
    for (int i = 0; i < 300; ++i) {
      json s = box_.AdhocJson({"status", env});
      if (s.is_object() && s.value("status", "") == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  json LsAfterRecovery() {
    json ls = box_.LsAfterRecovery();
    EXPECT_TRUE(ls.is_object()) << "the control plane never finished its recovery";
    return ls;
  }

  // Nothing of `env` is left: no database, role, process, route, address, folder or record.
  void ExpectNothingLeftOf(const std::string& env) {
    auto left = box_.Leftovers(env);
    std::string all;
    for (const auto& l : left) all += "\n  " + l;
    EXPECT_TRUE(left.empty()) << "left of " << env << ":" << all;
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(LifecycleTest, TwoEnvironmentsSideBySideThroughTheRouter) {
  Up("alpha");
  Up("beta");
  // Each host reaches its own services, frontend and static folder.
  EXPECT_EQ(json::parse(box_.Http("alpha", "GET", "/api/env").body)["env"], "alpha");
  EXPECT_EQ(json::parse(box_.Http("beta", "GET", "/api/env").body)["env"], "beta");
  auto index = box_.Http("alpha", "GET", "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("mini frontend"), std::string::npos);
  EXPECT_EQ(box_.Http("alpha", "GET", "/static/hello.txt").body, "static of alpha\n");
  EXPECT_EQ(box_.Http("beta", "GET", "/static/hello.txt").body, "static of beta\n");
  // One's data is absent from the other (and the after-create seed ran in both).
  EXPECT_EQ(box_.Http("alpha", "POST", "/api/items", "only-in-alpha").status, 201);
  EXPECT_EQ(json::parse(box_.Http("alpha", "GET", "/api/items").body),
            json::parse(R"(["seed","only-in-alpha"])"));
  EXPECT_EQ(json::parse(box_.Http("beta", "GET", "/api/items").body), json::parse(R"(["seed"])"));
  // The worker reaches its own Redis.
  auto beats = box_.WaitFor("alpha", "/api/heartbeats", 20, [](const HttpAnswer& a) {
    return a.status == 200 && json::parse(a.body)["heartbeats"].get<int>() > 0;
  });
  EXPECT_EQ(beats.status, 200);
  // `logs -f` shows new lines as they are written.
  auto follow = std::async(std::launch::async, [&] {
    return box_.Adhoc({"logs", "alpha", "api", "-f"}, 8);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  box_.Http("alpha", "GET", "/api/env?followed");
  CommandResult followed = follow.get();
  EXPECT_TRUE(followed.timed_out) << "-f keeps following until stopped";
  EXPECT_NE(followed.output.find("/api/env?followed"), std::string::npos) << followed.output;
  // `run` passes the exit status on.
  CommandResult run = box_.Adhoc({"run", "alpha", "--", "sh", "-c", "echo from-run; exit 7"});
  EXPECT_EQ(run.exit_code, 7) << run.output;
  EXPECT_NE(run.output.find("from-run"), std::string::npos);
  CommandResult migrate = box_.Adhoc({"run", "alpha", "migrate"});
  EXPECT_EQ(migrate.exit_code, 0) << migrate.output;
  EXPECT_NE(migrate.output.find("migrated"), std::string::npos);
  // A task killed with -9 is replaced, and the route follows it.
  auto before = Tasks("alpha");
  ASSERT_TRUE(before.count("api-1")) << box_.Adhoc({"status", "alpha"}).output;
  ASSERT_EQ(kill(before["api-1"], SIGKILL), 0);
  auto after = box_.WaitFor("alpha", "/api/env", 30, [&](const HttpAnswer& a) {
    return a.status == 200 && json::parse(a.body)["pid"].get<int>() != before["api-1"];
  });
  EXPECT_EQ(after.status, 200) << after.body;
  auto tasks = Tasks("alpha");
  EXPECT_TRUE(tasks.count("api-2")) << box_.Adhoc({"status", "alpha"}).output;
  EXPECT_EQ(tasks["worker-1"], before["worker-1"]) << "the other services were not touched";
}

TEST_F(LifecycleTest, UpAgainAfterAChangeRollsTheServicesWithoutDroppingARequest) {
  Up("alpha");
  auto before = Tasks("alpha");
  CommandResult same = box_.Adhoc({"up", "alpha"});
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("nothing to do"), std::string::npos) << same.output;
  EXPECT_EQ(Tasks("alpha"), before) << "no change, no restart";

  std::ofstream(box_.repo() / "envs/alpha.toml", std::ios::app) << "\n[env]\nFEATURE = \"on\"\n";
  CommandResult plan = box_.Adhoc({"plan", "alpha"});
  EXPECT_NE(plan.output.find("roll service api"), std::string::npos) << plan.output;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread client([&] {
    while (!stop) box_.Http("alpha", "GET", "/api/health").status == 200 ? ++ok : ++failed;
  });
  CommandResult up = box_.Adhoc({"up", "alpha"});
  stop = true;
  client.join();
  EXPECT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("task migrate"), std::string::npos) << "before-deploy tasks ran again";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0) << "new tasks are healthy before the old ones leave";
  auto after = Tasks("alpha");
  EXPECT_TRUE(after.count("api-2")) << box_.Adhoc({"status", "alpha"}).output;
  for (const auto& [id, pid] : before) EXPECT_FALSE(Alive(pid)) << id << " was stopped";
}

TEST_F(LifecycleTest, DestroyLeavesNothing) {
  Up("alpha");
  Up("beta");
  auto pids = Tasks("alpha");
  ASSERT_FALSE(pids.empty());
  CommandResult r = box_.Adhoc({"destroy", "alpha"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectNothingLeftOf("alpha");
  for (const auto& [id, pid] : pids) EXPECT_FALSE(Alive(pid)) << id;
  EXPECT_FALSE(fs::exists(box_.home() / "router" / "access" / "alpha.log"));
  // The other environment is untouched.
  EXPECT_EQ(json::parse(box_.Http("beta", "GET", "/api/env").body)["env"], "beta");
  // Destroying what does not exist is a clear failure.
  CommandResult again = box_.Adhoc({"destroy", "alpha"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("no environment 'alpha'"), std::string::npos) << again.output;
}

TEST_F(LifecycleTest, AFailedMigrationLeavesNothingOfANewEnvironment) {
  CommandResult r = box_.Adhoc({"up", "broken"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("migrate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("migration failed on purpose"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Nothing of 'broken' was left behind"), std::string::npos) << r.output;
  ExpectNothingLeftOf("broken");
}

TEST_F(LifecycleTest, BadInputIsExitTwoAndChangesNothing) {
  for (const std::string& bad :
       std::vector<std::string>{"../x", "A", "x;drop", "adhoc", std::string(64, 'a')}) {
    CommandResult r = box_.Adhoc({"up", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
  }
  CommandResult missing = box_.Adhoc({"up", "nosuchenv"});
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("envs/nosuchenv.toml"), std::string::npos) << missing.output;
  json ls = box_.AdhocJson({"ls"});
  EXPECT_TRUE(ls["environments"].empty()) << ls;
}

TEST_F(LifecycleTest, ControlPlaneKilledWhileIdleComesBackWithTheSameTasks) {
  Up("alpha");
  auto before = Tasks("alpha");
  ASSERT_FALSE(before.empty());
  pid_t cp = box_.ControlPlanePid();
  ASSERT_GT(cp, 0);
  ASSERT_EQ(kill(cp, SIGKILL), 0);
  // The router keeps answering while the control plane is down.
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(box_.Http("alpha", "GET", "/api/health").status, 200) << "request " << i;
  // The next command starts it again; it re-adopts the very same processes.
  auto after = Tasks("alpha");
  EXPECT_EQ(after, before);
  EXPECT_NE(box_.ControlPlanePid(), cp);
  for (const auto& [id, pid] : after) EXPECT_TRUE(Alive(pid)) << id;
  EXPECT_EQ(box_.Http("alpha", "GET", "/api/health").status, 200);
}

TEST_F(LifecycleTest, ControlPlaneKilledInTheMiddleOfUpUndoesTheNewEnvironment) {
  // `slow` spends seconds in its migration: the control plane dies right then.
  auto up = std::async(std::launch::async, [&] { return box_.Adhoc({"up", "slow"}); });
  fs::path migrate_log = box_.home() / "envs" / "slow" / "logs" / "migrate" / "migrate-1.log";
  for (int i = 0; i < 600 && !fs::exists(migrate_log); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(migrate_log));
  pid_t cp = box_.ControlPlanePid();
  ASSERT_GT(cp, 0);
  ASSERT_EQ(kill(cp, SIGKILL), 0);
  CommandResult interrupted = up.get();
  EXPECT_NE(interrupted.exit_code, 0) << interrupted.output;
  // Coming back, the control plane undoes the half-made environment: no orphan.
  json ls = LsAfterRecovery();
  ASSERT_TRUE(ls.is_object()) << ls;
  EXPECT_TRUE(ls["environments"].empty()) << ls;
  ExpectNothingLeftOf("slow");
}

TEST_F(LifecycleTest, ControlPlaneKilledInTheMiddleOfDestroyFinishesIt) {
  // `lingering`'s worker takes seconds to stop: the control plane dies while it waits.
  Up("lingering");
  auto pids = Tasks("lingering");
  auto destroy = std::async(std::launch::async, [&] {
    return box_.Adhoc({"destroy", "lingering"});
  });
  ASSERT_TRUE(WaitForStatus("lingering", "destroying"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // into its worker's stop
  pid_t cp = box_.ControlPlanePid();
  ASSERT_GT(cp, 0);
  ASSERT_EQ(kill(cp, SIGKILL), 0);
  destroy.get();
  json ls = LsAfterRecovery();  // the control plane, restarted, finishes the destroy
  ASSERT_TRUE(ls.is_object()) << ls;
  EXPECT_TRUE(ls["environments"].empty()) << ls;
  ExpectNothingLeftOf("lingering");
  for (const auto& [id, pid] : pids) EXPECT_FALSE(Alive(pid)) << id;
}

TEST_F(LifecycleTest, OperationsOnOneEnvironmentWaitTheirTurnAndOthersRunAtOnce) {
  // Four environments at once: none waits for another.
  for (const std::string name : {"p1", "p2", "p3", "p4"})
    std::ofstream(box_.repo() / "envs" / (name + ".toml"))
        << "owner = \"t\"\n[versions]\nbackend = \"HEAD\"\nfrontend = \"HEAD\"\n";
  std::vector<std::future<CommandResult>> ups;
  for (const std::string name : {"p1", "p2", "p3", "p4"})
    ups.push_back(std::async(std::launch::async, [this, name] {
      return box_.Adhoc({"up", name});
    }));
  for (auto& u : ups) {
    CommandResult r = u.get();
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("waiting for the running"), std::string::npos) << r.output;
  }
  for (const std::string name : {"p1", "p2", "p3", "p4"})
    EXPECT_EQ(box_.Http(name, "GET", "/api/health").status, 200) << name;

  // Two operations on one environment: the second waits (and says so), or with --no-wait
  // refuses at once; neither interleaves with the first. lingering's worker takes 4 s to stop,
  // so its destroy is still running when the others come.
  Up("lingering");
  auto slow_destroy = std::async(std::launch::async, [&] {
    return box_.Adhoc({"destroy", "lingering"});
  });
  ASSERT_TRUE(WaitForStatus("lingering", "destroying"));
  CommandResult refused = box_.Adhoc({"up", "lingering", "--no-wait"});
  CommandResult waited = box_.Adhoc({"up", "lingering"});
  CommandResult destroyed = slow_destroy.get();
  EXPECT_EQ(destroyed.exit_code, 0) << destroyed.output;
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("busy"), std::string::npos) << refused.output;
  EXPECT_EQ(waited.exit_code, 0) << waited.output;
  EXPECT_NE(waited.output.find("waiting for the running destroy of lingering"), std::string::npos)
      << waited.output;
  EXPECT_EQ(box_.Http("lingering", "GET", "/api/health").status, 200);
}

TEST_F(LifecycleTest, AfterAMachineRestartEveryEnvironmentComesBack) {
  Up("alpha");
  EXPECT_EQ(box_.Http("alpha", "POST", "/api/items", "kept").status, 201);
  // The base cluster commits asynchronously (synchronous_commit off, for speed): a crash may
  // lose the last fraction of a second, so the crash comes a little later.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // A machine restart: every process of the home is gone at once.
  // Rounds until none is left: the keeper may fork between two, and a process in a disk wait
  // shows a while after its kill.
  for (int round = 0; round < 50 && !box_.HomeProcesses().empty(); ++round) {
    for (const auto& p : box_.HomeProcesses()) kill(p.pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(box_.HomeProcesses().empty());
  // The first command brings everything back as it was recorded, data included.
  json status = box_.AdhocJson({"status", "alpha"});
  ASSERT_TRUE(status.is_object()) << status;
  auto items =
      box_.WaitFor("alpha", "/api/items", 60, [](const HttpAnswer& a) { return a.status == 200; });
  ASSERT_EQ(items.status, 200) << items.body;
  EXPECT_EQ(json::parse(items.body), json::parse(R"(["seed","kept"])"));
  // Each service comes back on its own: the frontend may pass its health check a moment later.
  EXPECT_EQ(
      box_.WaitFor("alpha", "/", 60, [](const HttpAnswer& a) { return a.status == 200; }).status,
      200);
  // Before-deploy tasks were not run again (one migrate log only).
  EXPECT_FALSE(fs::exists(box_.home() / "envs/alpha/logs/migrate/migrate-2.log"));
}

TEST_F(LifecycleTest, TheControlPlaneNeverHoldsTheCallersOutput) {
  // Exec waits for end-of-file on the captured output: a detached control plane that kept the
  // pipe open would make this time out.
  CommandResult r = box_.Adhoc({"ls"}, 60);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(box_.ControlPlanePid(), 0);
}

TEST_F(LifecycleTest, BaseDestroyLeavesNoHomeAndNoProcess) {
  Up("alpha");
  Up("beta");
  // The control plane is still leaving (its socket, lock and keeper go last) while the home is
  // removed: the removal must not stop half way.
  CommandResult r = box_.Adhoc({"base", "destroy"}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("are gone"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(box_.home())) << r.output;
  std::vector<std::string> left;
  for (int i = 0; i < 100; ++i) {
    left.clear();
    for (const auto& p : box_.HomeProcesses()) left.push_back(p.cmdline);
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
}

TEST_F(LifecycleTest, AHomeRemovedUnderARunningControlPlaneIsNotBroughtBack) {
  // rm -rf of the home while everything runs: the control plane stops what it ran (tasks,
  // Redis, PostgreSQL, the router) and leaves with its keeper, instead of starting the router
  // and PostgreSQL again into a new home.
  Up("alpha");
  // As `rm -rf` does, again while files are still being written into it.
  for (int i = 0; i < 5 && fs::exists(box_.home() / "state.db"); ++i) {
    std::error_code ec;
    fs::remove_all(box_.home(), ec);
  }
  ASSERT_FALSE(fs::exists(box_.home() / "state.db"));
  auto left_of_home = [&] {
    std::vector<std::string> left;
    for (const auto& p : box_.HomeProcesses()) left.push_back(p.cmdline);
    return left;
  };
  std::vector<std::string> left = left_of_home();
  for (int i = 0; i < 300 && !left.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = left_of_home();
  }
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_FALSE(fs::exists(box_.home() / "state.db")) << "the home was brought back";
  EXPECT_FALSE(fs::exists(box_.home() / "router")) << "the home was brought back";
}

}  // namespace
}  // namespace adhoc::e2e
