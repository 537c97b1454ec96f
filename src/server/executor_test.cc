// The executor against fakes: the plan's steps are exactly what runs, in order, journaled with
// their undo; a failure at any step leaves a new environment with nothing, and an existing one
// running what it ran before; recovery finishes or undoes from the journal.
#include "server/executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "plan/recorded.h"
#include "server/test_fakes.h"

namespace adhoc::server {
namespace {

using nlohmann::json;
using testing::ServerFixture;

constexpr char kProject[] = R"(
name = "shop"
[images.backend]
path = "backend"
[postgres]
[redis]
[services.api]
image = "backend"
command = "api"
port = 8000
health = "/health"
routes = ["/api/*"]
[services.worker]
image = "backend"
command = "worker"
[tasks.migrate]
image = "backend"
command = "migrate"
before = "deploy"
[tasks.seed]
image = "backend"
command = "seed"
after = "create"
)";

class ExecutorTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    fleet_ = std::make_unique<Fleet>(
        runtime_, clock_, *store_, routes_, factory_,
        FleetOptions{.home = home(), .settle = {}, .poll = std::chrono::milliseconds(20)});
    executor_ = std::make_unique<Executor>(*store_, *fleet_, resources_,
                                           ExecutorOptions{.home = home(), .router_port = 8080});
    executor_->on_step = [this](const plan::Step& s) {
      std::lock_guard lock(executed_mu_);  // steps of one wave run at once
      executed_.push_back(StepName(s));
    };
  }

  // What Prepare() makes of `project_toml` and an env file at `tree` of the backend.
  Prepared Prepare(const std::string& tree, const std::string& project_toml = kProject,
                   const std::string& env_toml = "owner = \"me\"\n") {
    Prepared p;
    p.env = "demo";
    p.project_dir = "/repo";
    p.repo = "/repo";
    p.project_text = project_toml;
    p.env_text = env_toml;
    auto project = spec::ParseProject(project_toml);
    EXPECT_TRUE(project.ok()) << spec::FormatDiagnostics(project.diagnostics);
    p.project = std::make_shared<const spec::Project>(project.value);
    auto env_file = spec::ParseEnvFile(p.env_text, "demo", "envs/demo.toml", p.project.get());
    EXPECT_TRUE(env_file.ok()) << spec::FormatDiagnostics(env_file.diagnostics);
    p.env_file = std::make_shared<const spec::EnvFile>(env_file.value);
    p.resolved["backend"] = {"v-" + tree, "backend", "c-" + tree, tree, false};
    auto recorded = plan::LoadRecorded(*store_, "demo");
    EXPECT_TRUE(recorded.ok());
    p.recorded = *recorded;
    p.wanted.project = p.project.get();
    p.wanted.env_file = p.env_file.get();
    p.wanted.database_name = "demo-db";
    p.wanted.versions["backend"] = {"v-" + tree, "c-" + tree, tree};
    p.wanted.choices =
        plan::ChooseVersions(*p.project, *p.env_file, p.recorded, {}, "envs/demo.toml");
    p.plan = plan::MakePlan(p.wanted, p.recorded);
    return p;
  }

  Result<ApplyOutcome> Apply(const Prepared& p, const std::string& kind = "up") {
    executed_.clear();
    return executor_->Apply(p, kind, quiet_);
  }

  std::vector<std::string> JournalSteps() {
    auto op = store_->LastOperation("demo");
    std::vector<std::string> out;
    if (op.ok() && *op)
      for (const auto& s : (*op)->steps) out.push_back(s.name);
    return out;
  }

  void ExpectNothingLeft() {
    auto env = store_->FindEnvironment("demo");
    ASSERT_TRUE(env.ok());
    EXPECT_FALSE(env->has_value());
    auto blocks = store_->ListBlocks();
    ASSERT_TRUE(blocks.ok());
    EXPECT_TRUE(blocks->empty());
    EXPECT_TRUE(runtime_.running().empty()) << log_.Dump();
    EXPECT_GE(log_.Find("drop-databases demo"), 0) << log_.Dump();
    EXPECT_GE(log_.Find("destroy-redis demo"), 0) << log_.Dump();
    EXPECT_GE(log_.Find("remove-folders demo"), 0) << log_.Dump();
    EXPECT_GE(log_.Find("route-remove demo"), 0) << log_.Dump();
  }

  testing::FakeResources resources_{log_};
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<Executor> executor_;
  std::mutex executed_mu_;
  std::vector<std::string> executed_;
  NoProgress quiet_;
};

