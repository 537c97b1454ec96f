// The executor's data work against fakes: an env file's `data` checked before anything is made
// and loaded into the new database and Redis (after-create tasks skipped, migrations run),
// start data kept when a creation ends, snapshots saved, listed and removed, reset as a
// journaled operation that runs the migrations again when the code moved on.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/paths.h"
#include "plan/recorded.h"
#include "server/data_ops.h"
#include "server/executor.h"
#include "server/test_fakes.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerFixture;

constexpr char kProject[] = R"(
name = "shop"
[images.backend]
path = "backend"
[postgres]
database = "{env}-db"
[redis]
[services.api]
image = "backend"
command = "api"
port = 8000
health = "/health"
routes = ["/api/*"]
[tasks.migrate]
image = "backend"
command = "migrate"
before = "deploy"
[tasks.seed]
image = "backend"
command = "seed"
after = "create"
)";

// The same without services: the fake runtime knows tasks by id alone, so a second
// environment's "api-1" would collide with the first one's.
constexpr char kNoServices[] = R"(
name = "shop"
[images.backend]
path = "backend"
[postgres]
database = "{env}-db"
[redis]
[tasks.migrate]
image = "backend"
command = "migrate"
before = "deploy"
[tasks.seed]
image = "backend"
command = "seed"
after = "create"
)";

class ExecutorDataTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    fleet_ = std::make_unique<Fleet>(
        runtime_, clock_, *store_, routes_, factory_,
        FleetOptions{.home = home(), .settle = {}, .poll = std::chrono::milliseconds(20)});
    executor_ = std::make_unique<Executor>(*store_, *fleet_, resources_,
                                           ExecutorOptions{.home = home(), .router_port = 8080});
    fs::create_directories(project_dir());
  }

  fs::path project_dir() const { return dir_.path() / "repo"; }

  Prepared Prepare(const std::string& env, const std::string& tree,
                   const std::string& env_toml = "owner = \"me\"\n",
                   const char* project_toml = kProject) {
    Prepared p;
    p.env = env;
    p.project_dir = project_dir();
    p.repo = project_dir();
    p.project_text = project_toml;
    p.env_text = env_toml;
    auto project = spec::ParseProject(project_toml);
    EXPECT_TRUE(project.ok()) << spec::FormatDiagnostics(project.diagnostics);
    p.project = std::make_shared<const spec::Project>(project.value);
    auto env_file = spec::ParseEnvFile(p.env_text, env, "envs/" + env + ".toml", p.project.get());
    EXPECT_TRUE(env_file.ok()) << spec::FormatDiagnostics(env_file.diagnostics);
    p.env_file = std::make_shared<const spec::EnvFile>(env_file.value);
    p.resolved["backend"] = {"v-" + tree, "backend", "c-" + tree, tree, false};
    auto recorded = plan::LoadRecorded(*store_, env);
    EXPECT_TRUE(recorded.ok());
    p.recorded = *recorded;
    p.wanted.project = p.project.get();
    p.wanted.env_file = p.env_file.get();
    p.wanted.database_name = env + "-db";
    p.wanted.versions["backend"] = {"v-" + tree, "c-" + tree, tree};
    p.wanted.choices =
        plan::ChooseVersions(*p.project, *p.env_file, p.recorded, {}, "envs/" + env + ".toml");
    p.plan = plan::MakePlan(p.wanted, p.recorded);
    return p;
  }

  Result<ApplyOutcome> Up(const std::string& env, const std::string& tree,
                          const std::string& env_toml = "owner = \"me\"\n",
                          const char* project_toml = kProject) {
    return executor_->Apply(Prepare(env, tree, env_toml, project_toml), "up", quiet_);
  }

  // The one-off tasks started, by process name, in order.
  std::vector<std::string> RanTasks() {
    std::vector<std::string> out;
    for (const auto& e : log_.events())
      if (e.rfind("run migrate-", 0) == 0 || e.rfind("run seed-", 0) == 0)
        out.push_back(e.substr(4, e.find('-') - 4));
    return out;
  }

  testing::FakeResources resources_{log_};
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<Executor> executor_;
  NoProgress quiet_;
};

TEST_F(ExecutorDataTest, ACreationKeepsItsStartDataLast) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  int seed = log_.Find("run seed-");
  int kept = log_.Find("keep-start demo-db");
  ASSERT_GE(seed, 0) << log_.Dump();
  EXPECT_GT(kept, seed) << "after the after-create tasks\n" << log_.Dump();
  EXPECT_GT(log_.Find("dump-redis"), seed);
  fs::path start = paths::StartDataDir(home(), "demo");
  EXPECT_TRUE(fs::exists(start / "start.json"));
  EXPECT_EQ(fs::status(start).permissions() & fs::perms::all, fs::perms::owner_all);
  auto op = store_->LastOperation("demo");
  std::vector<std::string> steps;
  for (const auto& s : (*op)->steps) steps.push_back(s.name);
  ASSERT_GE(steps.size(), 2u);
  EXPECT_EQ(steps[steps.size() - 2], "start data");
  EXPECT_EQ(steps.back(), "record");
}

