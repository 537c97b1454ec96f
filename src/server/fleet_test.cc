// The fleet's orchestration against fakes: the order of starts, route changes, drains and
// stops when services start, roll, roll back, scale and go; health gates; supervision.
#include "server/fleet.h"

#include <gtest/gtest.h>

#include "server/test_fakes.h"

namespace adhoc::server {
namespace {

using testing::ServerFixture;

constexpr char kProject[] = R"(
name = "shop"
[images.backend]
path = "backend"
[services.api]
image = "backend"
command = "api"
port = 8000
health = "/health"
routes = ["/api/*"]
count = 2
[services.worker]
image = "backend"
command = "worker"
[services.beat]
image = "backend"
command = "beat"
singleton = true
)";

class FleetTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    RecordEnvironment("demo", "127.50.1.0/24");
    ASSERT_TRUE(store_
                    ->ReplaceRoutes("demo", {{"demo", "demo.localhost", "/api/*", std::nullopt,
                                              "api", state::RouteKind::kService, ""}})
                    .ok());
    fleet_ = std::make_unique<Fleet>(
        runtime_, clock_, *store_, routes_, factory_,
        FleetOptions{.home = home(), .settle = {}, .poll = std::chrono::milliseconds(20)});
  }

  // Converges every service of `context`.
  void ConvergeAll(std::shared_ptr<const LaunchContext> context) {
    for (const auto& svc : context->project->services) {
      auto r = fleet_->Converge("demo", context, svc.name, quiet_);
      ASSERT_TRUE(r.ok()) << svc.name << ": " << r.error().message();
    }
  }

  std::vector<std::string> Running() { return runtime_.running(); }

  // Task ids of the api targets the router has now.
  std::vector<std::string> Targets() {
    std::vector<std::string> out;
    auto env = routes_.Env("demo");
    if (env.is_null()) return out;
    for (const auto& r : env["routes"])
      for (const auto& t : r["targets"]) out.push_back(t["id"]);
    return out;
  }

  NoProgress quiet_;
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(FleetTest, StartingAServiceGatesEachTaskThenPutsItInTheRotation) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  EXPECT_EQ(Running(), (std::vector<std::string>{"api-1", "api-2", "beat-1", "worker-1"}));
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-1", "api-2"}));
  // Each task on its own address, recorded with its generation.
  auto tasks = store_->ListTasks("demo");
  ASSERT_TRUE(tasks.ok());
  std::set<std::string> addresses;
  for (const auto& t : *tasks) {
    addresses.insert(t.address);
    EXPECT_EQ(t.generation, "g1") << t.id;
    EXPECT_EQ(t.status, state::TaskStatus::kHealthy) << t.id;
  }
  EXPECT_EQ(addresses.size(), 4u);
}

TEST_F(FleetTest, ARollStartsTheNewTaskBeforeDrainingAndStoppingEachOldOne) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  std::string api1_address;
  for (const auto& t : Tasks())
    if (t.id == "api-1") api1_address = t.address + ":8000";
  routes_.SetInFlight(api1_address, 3);  // three requests still on api-1
  log_.Clear();
  auto v2 = Context("demo", kProject, "g2");
  auto r = fleet_->Converge("demo", v2, "api", quiet_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  // One at a time: api-3 up and in the rotation, api-1 out, drained, stopped; then api-4...
  int start3 = log_.Find("start api-3"), stop1 = log_.Find("stop api-1");
  int start4 = log_.Find("start api-4"), stop2 = log_.Find("stop api-2");
  int out1 = log_.Find("route demo [api-2,api-3]");
  int drained1 = log_.Find("in-flight " + api1_address + " 0");
  ASSERT_GE(start3, 0) << log_.Dump();
  EXPECT_LT(start3, out1) << log_.Dump();
  EXPECT_LT(out1, drained1) << log_.Dump();
  EXPECT_LT(drained1, stop1) << log_.Dump();
  EXPECT_LT(stop1, start4) << log_.Dump();
  EXPECT_LT(start4, stop2) << log_.Dump();
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-3", "api-4"}));
  EXPECT_NE(r->find("2 old stopped"), std::string::npos) << *r;
}