// The position of each name in `order`; -1 when absent.
int Position(const std::vector<std::string>& order, const std::string& name) {
  auto it = std::find(order.begin(), order.end(), name);
  return it == order.end() ? -1 : static_cast<int>(it - order.begin());
}

TEST_F(ExecutorTest, TheStepsExecutedAreThePlansStepsEachOnceJournaledWhatTheyNeedFirst) {
  Prepared p = Prepare("t1");
  std::vector<std::string> planned;
  for (const auto& s : p.plan.steps) planned.push_back(StepName(s));
  ASSERT_TRUE(Apply(p).ok());
  std::vector<std::string> executed = executed_;
  std::sort(executed.begin(), executed.end());
  std::vector<std::string> sorted_plan = planned;
  std::sort(sorted_plan.begin(), sorted_plan.end());
  EXPECT_EQ(executed, sorted_plan);
  // Whatever ran at once, each step came after what it needs.
  auto before = [&](const std::string& a, const std::string& b) {
    EXPECT_LT(Position(executed_, a), Position(executed_, b)) << a << " before " << b;
  };
  for (const char* prepared : {"release backend", "database", "redis"}) {
    before(prepared, "task migrate");
  }
  before("task migrate", "service api");
  before("service api", "service worker");  // routed first
  before("service worker", "task seed");
  std::vector<std::string> journal = JournalSteps();
  ASSERT_GE(journal.size(), 3u);
  EXPECT_EQ(journal.front(), "allocate");
  EXPECT_EQ(journal[1], "base");
  EXPECT_EQ(journal.back(), "record");
  EXPECT_EQ(journal[journal.size() - 2], "start data");  // what `adhoc reset` returns to
  std::vector<std::string> journaled(journal.begin() + 2, journal.end() - 2);
  std::sort(journaled.begin(), journaled.end());
  EXPECT_EQ(journaled, sorted_plan);
  auto env = store_->GetEnvironment("demo");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->status, state::EnvStatus::kRunning);
  EXPECT_EQ(store_->GetVersion("demo", "backend")->tree, "t1");
  // Each step's undo was recorded: the database step says how to drop it.
  auto op = store_->LastOperation("demo");
  for (const auto& s : (*op)->steps)
    if (s.name == "database") {
      EXPECT_EQ(json::parse(s.undo_json)["undo"], "drop_databases");
    }
  // Up again with nothing changed: nothing runs.
  auto again = Apply(Prepare("t1"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_TRUE(executed_.empty());
}

class ExecutorFailureTest : public ExecutorTest,
                            public ::testing::WithParamInterface<std::string> {};

TEST_P(ExecutorFailureTest, AFailedNewEnvironmentLeavesNothing) {
  const std::string point = GetParam();
  if (point == "migrate" || point == "seed")
    runtime_.SetRunResultFor(point + "-", {"boom"}, {3, 0});
  else if (point == "api")
    health_.SetDefault(false);
  else
    resources_.FailOn(point);
  auto r = Apply(Prepare("t1"));
  ASSERT_FALSE(r.ok()) << point;
  EXPECT_NE(r.error().message().find("Nothing of 'demo' was left behind"), std::string::npos)
      << r.error().message();
  ExpectNothingLeft();
}

INSTANTIATE_TEST_SUITE_P(Points, ExecutorFailureTest,
                         ::testing::Values("router", "release backend", "create-database demo-db",
                                           "redis demo", "migrate", "api", "seed"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST_F(ExecutorTest, AFailedUpdateRollsBackTheServicesItRolledAndSaysWhatItCouldNotUndo) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  // The new version's api never gets healthy (every address but the old api's): its roll fails.
  std::string old_api;
  for (const auto& t : Tasks())
    if (t.process == "api") old_api = t.address;
  health_.SetDefault(false);
  health_.Set(old_api, true);
  auto r = Apply(Prepare("t2"), "deploy");
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("service api"), std::string::npos) << m;
  EXPECT_NE(m.find("still runs what it ran before"), std::string::npos) << m;
  EXPECT_NE(m.find("migrate ran with backend v-t2"), std::string::npos) << m;
  EXPECT_NE(m.find("expand, then contract"), std::string::npos) << m;
  // Still the old version: record, generation and targets.
  EXPECT_EQ(store_->GetVersion("demo", "backend")->tree, "t1");
  EXPECT_EQ(store_->GetEnvironment("demo")->status, state::EnvStatus::kRunning);
  auto op = store_->LastOperation("demo");
  EXPECT_EQ((*op)->status, state::OperationStatus::kFailed);
  EXPECT_EQ((*op)->kind, "deploy");
  auto env = routes_.Env("demo");
  ASSERT_FALSE(env.is_null());
  EXPECT_EQ(env["routes"][0]["targets"][0]["id"], "api-1") << env;
}

TEST_F(ExecutorTest, AFailureAfterAServiceRolledRollsThatServiceBack) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  std::map<std::string, std::string> old_generation;  // process -> generation
  for (const auto& t : Tasks()) old_generation[t.process] = t.generation;
  // api rolls fine; the worker's new task cannot start: api goes back to the old version.
  executor_->on_step = [this](const plan::Step& s) {
    if (StepName(s) == "service worker") runtime_.FailNextStart(Failed("no such program"));
  };
  auto r = Apply(Prepare("t2"), "deploy");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("Rolled back: service worker, service api"), std::string::npos)
      << r.error().message();
  for (const auto& t : Tasks())
    if (t.process == "api" || t.process == "worker") {
      EXPECT_EQ(t.generation, old_generation[t.process]) << t.id;
    }
}