TEST_F(ExecutorDataTest, AMissingSourceIsAnErrorBeforeAnythingIsMade) {
  for (const std::string data :
       {"snapshot:preprod", "env:other", "file:dumps/missing.sql", "file:../outside.sql"}) {
    log_.Clear();
    auto r = Up("demo", "t1", "data = \"" + data + "\"\n");
    ASSERT_FALSE(r.ok()) << data;
    const std::string& m = r.error().message();
    std::string named = data.substr(data.find(':') + 1);
    if (data.starts_with("file:../")) named = "inside the project folder";
    EXPECT_NE(m.find(named), std::string::npos) << m;
    EXPECT_NE(m.find("Nothing of 'demo' was made"), std::string::npos) << m;
    EXPECT_EQ(log_.Find("folders demo"), -1) << data << "\n" << log_.Dump();
    EXPECT_FALSE(store_->FindEnvironment("demo")->has_value());
  }
}

TEST_F(ExecutorDataTest, AFileSourceLoadsTheDumpAndSkipsTheSampleData) {
  fs::create_directories(project_dir() / "dumps");
  std::ofstream(project_dir() / "dumps/preprod.sql") << "CREATE TABLE t (i int);\n";
  ASSERT_TRUE(Up("demo", "t1", "data = \"file:dumps/preprod.sql\"\n").ok()) << log_.Dump();
  int created = log_.Find("create-database demo-db");
  int loaded = log_.Find("load-database demo-db from preprod.sql");
  ASSERT_GE(loaded, 0) << log_.Dump();
  EXPECT_GT(loaded, created);
  EXPECT_EQ(log_.Find("load-redis"), -1) << "a file holds no Redis keys";
  EXPECT_EQ(RanTasks(), std::vector<std::string>{"migrate"})
      << "migrations run; the sample data does not\n"
      << log_.Dump();
}

TEST_F(ExecutorDataTest, ASnapshotRoundTripsIntoANewEnvironmentOnNewerCode) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  ASSERT_TRUE(executor_->Snapshot("demo", "preprod", quiet_).ok()) << log_.Dump();
  auto snap = store_->FindSnapshot("preprod");
  ASSERT_TRUE(snap.ok() && snap->has_value());
  EXPECT_EQ((*snap)->env, "demo");
  EXPECT_NE((*snap)->versions_json.find("\"tree\":\"t1\""), std::string::npos);
  fs::path dir = paths::SnapshotDir(home(), "preprod");
  EXPECT_EQ((*snap)->path, dir.string());
  EXPECT_TRUE(fs::exists(dir / "database.dump"));
  EXPECT_TRUE(fs::exists(dir / "redis.keys"));
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status(paths::SnapshotsDir(home())).permissions() & fs::perms::all,
            fs::perms::owner_all);
  EXPECT_TRUE(fs::is_empty(paths::IncomingSnapshotsDir(home())));

  // Snapshots outlive the environment they were taken of.
  ASSERT_TRUE(executor_->Destroy("demo", quiet_).ok());
  log_.Clear();
  auto copied = Up("copy", "t2", "data = \"snapshot:preprod\"\n", kNoServices);
  ASSERT_TRUE(copied.ok()) << copied.error().message() << "\n" << log_.Dump();
  int loaded = log_.Find("load-database copy-db from database.dump");
  int keys = log_.Find("load-redis");
  int migrate = log_.Find("run migrate-");
  ASSERT_GE(loaded, 0) << log_.Dump();
  ASSERT_GE(keys, 0) << log_.Dump();
  EXPECT_GT(migrate, loaded) << "the newer code's migrations run on the snapshot's data";
  EXPECT_EQ(log_.Find("run seed-"), -1);

  // A name is taken once; a bad one is refused; removal takes the files.
  EXPECT_EQ(executor_->Snapshot("demo", "preprod", quiet_).error().kind(), ErrorKind::kConflict);
  EXPECT_EQ(executor_->Snapshot("demo", "Bad_Name", quiet_).error().kind(), ErrorKind::kBadInput);
  EXPECT_EQ(executor_->Snapshot("nosuch", "x", quiet_).error().kind(), ErrorKind::kNotFound);
  DataOps data(*store_, resources_, home());
  auto listed = data.ListJson();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ((*listed)["snapshots"].size(), 1u);
  EXPECT_GT((*listed)["snapshots"][0]["size_bytes"].get<int64_t>(), 0);
  EXPECT_EQ((*listed)["snapshots"][0]["redis_keys"], 2);
  ASSERT_TRUE(data.Remove("preprod").ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(store_->FindSnapshot("preprod")->has_value());
  EXPECT_EQ(data.Remove("preprod").error().kind(), ErrorKind::kNotFound);
}

TEST_F(ExecutorDataTest, AFailedSnapshotKeepsNothing) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  for (const auto& e : log_.events())
    if (e.rfind("dump-redis ", 0) == 0) resources_.FailOn(e);
  Status s = executor_->Snapshot("demo", "preprod", quiet_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("Nothing was kept"), std::string::npos) << s.error().message();
  EXPECT_FALSE(store_->FindSnapshot("preprod")->has_value());
  EXPECT_FALSE(fs::exists(paths::SnapshotDir(home(), "preprod")));
  EXPECT_TRUE(fs::is_empty(paths::IncomingSnapshotsDir(home())));
}