TEST_F(FleetTest, ADrainIsBoundedByTheServicesDrainTime) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  for (const auto& t : Tasks())
    if (t.process == "api") routes_.SetInFlight(t.address + ":8000", -1);  // never finish
  auto start = clock_.Now();
  auto r = fleet_->Converge("demo", Context("demo", kProject, "g2"), "api", quiet_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  // Two drains of the default 5 s each, no more.
  EXPECT_GE(clock_.Now() - start, std::chrono::seconds(10));
  EXPECT_LT(clock_.Now() - start, std::chrono::seconds(11));
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-3", "api-4"}));
}

TEST_F(FleetTest, DrainAllWaitsForEachRoutedTaskWithOneDeadlineForAll) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  std::vector<std::string> api;
  for (const auto& t : Tasks())
    if (t.process == "api") api.push_back(t.address + ":8000");
  ASSERT_EQ(api.size(), 2u);
  routes_.SetInFlight(api[0], 2);   // two requests that finish
  routes_.SetInFlight(api[1], -1);  // one that never does
  log_.Clear();
  auto start = clock_.Now();
  fleet_->DrainAll("demo");
  // Both asked until done or out of time; the waits overlap (5 s in all, not 10).
  EXPECT_GE(log_.Find("in-flight " + api[0] + " 0"), 0) << log_.Dump();
  EXPECT_GE(log_.Find("in-flight " + api[1]), 0) << log_.Dump();
  EXPECT_GE(clock_.Now() - start, std::chrono::seconds(5));
  EXPECT_LT(clock_.Now() - start, std::chrono::seconds(6));
  // Services without a port (workers, beat) have nothing to drain; nothing was stopped.
  EXPECT_EQ(log_.Find("stop "), -1) << log_.Dump();
  EXPECT_EQ(Tasks().size(), 4u);
}

TEST_F(FleetTest, ASingletonIsStoppedBeforeItsReplacementStarts) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  log_.Clear();
  ASSERT_TRUE(fleet_->Converge("demo", Context("demo", kProject, "g2"), "beat", quiet_).ok());
  EXPECT_LT(log_.Find("stop beat-1"), log_.Find("start beat-2")) << log_.Dump();
  // A worker overlaps: the new one runs before the old one stops.
  log_.Clear();
  ASSERT_TRUE(fleet_->Converge("demo", Context("demo", kProject, "g2"), "worker", quiet_).ok());
  EXPECT_LT(log_.Find("start worker-2"), log_.Find("stop worker-1")) << log_.Dump();
}

TEST_F(FleetTest, ANewTaskThatNeverGetsHealthyIsStoppedAndTheOldOnesKeepServing) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  // The next address handed out (the first free one after the four tasks) never answers.
  health_.Set("127.50.1.14", false);
  auto r = fleet_->Converge("demo", Context("demo", kProject, "g2"), "api", quiet_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("did not become healthy in time"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-1", "api-2"}));
  auto running = Running();
  EXPECT_EQ(std::count(running.begin(), running.end(), "api-3"), 0);
  EXPECT_EQ(std::count(running.begin(), running.end(), "api-1"), 1);
}

TEST_F(FleetTest, RollingBackReplacesOnlyTheTasksOfTheNewGeneration) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  // The roll of api fails on its second new task: one old task is already replaced.
  health_.Set("127.50.1.15", false);
  auto v2 = Context("demo", kProject, "g2");
  ASSERT_FALSE(fleet_->Converge("demo", v2, "api", quiet_).ok());
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-2", "api-3"}));
  log_.Clear();
  ASSERT_TRUE(fleet_->Converge("demo", v1, "api", quiet_).ok());
  // api-2 (g1) stays; api-3 (g2) is replaced by a g1 task.
  EXPECT_EQ(log_.Find("stop api-2"), -1) << log_.Dump();
  EXPECT_GE(log_.Find("stop api-3"), 0) << log_.Dump();
  for (const auto& t : Tasks())
    if (t.process == "api") {
      EXPECT_EQ(t.generation, "g1") << t.id;
    }
  EXPECT_EQ(Targets().size(), 2u);
}