TEST_F(ExecutorTest, RecoveryUndoesAHalfMadeEnvironmentFromItsJournal) {
  // A control plane died during the migration of a new environment: allocate, base, release,
  // database and redis done, migrate running.
  Prepared p = Prepare("t1");
  executor_->on_step = [](const plan::Step& s) {
    if (s.target == "migrate") throw std::runtime_error("the control plane died here");
  };
  EXPECT_THROW((void)Apply(p), std::runtime_error);
  auto unfinished = store_->ListUnfinishedOperations();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  log_.Clear();
  auto r = executor_->Recover((*unfinished)[0]);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_NE(r->find("undone"), std::string::npos) << *r;
  ExpectNothingLeft();
  EXPECT_EQ((*store_->GetOperation((*unfinished)[0].id)).status, state::OperationStatus::kUndone);
}

TEST_F(ExecutorTest, RecoveryOfAnInterruptedUpdateNotesWhatRanAndKeepsTheEnvironment) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  executor_->on_step = [](const plan::Step& s) {
    if (s.target == "api") throw std::runtime_error("died while rolling api");
  };
  EXPECT_THROW((void)Apply(Prepare("t2")), std::runtime_error);
  auto unfinished = store_->ListUnfinishedOperations();
  ASSERT_EQ(unfinished->size(), 1u);
  auto r = executor_->Recover((*unfinished)[0]);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->find("migrate ran with backend v-t2"), std::string::npos) << *r;
  EXPECT_EQ(store_->GetEnvironment("demo")->status, state::EnvStatus::kRunning);
  EXPECT_EQ(store_->GetVersion("demo", "backend")->tree, "t1");
}

TEST_F(ExecutorTest, DestroyRemovesEverythingAndIsJournaled) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  log_.Clear();
  ASSERT_TRUE(executor_->Destroy("demo", quiet_).ok());
  ExpectNothingLeft();
  EXPECT_EQ(executor_->Destroy("demo", quiet_).error().kind(), ErrorKind::kNotFound);
}

TEST_F(ExecutorTest, SleepStopsEveryProcessAndWakeStartsThemAgain) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  ASSERT_FALSE(runtime_.running().empty());
  log_.Clear();
  ASSERT_TRUE(executor_->Sleep("demo", "by hand", quiet_).ok());
  EXPECT_EQ(store_->GetEnvironment("demo")->status, state::EnvStatus::kSleeping);
  EXPECT_TRUE(runtime_.running().empty()) << log_.Dump();
  EXPECT_GE(log_.Find("stop-redis demo"), 0) << log_.Dump();
  EXPECT_EQ(routes_.Env("demo")["status"], "sleeping");
  for (const auto& t : Tasks()) EXPECT_NE(t.kind, "service") << t.id << " outlived the sleep";
  EXPECT_EQ(JournalSteps(), (std::vector<std::string>{"routes", "processes"}));
  EXPECT_EQ((*store_->LastOperation("demo"))->kind, "sleep");
  // Asleep twice is asleep.
  EXPECT_TRUE(executor_->Sleep("demo", "by hand", quiet_).ok());

  ASSERT_TRUE(executor_->Wake("demo", quiet_).ok());
  EXPECT_EQ(store_->GetEnvironment("demo")->status, state::EnvStatus::kRunning);
  EXPECT_EQ(runtime_.running().size(), 2u) << log_.Dump();  // api and worker
  auto env = routes_.Env("demo");
  EXPECT_EQ(env["status"], "running") << env;
  EXPECT_EQ(env["routes"][0]["targets"].size(), 1u) << env;
  EXPECT_EQ(JournalSteps(), (std::vector<std::string>{"redis", "services", "routes", "workers"}));
  // The same generation as before the sleep: waking is not a deploy.
  EXPECT_EQ(store_->GetVersion("demo", "backend")->tree, "t1");
}

