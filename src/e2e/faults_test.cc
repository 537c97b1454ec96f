// The fault suite: kill -9 of every kind of process adhoc runs, at rest and in the middle of
// its operations, each time asserting that what was interrupted is finished or undone, that
// data written before the kill is still there, and that nothing is left that no environment
// owns. The app is src/e2e/testdata/miniapp (every part μblog has, starting in milliseconds).
// Deadlines below are liveness bounds (the thing must come back), not measurements: the times
// are printed, and docs/reliability.md records them.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include "common/exec.h"
#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
  }

  void Up(const std::string& env) {
    CommandResult r = box_.Adhoc({"up", env});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void ExpectNothingLeftOf(const std::string& env) {
    auto left = box_.Leftovers(env);
    std::string all;
    for (const auto& l : left) all += "\n  " + l;
    EXPECT_TRUE(left.empty()) << "left of " << env << ":" << all;
  }

  // Shell in the test's repository (git commits, tags).
  void Git(const std::string& script) {
    auto r = Exec({"/bin/sh", "-c",
                   "set -e; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t "
                   "GIT_COMMITTER_EMAIL=t@t; " +
                       script},
                  {.cwd = box_.repo()});
    ASSERT_TRUE(r.ok() && r->exit_code == 0) << script << (r.ok() ? r->output : "");
  }

  // Pids of the home's processes whose command line has `needle`.
  std::vector<pid_t> Pids(const std::string& needle) {
    std::vector<pid_t> out;
    for (const auto& p : box_.HomeProcesses())
      if (p.cmdline.find(needle) != std::string::npos) out.push_back(p.pid);
    return out;
  }

  // Seconds until `accept` holds for GET `path` of `env`, or -1 after `limit` seconds.
  double Until(const std::string& env, const std::string& path, int limit,
               const std::function<bool(const HttpAnswer&)>& accept) {
    auto t0 = Clock::now();
    while (SecondsSince(t0) < limit) {
      if (accept(box_.Http(env, "GET", path))) return SecondsSince(t0);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  static bool Ok(const HttpAnswer& a) { return a.status == 200; }

  int Heartbeats(const std::string& env) {
    auto a = box_.Http(env, "GET", "/api/heartbeats");
    json j = json::parse(a.body, nullptr, false);
    return j.is_object() ? j.value("heartbeats", -1) : -1;
  }

  Sandbox box_{ADHOC_BINARY};
};

// --- The control plane killed after each step of an operation -----------------------------

class KillDuringCreate : public FaultsTest, public ::testing::WithParamInterface<int> {};

TEST_P(KillDuringCreate, RecoveryLeavesAWholeEnvironmentOrNothing) {
  // up of miniapp: allocate, base, release x2, database, redis, task migrate, service x3,
  // routes static, task seed, start data, record: 14 steps.
  const int step = GetParam();
  CommandResult r =
      box_.Adhoc({"up", "alpha"}, 300, {{"ADHOC_FAULT_STOP_AFTER", "up:" + std::to_string(step)}});
  EXPECT_NE(r.exit_code, 0) << "the control plane was to die after step " << step << "\n"
                            << r.output;
  auto t0 = Clock::now();
  json ls = box_.LsAfterRecovery();
  ASSERT_TRUE(ls.is_object()) << "no recovery";
  std::printf("recovery after a kill at step %d of up: %.2f s\n", step, SecondsSince(t0));
  bool kept = false;
  for (const auto& e : ls["environments"]) kept |= e["name"] == "alpha";
  if (kept) {
    // Finished: only when the record was already written.
    EXPECT_GE(step, 14) << ls.dump();
    EXPECT_GE(Until("alpha", "/api/health", 30, Ok), 0);
  } else {
    ExpectNothingLeftOf("alpha");
  }
  // Nothing stale stands in the way of the same environment.
  Up("alpha");
  EXPECT_EQ(box_.Http("alpha", "GET", "/api/health").status, 200);
}

INSTANTIATE_TEST_SUITE_P(Steps, KillDuringCreate, ::testing::Range(1, 15));

class KillDuringDeploy : public FaultsTest, public ::testing::WithParamInterface<int> {};

TEST_P(KillDuringDeploy, RecoveryLeavesTheOldVersionServingAndNoExtraTask) {
  Git("git tag v1; echo '# v2' >> backend/common.py; git commit -qam v2; git tag v2");
  std::ofstream(box_.repo() / "envs/upd.toml") << "owner = \"t\"\n[versions]\nbackend = \"v1\"\n"
                                                  "frontend = \"v1\"\n";
  Git("git add -A; git commit -qm upd");
  Up("upd");
  ASSERT_EQ(box_.Http("upd", "POST", "/api/items", "before").status, 201);
  // Stop this control plane (a deliberate stop: the keeper goes too; the tasks stay) so the
  // next one starts with the fault armed.
  pid_t cp = box_.ControlPlanePid();
  ASSERT_GT(cp, 0);
  ASSERT_EQ(kill(cp, SIGTERM), 0);
  // Its shutdown joins its loop and jobs (a spare copy of a template may be under way).
  for (int i = 0; i < 1500 && kill(cp, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_NE(kill(cp, 0), 0) << "the control plane did not stop";
  // deploy: base, release backend, task migrate, service api, service worker, record.
  const int step = GetParam();
  CommandResult r = box_.Adhoc({"deploy", "upd", "backend=v2"}, 300,
                               {{"ADHOC_FAULT_STOP_AFTER", "deploy:" + std::to_string(step)}});
  EXPECT_NE(r.exit_code, 0) << r.output;
  json ls = box_.LsAfterRecovery();
  ASSERT_TRUE(ls.is_object());
  const char* want = step >= 6 ? "v2" : "v1";  // after `record`, the deploy is finished
  double t = Until("upd", "/api/version", 60, [&](const HttpAnswer& a) {
    json j = json::parse(a.body, nullptr, false);
    return a.status == 200 && j.is_object() && j.value("version", "") == want;
  });
  EXPECT_GE(t, 0) << "upd does not serve " << want << " after a kill at step " << step;
  // One task per service, all of the generation that serves.
  for (int i = 0; i < 100; ++i) {
    if (Pids("app.py").size() == 1 && Pids("worker.py").size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Pids("app.py").size(), 1u);
  EXPECT_EQ(Pids("worker.py").size(), 1u);
  json status = box_.AdhocJson({"status", "upd"});
  EXPECT_EQ(status["status"], "running") << status;
  EXPECT_NE(status["last_operation"]["status"], "running") << status;
  // The data written before is there.
  EXPECT_NE(box_.Http("upd", "GET", "/api/items").body.find("before"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Steps, KillDuringDeploy, ::testing::Range(1, 7));

// --- Processes killed at rest --------------------------------------------------------------

TEST_F(FaultsTest, AKilledServiceTaskIsReplacedWithItsDataKept) {
  Up("alpha");
  ASSERT_EQ(box_.Http("alpha", "POST", "/api/items", "kept").status, 201);
  auto before = box_.TaskPids("alpha");
  ASSERT_TRUE(before.count("api-1"));
  ASSERT_EQ(kill(before["api-1"], SIGKILL), 0);
  double t = Until("alpha", "/api/items", 30, [](const HttpAnswer& a) {
    return a.status == 200 && a.body.find("kept") != std::string::npos;
  });
  std::printf("api task kill -9: serving again after %.2f s\n", t);
  EXPECT_GE(t, 0);
  EXPECT_NE(box_.TaskPids("alpha")["api-2"], 0) << "a new task replaced it";
}

TEST_F(FaultsTest, ATaskWhoseShimIsKilledIsReplacedNotLeftHalfDead) {
  Up("alpha");
  auto pids = box_.TaskPids("alpha");
  // The shim of api-1 (its parent).
  std::ifstream stat("/proc/" + std::to_string(pids["api-1"]) + "/stat");
  std::string line;
  std::getline(stat, line);
  int ppid = 0;
  std::sscanf(line.c_str() + line.rfind(')') + 2, "%*c %d", &ppid);
  ASSERT_GT(ppid, 1);
  ASSERT_EQ(kill(ppid, SIGKILL), 0);
  // The half-dead task is ended and replaced; the router serves from the new one.
  bool replaced = false;
  for (int i = 0; i < 300 && !replaced; ++i) {
    replaced = box_.TaskPids("alpha").count("api-2") > 0 && kill(pids["api-1"], 0) != 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(replaced) << box_.AdhocJson({"status", "alpha"});
  EXPECT_GE(Until("alpha", "/api/health", 30, Ok), 0);
}

TEST_F(FaultsTest, AKilledWorkerIsReplacedAndWorksOn) {
  Up("alpha");
  auto pids = box_.TaskPids("alpha");
  ASSERT_GE(Until("alpha", "/api/heartbeats", 20,
                  [&](const HttpAnswer&) { return Heartbeats("alpha") > 0; }),
            0);
  ASSERT_EQ(kill(pids["worker-1"], SIGKILL), 0);
  int at_kill = Heartbeats("alpha");
  double t = Until("alpha", "/api/heartbeats", 30,
                   [&](const HttpAnswer&) { return Heartbeats("alpha") > at_kill + 2; });
  std::printf("worker kill -9: working again after %.2f s\n", t);
  EXPECT_GE(t, 0);
}

TEST_F(FaultsTest, AKilledRedisComesBackWithItsData) {
  Up("alpha");
  ASSERT_GE(Until("alpha", "/api/heartbeats", 20,
                  [&](const HttpAnswer&) { return Heartbeats("alpha") > 5; }),
            0);
  auto redis = Pids("redis-server");
  ASSERT_EQ(redis.size(), 1u);
  int before = Heartbeats("alpha");
  ASSERT_EQ(kill(redis[0], SIGKILL), 0);
  double t = Until("alpha", "/api/heartbeats", 30, [&](const HttpAnswer&) {
    int now = Heartbeats("alpha");
    return now > before;  // counting on from where it was: the data survived
  });
  std::printf("Redis kill -9: answering with its data after %.2f s\n", t);
  EXPECT_GE(t, 0) << "heartbeats before the kill: " << before << ", now " << Heartbeats("alpha");
}

TEST_F(FaultsTest, AKilledPostgresComesBackWithEveryConfirmedRow) {
  Up("alpha");
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(box_.Http("alpha", "POST", "/api/items", "row" + std::to_string(i)).status, 201);
  std::ifstream pidfile(box_.home() / "base/postgres/data/postmaster.pid");
  pid_t postmaster = 0;
  pidfile >> postmaster;
  ASSERT_GT(postmaster, 0);
  ASSERT_EQ(kill(postmaster, SIGKILL), 0);
  double t = Until("alpha", "/api/items", 60, [](const HttpAnswer& a) {
    return a.status == 200 && a.body.find("row19") != std::string::npos;
  });
  std::printf("PostgreSQL kill -9: every row back after %.2f s\n", t);
  EXPECT_GE(t, 0);
  json items = json::parse(box_.Http("alpha", "GET", "/api/items").body, nullptr, false);
  ASSERT_TRUE(items.is_array());
  EXPECT_EQ(items.size(), 21u) << items;  // the seed's row and the twenty
}

TEST_F(FaultsTest, AKilledRouterIsStartedAgainByTheControlPlane) {
  Up("alpha");
  auto router = Pids(" router --home");
  ASSERT_EQ(router.size(), 1u);
  ASSERT_EQ(kill(router[0], SIGKILL), 0);
  double t = Until("alpha", "/api/health", 30, Ok);
  std::printf("router kill -9: routing again after %.2f s\n", t);
  EXPECT_GE(t, 0);
}

TEST_F(FaultsTest, TheControlPlaneAndTheRouterKilledTogetherComeBackWithoutACommand) {
  Up("alpha");
  auto tasks = box_.TaskPids("alpha");
  auto router = Pids(" router --home");
  pid_t cp = box_.ControlPlanePid();
  ASSERT_EQ(router.size(), 1u);
  ASSERT_GT(cp, 0);
  kill(cp, SIGKILL);
  kill(router[0], SIGKILL);
  // No adhoc command runs: the keeper starts the control plane, which starts the router.
  double t = Until("alpha", "/api/health", 30, Ok);
  std::printf("control plane and router kill -9: routing again after %.2f s\n", t);
  EXPECT_GE(t, 0);
  EXPECT_EQ(box_.TaskPids("alpha"), tasks) << "the tasks were adopted, not restarted";
}

TEST_F(FaultsTest, TheKilledControlPlaneIsStartedAgainByTheKeeper) {
  Up("alpha");
  pid_t cp = box_.ControlPlanePid();
  ASSERT_GT(cp, 0);
  ASSERT_EQ(kill(cp, SIGKILL), 0);
  pid_t again = 0;
  auto t0 = Clock::now();
  while (SecondsSince(t0) < 30) {
    again = box_.ControlPlanePid();
    if (again != cp && again > 0 && kill(again, 0) == 0 && fs::exists(box_.home() / "server.sock"))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("control plane kill -9: running again after %.2f s\n", SecondsSince(t0));
  EXPECT_NE(again, cp);
  EXPECT_GT(again, 0);
}

TEST_F(FaultsTest, AKilledRouterDuringUpAndRedisDuringDestroyStillEndWell) {
  Up("beta");
  auto up = std::async(std::launch::async, [&] { return box_.Adhoc({"up", "alpha"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (pid_t p : Pids(" router --home")) kill(p, SIGKILL);
  CommandResult r = up.get();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GE(Until("alpha", "/api/health", 30, Ok), 0);
  EXPECT_GE(Until("beta", "/api/health", 30, Ok), 0);
  // Redis of alpha dies while alpha is destroyed: the destroy still leaves nothing.
  auto destroy = std::async(std::launch::async, [&] { return box_.Adhoc({"destroy", "alpha"}); });
  for (const auto& p : box_.HomeProcesses("envs/alpha"))
    if (p.cmdline.find("redis-server") != std::string::npos) kill(p.pid, SIGKILL);
  CommandResult d = destroy.get();
  if (d.exit_code != 0) d = box_.Adhoc({"destroy", "alpha"});  // a retry may finish it
  EXPECT_EQ(d.exit_code, 0) << d.output;
  ExpectNothingLeftOf("alpha");
  EXPECT_EQ(box_.Http("beta", "GET", "/api/health").status, 200);
}

}  // namespace
}  // namespace adhoc::e2e