TEST_F(FleetTest, ScalingAndRemovingAService) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  std::string three = kProject;
  three.replace(three.find("count = 2"), 9, "count = 3");
  auto scaled = Context("demo", three, "g1");
  log_.Clear();
  ASSERT_TRUE(fleet_->Converge("demo", scaled, "api", quiet_).ok());
  EXPECT_EQ(log_.Find("stop "), -1) << "scaling up keeps the running tasks\n" << log_.Dump();
  EXPECT_EQ(Targets().size(), 3u);
  // A context without the service removes it.
  std::string without = kProject;
  without.erase(without.find("[services.worker]"),
                without.find("[services.beat]") - without.find("[services.worker]"));
  ASSERT_TRUE(fleet_->Converge("demo", Context("demo", without, "g1"), "worker", quiet_).ok());
  auto running = Running();
  EXPECT_EQ(std::count(running.begin(), running.end(), "worker-1"), 0);
}

TEST_F(FleetTest, AnExitedTaskIsRestartedAndAStuckUnhealthyOneIsReplaced) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  runtime_.Exit("worker-1", {-1, SIGKILL});
  fleet_->Tick();                           // sees the exit
  clock_.Advance(std::chrono::seconds(1));  // past the first back-off
  fleet_->Tick();                           // restarts it
  auto running = Running();
  EXPECT_EQ(std::count(running.begin(), running.end(), "worker-2"), 1) << log_.Dump();
  auto views = fleet_->Describe("demo");
  for (const auto& v : views)
    if (v.name == "worker") {
      EXPECT_EQ(v.tasks[0].restarts, 1);
    }

  // api-1 stops answering: it leaves the rotation, and past the start timeout (60 s) it is
  // replaced, as ECS replaces a task its target group finds unhealthy.
  std::string api1;
  for (const auto& t : Tasks())
    if (t.id == "api-1") api1 = t.address;
  health_.Set(api1, false);
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(std::chrono::seconds(7));
    fleet_->Tick();
  }
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-2"}));
  for (int i = 0; i < 12; ++i) {
    clock_.Advance(std::chrono::seconds(7));
    fleet_->Tick();
  }
  fleet_.reset();  // joins the background stop
  running = Running();
  EXPECT_EQ(std::count(running.begin(), running.end(), "api-1"), 0) << log_.Dump();
}

TEST_F(FleetTest, DescribeShowsAKilledTaskAsExitedAtOnce) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  runtime_.Exit("api-1", {-1, SIGKILL});
  for (const auto& v : fleet_->Describe("demo"))
    if (v.name == "api")
      for (const auto& t : v.tasks) {
        EXPECT_EQ(t.status, t.id == "api-1" ? "exited" : "healthy") << t.id;
      }
}

TEST_F(FleetTest, RestoreAdoptsTheRecordedGenerationAndStopsTheRest) {
  auto v1 = Context("demo", kProject, "g1");
  ConvergeAll(v1);
  // An update died mid-roll: api-3 of g2 runs beside the g1 tasks.
  auto v2 = Context("demo", kProject, "g2");
  health_.Set("127.50.1.15", false);
  ASSERT_FALSE(fleet_->Converge("demo", v2, "api", quiet_).ok());
  // A new control plane (a new fleet) restores from the record, which says g1.
  Fleet restored(runtime_, clock_, *store_, routes_, factory_,
                 FleetOptions{.home = home(), .settle = {}, .poll = std::chrono::milliseconds(20)});
  log_.Clear();
  auto r = restored.Restore("demo", v1);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_GE(log_.Find("stop api-3"), 0) << log_.Dump();
  EXPECT_EQ(log_.Find("stop api-2"), -1) << log_.Dump();
  restored.Tick();  // the supervisor starts the missing g1 task
  int api_running = 0;
  for (const auto& id : Running()) api_running += id.rfind("api-", 0) == 0;
  EXPECT_EQ(api_running, 2) << log_.Dump();
  for (const auto& t : Tasks())
    if (t.process == "api") {
      EXPECT_EQ(t.generation, "g1") << t.id;
    }
}