TEST_F(ExecutorTest, AWakeThatFailsLeavesItAsleepWithNothingRunning) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  ASSERT_TRUE(executor_->Sleep("demo", "by hand", quiet_).ok());
  health_.SetDefault(false);  // api never becomes healthy
  Status woke = executor_->Wake("demo", quiet_);
  ASSERT_FALSE(woke.ok());
  EXPECT_NE(woke.error().message().find("'demo' is still asleep"), std::string::npos)
      << woke.error().message();
  EXPECT_EQ(store_->GetEnvironment("demo")->status, state::EnvStatus::kSleeping);
  EXPECT_TRUE(runtime_.running().empty()) << log_.Dump();
  EXPECT_EQ(routes_.Env("demo")["status"], "sleeping");
}

TEST_F(ExecutorTest, RecoveryFinishesAnInterruptedSleep) {
  ASSERT_TRUE(Apply(Prepare("t1")).ok());
  // A control plane died right after a sleep began: nothing stopped yet.
  auto op = store_->BeginOperation("demo", "sleep", "{}", {});
  ASSERT_TRUE(op.ok());
  auto r = executor_->Recover(*op);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_NE(r->find("asleep"), std::string::npos) << *r;
  EXPECT_EQ(store_->GetEnvironment("demo")->status, state::EnvStatus::kSleeping);
  EXPECT_TRUE(runtime_.running().empty()) << log_.Dump();
  EXPECT_EQ((*store_->GetOperation(op->id)).status, state::OperationStatus::kDone);
}

TEST(WavesTest, PreparationRunsAtOnceTasksAloneAndRoutedServicesBeforeTheOthers) {
  auto project = spec::ParseProject(kProject);
  ASSERT_TRUE(project.ok());
  plan::Plan p;
  auto add = [&](plan::Action action, const std::string& target,
                 plan::TaskPhase phase = plan::TaskPhase::kBeforeDeploy) {
    plan::Step s{action, target, "test"};
    s.phase = phase;
    p.steps.push_back(s);
  };
  add(plan::Action::kBuildRelease, "backend");
  add(plan::Action::kCreateDatabase, "demo-db");
  add(plan::Action::kStartRedis, "redis");
  add(plan::Action::kRunTask, "migrate");
  add(plan::Action::kSetAccess, "rules");
  add(plan::Action::kStartService, "worker");  // file order: the worker before the api
  add(plan::Action::kStartService, "api");
  add(plan::Action::kAddRoutes, "static");
  add(plan::Action::kRunTask, "seed", plan::TaskPhase::kAfterCreate);
  std::vector<std::vector<std::string>> names;
  for (const auto& wave : Waves(p, project.value)) {
    names.emplace_back();
    for (const plan::Step* s : wave) names.back().push_back(StepName(*s));
  }
  std::vector<std::vector<std::string>> expected = {
      {"release backend", "database", "redis"},
      {"task migrate"},
      {"access rules"},
      {"service api"},
      {"service worker"},
      {"routes static"},
      {"task seed"},
  };
  EXPECT_EQ(names, expected);
}

TEST_F(ExecutorTest, TheRecordKeepsTtlAndSleepAfterWithNeverAsNone) {
  const std::string project = std::string("sleep_after = \"20m\"\n") + kProject;
  ASSERT_TRUE(Apply(Prepare("t1", project, "ttl = \"never\"\nsleep_after = \"never\"\n")).ok());
  auto env = store_->GetEnvironment("demo");
  EXPECT_FALSE(env->sleep_after_seconds.has_value()) << "the env file's never wins";
  EXPECT_FALSE(env->ttl_seconds.has_value());
  ASSERT_TRUE(executor_->Destroy("demo", quiet_).ok());
  ASSERT_TRUE(Apply(Prepare("t1", project)).ok());
  env = store_->GetEnvironment("demo");
  EXPECT_EQ(env->sleep_after_seconds, 1200) << "adhoc.toml's default";
}