TEST_F(ExecutorDataTest, AnEnvSourceCopiesTheOtherEnvironmentLive) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  log_.Clear();
  auto copied = Up("copy", "t1", "data = \"env:demo\"\n", kNoServices);
  ASSERT_TRUE(copied.ok()) << copied.error().message() << "\n" << log_.Dump();
  int dumped = log_.Find("dump-database demo-db");
  int loaded = log_.Find("load-database copy-db from database.dump");
  ASSERT_GE(dumped, 0) << log_.Dump();
  EXPECT_GT(loaded, dumped);
  EXPECT_GE(log_.Find("load-redis"), 0);
  EXPECT_EQ(log_.Find("stop demo"), -1) << "nothing of demo stopped";
  EXPECT_TRUE(fs::is_empty(paths::IncomingSnapshotsDir(home()))) << "its copy is removed";
  // Asleep, its Redis does not run: a clear error, nothing made.
  ASSERT_TRUE(store_->SetEnvironmentStatus("demo", state::EnvStatus::kSleeping).ok());
  auto r = Up("third", "t1", "data = \"env:demo\"\n", kNoServices);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("asleep"), std::string::npos) << r.error().message();
  EXPECT_FALSE(store_->FindEnvironment("third")->has_value());
}

TEST_F(ExecutorDataTest, ResetSwapsTheDatabaseAndRestoresRedisAsAJournaledOperation) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  log_.Clear();
  ASSERT_TRUE(executor_->Reset("demo", quiet_).ok());
  int db = log_.Find("reset-database demo-db");
  int redis = log_.Find("load-redis");
  ASSERT_GE(db, 0) << log_.Dump();
  EXPECT_GT(redis, db);
  EXPECT_EQ(RanTasks(), std::vector<std::string>{}) << "same code: nothing to migrate";
  EXPECT_EQ(log_.Find("stop "), -1) << "services keep running\n" << log_.Dump();
  auto op = store_->LastOperation("demo");
  EXPECT_EQ((*op)->kind, "reset");
  EXPECT_EQ((*op)->status, state::OperationStatus::kDone);
  EXPECT_EQ(executor_->Reset("nosuch", quiet_).error().kind(), ErrorKind::kNotFound);
}

TEST_F(ExecutorDataTest, ResetAfterADeployRunsTheNewMigrationsAgain) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  ASSERT_TRUE(executor_->Apply(Prepare("demo", "t2"), "deploy", quiet_).ok());
  log_.Clear();
  ASSERT_TRUE(executor_->Reset("demo", quiet_).ok()) << log_.Dump();
  EXPECT_EQ(RanTasks(), std::vector<std::string>{"migrate"}) << log_.Dump();
  EXPECT_GT(log_.Find("run migrate-"), log_.Find("reset-database demo-db"));
}

TEST_F(ExecutorDataTest, ResetWithoutStartDataOrAsleepIsRefused) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  ASSERT_TRUE(store_->SetEnvironmentStatus("demo", state::EnvStatus::kSleeping).ok());
  Status asleep = executor_->Reset("demo", quiet_);
  ASSERT_FALSE(asleep.ok());
  EXPECT_NE(asleep.error().message().find("wake it first"), std::string::npos);
  ASSERT_TRUE(store_->SetEnvironmentStatus("demo", state::EnvStatus::kRunning).ok());
  fs::remove_all(paths::StartDataDir(home(), "demo"));
  Status none = executor_->Reset("demo", quiet_);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(none.error().message().find("no start data"), std::string::npos);
}

TEST_F(ExecutorDataTest, RecoveryFinishesAnInterruptedResetAndUndoesASnapshot) {
  ASSERT_TRUE(Up("demo", "t1").ok());
  auto reset = store_->BeginOperation("demo", "reset", "{}", {"database"});
  ASSERT_TRUE(reset.ok());
  log_.Clear();
  auto r = executor_->Recover(*reset);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_GE(log_.Find("reset-database demo-db"), 0) << log_.Dump();
  EXPECT_EQ(store_->GetOperation(reset->id)->status, state::OperationStatus::kDone);

  // A snapshot moved into place whose record was never written goes.
  fs::create_directories(paths::SnapshotDir(home(), "half"));
  fs::create_directories(paths::IncomingSnapshotsDir(home()) / "half-1-0");
  auto snap = store_->BeginOperation("demo", "snapshot", R"({"name":"half"})", {"save"});
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(executor_->Recover(*snap).ok());
  EXPECT_FALSE(fs::exists(paths::SnapshotDir(home(), "half")));
  EXPECT_FALSE(fs::exists(paths::IncomingSnapshotsDir(home()) / "half-1-0"));
  EXPECT_EQ(store_->GetOperation(snap->id)->status, state::OperationStatus::kUndone);
}

}  // namespace
}  // namespace adhoc::server