// The router is told who may enter with the routes, the values rendered as the processes see
// them ({random.*} made once in the store).
TEST_F(FleetTest, TheRouterGetsTheEnvironmentsAccessRulesWithItsRoutes) {
  auto v1 = Context("demo", kProject, "g1",
                    "[access]\nbasic_auth = \"{env}:{random.pw}\"\n"
                    "token = \"{random.access_token}\"\npublic_paths = [\"/api/health\"]\n");
  ConvergeAll(v1);
  auto env = routes_.Env("demo");
  ASSERT_TRUE(env.contains("access")) << env;
  const auto& access = env["access"];
  auto pw = store_->GetOrCreateRandom("demo", "pw", [] { return std::string("unused"); });
  auto token = store_->GetOrCreateRandom("demo", "access_token", [] { return std::string("x"); });
  ASSERT_TRUE(pw.ok() && token.ok());
  EXPECT_EQ(pw->size(), 50u);  // 25 random bytes in hex
  EXPECT_EQ(access["basic_auth"],
            nlohmann::json::parse(R"([{"user":"demo","password":")" + *pw + R"("}])"));
  EXPECT_EQ(access["token"], *token);
  EXPECT_EQ(access["public_paths"], nlohmann::json::parse(R"(["/api/health"])"));
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-1", "api-2"}));
  // Without [access], nothing is sent: the router keeps no rule object for it.
  ConvergeAll(Context("demo", kProject, "g1"));
  EXPECT_FALSE(routes_.Env("demo").contains("access")) << routes_.Env("demo");
  EXPECT_EQ(Targets(), (std::vector<std::string>{"api-1", "api-2"}));
}

// Fail closed: rules that cannot be rendered guard nothing, so the router gets no route at
// all rather than an open environment.
TEST_F(FleetTest, RulesThatCannotBeRenderedLeaveTheEnvironmentWithoutRoutes) {
  ConvergeAll(Context("demo", kProject, "g1"));
  ASSERT_EQ(Targets(), (std::vector<std::string>{"api-1", "api-2"}));
  // {env}-token renders to "demo-token": 10 characters, too short for a token.
  auto bad = Context("demo", kProject, "g1", "[access]\ntoken = \"{env}-token\"\n");
  fleet_->SetContext("demo", bad);
  ASSERT_TRUE(fleet_->PushRoutes("demo").ok());
  auto env = routes_.Env("demo");
  EXPECT_EQ(env["name"], "demo");
  EXPECT_TRUE(env["routes"].empty()) << env;
  EXPECT_FALSE(env.contains("access")) << env;
  EXPECT_EQ(env["hosts"], nlohmann::json::parse(R"(["demo.localhost"])"));
}

TEST_F(FleetTest, AnEnvironmentWithoutAContextGetsNoRoutes) {
  // Its files are unknown (a restore failed): whether it is guarded is unknown too.
  ASSERT_TRUE(fleet_->PushRoutes("demo").ok());
  auto env = routes_.Env("demo");
  EXPECT_TRUE(env["routes"].empty()) << env;
  ASSERT_TRUE(fleet_->PushAll().ok());
  EXPECT_TRUE(routes_.Env("demo")["routes"].empty()) << routes_.Env("demo");
}

}  // namespace
}  // namespace adhoc::server