// Rules that cannot be rendered would leave the environment unreachable (the router gets no
// route of it): `up` says why before it makes anything.
TEST_F(ExecutorTest, AnUpWhoseAccessRulesCannotBeRenderedStopsBeforeItMakesAnything) {
  auto r = Apply(Prepare("t1", kProject, "[access]\ntoken = \"{env}-token\"\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kFailed);  // exit 1
  EXPECT_EQ(r.error().message(),
            "the access rules of 'demo': access.token (envs/demo.toml:2): '{env}-token' renders "
            "to 'demo-token' (10 characters); a token needs 16 or more, such as "
            "'{random.access_token}'\nNothing was changed.");
  EXPECT_TRUE(executed_.empty());
  EXPECT_TRUE(log_.events().empty()) << log_.Dump();
  EXPECT_FALSE(store_->FindEnvironment("demo")->has_value());
  EXPECT_FALSE(store_->LastOperation("demo")->has_value());
  // {secret.*} is not built: the same, saying so.
  r = Apply(Prepare("t1", kProject, "[access]\nbasic_auth = \"qa:{secret.pw}\"\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("secrets are not built yet"), std::string::npos)
      << r.error().message();
  EXPECT_FALSE(store_->FindEnvironment("demo")->has_value());
}

// A change of [access] alone is a change: one step sets the new rules, nothing restarts.
TEST_F(ExecutorTest, ChangingOnlyTheAccessRulesSetsThemWithoutTouchingAService) {
  const std::string guarded = "[access]\nbasic_auth = \"qa:{random.qa}\"\n";
  Prepared first = Prepare("t1", kProject, guarded);
  std::vector<std::string> planned;
  for (const auto& step : first.plan.steps) planned.push_back(StepName(step));
  // The rules before the services, so no route is ever served without them.
  auto access_at = std::find(planned.begin(), planned.end(), "access rules");
  auto api_at = std::find(planned.begin(), planned.end(), "service api");
  ASSERT_NE(access_at, planned.end()) << ::testing::PrintToString(planned);
  EXPECT_LT(access_at, api_at);
  ASSERT_TRUE(Apply(first).ok());
  auto env = routes_.Env("demo");
  ASSERT_TRUE(env.contains("access")) << env;
  EXPECT_EQ(env["access"]["basic_auth"][0]["user"], "qa");
  EXPECT_EQ(Apply(Prepare("t1", kProject, guarded))->changed, false);

  auto before = Tasks();
  Prepared changed = Prepare("t1", kProject, "[access]\nallow = [\"10.0.0.0/8\"]\n");
  ASSERT_EQ(changed.plan.steps.size(), 1u) << plan::FormatPlan(changed.plan, "demo");
  EXPECT_EQ(changed.plan.steps[0].reason, "[access] changed");
  EXPECT_NE(plan::FormatPlan(changed.plan, "demo").find("~ set access rules (allow 10.0.0.0/8)"),
            std::string::npos)
      << plan::FormatPlan(changed.plan, "demo");
  log_.Clear();
  ASSERT_TRUE(Apply(changed).ok());
  env = routes_.Env("demo");
  EXPECT_EQ(env["access"], json::parse(R"({"allow":["10.0.0.0/8"]})")) << env;
  EXPECT_EQ(env["routes"][0]["targets"][0]["id"], "api-1") << env;
  EXPECT_EQ(log_.Find("start "), -1) << log_.Dump();
  EXPECT_EQ(log_.Find("stop "), -1) << log_.Dump();
  EXPECT_EQ(Tasks().size(), before.size());
  // And removed: open again.
  Prepared open = Prepare("t1");
  ASSERT_EQ(open.plan.steps.size(), 1u);
  EXPECT_EQ(open.plan.steps[0].reason, "[access] removed: open to everyone");
  ASSERT_TRUE(Apply(open).ok());
  EXPECT_FALSE(routes_.Env("demo").contains("access")) << routes_.Env("demo");
}

}  // namespace
}  // namespace adhoc::server
