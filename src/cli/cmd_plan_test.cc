// `adhoc plan`, run as the real binary against a real git repository and a home of the
// test's own.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/offline_test_support.h"
#include "common/paths.h"
#include "plan/plan.h"
#include "plan/recorded.h"
#include "server/api_client.h"
#include "state/store.h"

namespace adhoc::cli::testing {
namespace {

// Every kind of step: two releases, a database, a Redis, a before-deploy task, services
// with routes, static routes and an after-create task.
constexpr char kProject[] = R"(name = "shop"

[images.backend]
path = "backend"

[images.frontend]
path = "frontend"
build = ["true"]

[postgres]

[redis]

[static]
routes = ["/static/*"]

[env]
DATABASE_URL = "{postgres.url}"
REDIS_URL = "{redis.url}"

[services.web]
image = "backend"
command = "/usr/bin/python3 -m http.server --bind {host} {port}"
port = 8000
routes = ["/api/*"]

[services.ui]
image = "frontend"
command = "/usr/bin/python3 -m http.server --bind {host} {port}"
port = 3000
routes = ["/*"]

[tasks.migrate]
image = "backend"
command = "/usr/bin/python3 manage.py migrate"
before = "deploy"

[tasks.sample-data]
image = "backend"
command = "/usr/bin/python3 manage.py load"
after = "create"
)";

class CliPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitGitRepo(repo());
    WriteFile(repo() / "adhoc.toml", kProject);
    WriteFile(repo() / "backend/manage.py", "print(1)\n");
    WriteFile(repo() / "frontend/index.html", "v1\n");
    v1_ = CommitAll(repo(), "first", "v1.0.0");
    WriteFile(repo() / "frontend/index.html", "v2\n");
    v2_ = CommitAll(repo(), "second", "v2.0.0");
    backend_tree_ = Sh(repo(), "git rev-parse v1.0.0:backend");
    frontend_tree_ = Sh(repo(), "git rev-parse v2.0.0:frontend");
  }

  // The plan came from the control plane the CLI started: stop it and all it started.
  void TearDown() override {
    server::ApiClient client(paths::ServerSocket(home()));
    if (client.Reachable()) (void)Adhoc({"base", "down"});
    for (int i = 0; i < 200 && client.Reachable(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  // A plan changes nothing: no environment recorded, no release built.
  void ExpectNothingMade() {
    std::error_code ec;
    if (!fs::exists(paths::StateDb(home()), ec)) return;
    auto store = state::Store::Open(paths::StateDb(home()));
    ASSERT_TRUE(store.ok());
    auto envs = (*store)->ListEnvironments();
    ASSERT_TRUE(envs.ok());
    EXPECT_TRUE(envs->empty());
  }

  fs::path repo() const { return repo_.path(); }
  fs::path home() const { return home_.path() / "home"; }
  CliRun Adhoc(const std::vector<std::string>& args) { return RunAdhoc(repo(), home(), args); }

  void NewFeatureAbc() {
    CliRun run = Adhoc(
        {"new", "feature-abc", "--version", "backend=v1.0.0", "--version", "frontend=v2.0.0"});
    ASSERT_EQ(run.exit_code, 0) << run;
  }

  TempDir repo_;
  TempDir home_;
  std::string v1_, v2_, backend_tree_, frontend_tree_;
};

// Where `needle` starts in `text`, failing the test when it is absent.
size_t At(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << "'" << needle << "' not in:\n" << text;
  return at;
}

TEST_F(CliPlanTest, PlanOfANewEnvironmentListsStepsInOrderWithResolvedCommits) {
  NewFeatureAbc();
  CliRun run = Adhoc({"plan", "feature-abc"});
  ASSERT_EQ(run.exit_code, 0) << run;
  const std::string& out = run.out;
  // The versions first, each resolved to its commit and folder tree.
  EXPECT_NE(out.find("backend    v1.0.0 -> commit " + v1_.substr(0, 7) + ", tree " +
                     backend_tree_.substr(0, 7) + " (release to build)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("frontend   v2.0.0 -> commit " + v2_.substr(0, 7) + ", tree " +
                     frontend_tree_.substr(0, 7)),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("adhoc up would create feature-abc"), std::string::npos) << out;
  EXPECT_GE(CountOf(out, "new environment"), 8) << out;
  // DESIGN's order: releases, database, Redis, before-deploy tasks, services, after-create.
  size_t versions = At(out, "Versions:");
  size_t build_backend = At(out, "release backend");
  size_t build_frontend = At(out, "release frontend");
  size_t database = At(out, "create database feature-abc-db");
  size_t redis = At(out, "redis");
  size_t migrate = At(out, "migrate");
  size_t web = At(out, "web (1 task)");
  size_t ui = At(out, "ui (1 task)");
  size_t sample = At(out, "sample-data");
  EXPECT_LT(versions, build_backend);
  EXPECT_LT(build_backend, build_frontend);
  EXPECT_LT(build_frontend, database);
  EXPECT_LT(database, redis);
  EXPECT_LT(redis, migrate);
  EXPECT_LT(migrate, web);
  EXPECT_LT(web, ui);
  EXPECT_LT(ui, sample);
  EXPECT_NE(out.find("Plan: "), std::string::npos) << out;
  ExpectNothingMade();
  EXPECT_FALSE(fs::exists(paths::ReleasesDir(home()) / "backend")) << "nothing is built";
}

TEST_F(CliPlanTest, PlanJsonHasTheStepsAndTheResolvedVersions) {
  NewFeatureAbc();
  CliRun run = Adhoc({"--json", "plan", "feature-abc"});
  ASSERT_EQ(run.exit_code, 0) << run;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["env"], "feature-abc");
  EXPECT_EQ(doc["create"], true);
  ASSERT_FALSE(doc["steps"].empty());
  EXPECT_EQ(doc["steps"][0]["action"], "release");
  EXPECT_EQ(doc["steps"][0]["target"], "backend");
  EXPECT_EQ(doc["steps"][0]["reason"], "new environment");
  ASSERT_EQ(doc["versions"].size(), 2u);
  EXPECT_EQ(doc["versions"][0]["image"], "backend");
  EXPECT_EQ(doc["versions"][0]["commit"], v1_);
  EXPECT_EQ(doc["versions"][0]["tree"], backend_tree_);
  EXPECT_EQ(doc["versions"][0]["release_cached"], false);
  EXPECT_EQ(doc["versions"][1]["commit"], v2_);
  ExpectNothingMade();
}

TEST_F(CliPlanTest, PlanMarksACachedRelease) {
  NewFeatureAbc();
  fs::path release = paths::Release(home(), "backend", backend_tree_);
  WriteFile(release / ".adhoc-release", "");
  CliRun run = Adhoc({"plan", "feature-abc"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.out.find("tree " + backend_tree_.substr(0, 7) + " (release cached)"),
            std::string::npos)
      << run;
  EXPECT_NE(run.out.find("cached"), std::string::npos) << run;
  ExpectNothingMade();
}

TEST_F(CliPlanTest, PlanUsesHeadForImagesWithoutAVersion) {
  WriteFile(repo() / "envs/demo.toml", "owner = \"me\"\n[versions]\nbackend = \"v1.0.0\"\n");
  CliRun run = Adhoc({"plan", "demo"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.out.find("frontend   HEAD -> commit " + v2_.substr(0, 7)), std::string::npos)
      << run;
  EXPECT_NE(run.out.find("no version in the env file"), std::string::npos) << run;
}

TEST_F(CliPlanTest, PlanComparesWithWhatTheStateStoreRecorded) {
  NewFeatureAbc();
  // Record feature-abc as the last `up` left it, with backend one version behind.
  {
    fs::create_directories(home());
    auto store = state::Store::Open(paths::StateDb(home()));
    ASSERT_TRUE(store.ok()) << store.error().message();
    state::Environment environment;
    environment.name = "feature-abc";
    plan::Recorded recorded;
    recorded.database = true;
    recorded.redis = true;
    // Written by an adhoc from before build inputs were recorded: frontend's unchanged tree
    // is not rebuilt for want of a recorded build key.
    nlohmann::json record = plan::RecordedJson(recorded);
    record.erase("builds");
    environment.spec_json = record.dump();
    ASSERT_TRUE((*store)->PutEnvironment(environment).ok());
    ASSERT_TRUE(
        (*store)
            ->PutVersion({"feature-abc", "backend", "v0.9.0", std::string(40, 'a'), "oldtree"})
            .ok());
    ASSERT_TRUE(
        (*store)->PutVersion({"feature-abc", "frontend", "v2.0.0", v2_, frontend_tree_}).ok());
  }
  CliRun run = Adhoc({"plan", "feature-abc"});
  ASSERT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.out.find("adhoc up would change feature-abc"), std::string::npos) << run;
  EXPECT_EQ(run.out.find("create database"), std::string::npos) << run;
  EXPECT_NE(run.out.find("backend v0.9.0 (aaaaaaa) -> v1.0.0 (" + v1_.substr(0, 7) + ")"),
            std::string::npos)
      << run;
  EXPECT_EQ(run.out.find("release frontend"), std::string::npos) << run;
  EXPECT_EQ(run.out.find("new environment"), std::string::npos) << run;
}

TEST_F(CliPlanTest, PlanWithAMissingEnvFileExits2NamingItAndTheExistingOnes) {
  NewFeatureAbc();
  CliRun run = Adhoc({"plan", "nope"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("envs/nope.toml does not exist"), std::string::npos) << run;
  EXPECT_NE(run.err.find("feature-abc"), std::string::npos) << run;

  fs::remove_all(repo() / "envs");
  CliRun none = Adhoc({"--json", "plan", "nope"});
  EXPECT_EQ(none.exit_code, 2) << none;
  nlohmann::json doc = nlohmann::json::parse(none.out);
  EXPECT_NE(doc["error"]["message"].get<std::string>().find("adhoc new nope"), std::string::npos)
      << none;
  EXPECT_FALSE(fs::exists(home()));
}

TEST_F(CliPlanTest, PlanOfABadFileOrNameExits2) {
  WriteFile(repo() / "envs/demo.toml", "ownr = \"me\"\n");
  CliRun run = Adhoc({"plan", "demo"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("envs/demo.toml:1:1: ownr"), std::string::npos) << run;
  EXPECT_NE(run.err.find("1 error"), std::string::npos) << run;

  CliRun json = Adhoc({"--json", "plan", "demo"});
  EXPECT_EQ(json.exit_code, 2) << json;
  nlohmann::json doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["error"]["kind"], "bad_input");
  ASSERT_EQ(doc["error"]["diagnostics"].size(), 1u) << json;
  EXPECT_EQ(doc["error"]["diagnostics"][0]["key"], "ownr");

  CliRun bad_name = Adhoc({"plan", "Demo"});
  EXPECT_EQ(bad_name.exit_code, 2) << bad_name;
  EXPECT_NE(bad_name.err.find("environment name"), std::string::npos) << bad_name;
  EXPECT_FALSE(fs::exists(home()));
}

TEST_F(CliPlanTest, PlanIgnoresMistakesInOtherEnvFiles) {
  NewFeatureAbc();
  WriteFile(repo() / "envs/broken.toml", "ownr = \"me\"\n");
  CliRun run = Adhoc({"plan", "feature-abc"});
  EXPECT_EQ(run.exit_code, 0) << run;
}

TEST_F(CliPlanTest, PlanWithARefThatNoLongerExistsExits1) {
  WriteFile(repo() / "envs/demo.toml", "[versions]\nbackend = \"v7\"\n");
  CliRun run = Adhoc({"plan", "demo"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_NE(run.err.find("'v7'"), std::string::npos) << run;
  ExpectNothingMade();
}

}  // namespace
}  // namespace adhoc::cli::testing
