#include "plan/plan.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "plan/recorded.h"
#include "spec/loader.h"

namespace adhoc::plan {
namespace {

constexpr char kProject[] = R"(
name = "shop"
[images.backend]
path = "backend"
[images.frontend]
path = "frontend"
[postgres]
[redis]
[static]
routes = ["/static/*"]
[env]
A = "1"
[services.api]
image = "backend"
command = "gunicorn -b {bind} app.wsgi"
port = 8000
routes = ["/api/*"]
[services.worker]
image = "backend"
command = "celery worker"
[services.web]
image = "frontend"
command = "nginx"
port = 3000
routes = ["/*"]
[tasks.migrate]
image = "backend"
command = "migrate"
before = "deploy"
[tasks.seed]
image = "backend"
command = "seed"
after = "create"
)";

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = spec::ParseProject(kProject);
    ASSERT_TRUE(p.ok()) << p.status().error().message();
    project_ = p.value;
    auto e = spec::ParseEnvFile("owner = \"x\"\n[versions]\nbackend = \"v1\"\nfrontend = \"v2\"\n",
                                "demo", "envs/demo.toml", &project_);
    ASSERT_TRUE(e.ok()) << e.status().error().message();
    env_ = e.value;
    wanted_.project = &project_;
    wanted_.env_file = &env_;
    wanted_.versions = {{"backend", {"v1", "c1", "tb1"}}, {"frontend", {"v2", "c2", "tf1"}}};
  }

  // What a successful up of `wanted_` records.
  Recorded Applied() const {
    Recorded r;
    r.versions = wanted_.versions;
    r.database = r.redis = true;
    r.env_fingerprint = EnvFingerprint(project_, env_);
    for (const auto& s : project_.services) {
      r.services[s.name] = ServiceFingerprint(s, wanted_.versions.at(s.image), r.env_fingerprint);
      r.service_counts[s.name] = s.count;
    }
    return r;
  }

  static std::vector<std::string> Names(const Plan& p) {
    std::vector<std::string> out;
    for (const auto& s : p.steps) out.push_back(std::string(ActionName(s.action)) + " " + s.target);
    return out;
  }

  spec::Project project_;
  spec::EnvFile env_;
  Wanted wanted_;
};

TEST_F(PlanTest, NewEnvironmentFollowsTheOrderOfOperations) {
  Plan p = MakePlan(wanted_, std::nullopt);
  EXPECT_TRUE(p.create);
  EXPECT_EQ(Names(p),
            (std::vector<std::string>{"release backend", "release frontend",
                                      "create database {env}-db", "start redis", "run task migrate",
                                      "start service api", "start service worker",
                                      "start service web", "add routes static", "run task seed"}));
  for (const auto& s : p.steps) EXPECT_EQ(s.reason, "new environment");
}

TEST_F(PlanTest, NothingChangedIsAnEmptyPlan) {
  Plan p = MakePlan(wanted_, Applied());
  EXPECT_TRUE(p.empty());
  EXPECT_NE(FormatPlan(p, "demo").find("no changes"), std::string::npos);
}

TEST_F(PlanTest, BackendVersionMigratesThenRollsOnlyBackendServices) {
  Recorded before = Applied();
  wanted_.versions["backend"] = {"v1.1", "c9", "tb2"};
  Plan p = MakePlan(wanted_, before);
  EXPECT_FALSE(p.create);
  EXPECT_EQ(Names(p), (std::vector<std::string>{"release backend", "run task migrate",
                                                "roll service api", "roll service worker"}));
  EXPECT_EQ(p.steps[2].reason, "backend v1 (c1) -> v1.1 (c9)");
}

TEST_F(PlanTest, FrontendOnlyCommitWithSameBackendTreeRollsOnlyFrontend) {
  Recorded before = Applied();
  wanted_.versions["frontend"] = {"v2.1", "c3", "tf2"};
  wanted_.versions["backend"] = {"v2.1", "c3", "tb1"};  // new commit, same backend tree
  Plan p = MakePlan(wanted_, before);
  EXPECT_EQ(Names(p), (std::vector<std::string>{"release frontend", "roll service web"}));
}

TEST_F(PlanTest, EnvChangeRerunsBeforeDeployAndRollsEverything) {
  Recorded before = Applied();
  env_.env.push_back({"DEBUG", "1", {}});
  Plan p = MakePlan(wanted_, before);
  EXPECT_EQ(Names(p), (std::vector<std::string>{"run task migrate", "roll service api",
                                                "roll service worker", "roll service web"}));
  EXPECT_EQ(p.steps[1].reason, "[env] changed");
}

TEST_F(PlanTest, RemovedServiceAndScaledService) {
  Recorded before = Applied();
  before.services["old"] = "x";
  before.service_counts["api"] = 3;
  Plan p = MakePlan(wanted_, before);
  EXPECT_EQ(Names(p), (std::vector<std::string>{"roll service api", "remove service old"}));
  EXPECT_EQ(p.steps[0].reason, "count 3 -> 1");
  EXPECT_EQ(p.steps[1].reason, "no longer in adhoc.toml");
  nlohmann::json j = PlanJson(p, "demo");
  EXPECT_EQ(j["steps"][1]["action"], "remove service");
}

// Access rules are set before any service starts (no new route is served without them), and
// a change of [access] alone is one step that restarts nothing.
TEST_F(PlanTest, AccessRulesComeBeforeTheServicesAndChangeAlone) {
  spec::Access guarded;
  guarded.basic_auth = std::vector<std::string>{"qa:{random.qa}"};
  env_.access = guarded;
  Plan create = MakePlan(wanted_, std::nullopt);
  std::vector<std::string> names = Names(create);
  auto access = std::find(names.begin(), names.end(), "set access rules");
  ASSERT_NE(access, names.end()) << ::testing::PrintToString(names);
  EXPECT_EQ(*(access - 1), "run task migrate");
  EXPECT_EQ(*(access + 1), "start service api");
  EXPECT_NE(FormatPlan(create, "demo").find("+ set access rules (basic auth)"), std::string::npos)
      << FormatPlan(create, "demo");

  // What a record written before access rules says ("") is an open environment's.
  env_.access.reset();
  EXPECT_EQ(AccessFingerprint(project_, env_), "");
  Recorded open = Applied();
  env_.access = guarded;
  Plan added = MakePlan(wanted_, open);
  EXPECT_EQ(Names(added), std::vector<std::string>{"set access rules"});
  EXPECT_EQ(added.steps[0].reason, "[access] added");

  Recorded before = plan::Applied(wanted_);
  EXPECT_TRUE(MakePlan(wanted_, before).empty());
  env_.access->token = "{random.access_token}";
  Plan changed = MakePlan(wanted_, before);
  EXPECT_EQ(Names(changed), std::vector<std::string>{"set access rules"});
  EXPECT_EQ(changed.steps[0].reason, "[access] changed");
  EXPECT_EQ(changed.steps[0].Detail(), "basic auth, token");
  // Every part off is no rules at all: the same as an environment that never had any.
  env_.access->basic_auth = std::vector<std::string>{};
  env_.access->token = "";
  EXPECT_EQ(AccessFingerprint(project_, env_), "");
  Plan removed = MakePlan(wanted_, before);
  EXPECT_EQ(removed.steps[0].reason, "[access] removed: open to everyone");
  EXPECT_EQ(removed.steps[0].Detail(), "none");
}

TEST_F(PlanTest, CachedReleaseIsSaid) {
  wanted_.release_built["backend"] = true;
  Plan p = MakePlan(wanted_, std::nullopt);
  EXPECT_EQ(p.steps[0].Detail(), "v1 (c1), cached");
  EXPECT_EQ(p.steps[1].Detail(), "v2 (c2), to build");
}

TEST_F(PlanTest, StepsCarryTheirParametersNotJustText) {
  wanted_.database_name = "demo-db";
  Plan p = MakePlan(wanted_, std::nullopt);
  ASSERT_EQ(p.steps.size(), 10u);
  EXPECT_EQ(p.steps[0].image, "backend");
  EXPECT_EQ(p.steps[0].version.tree, "tb1");
  EXPECT_EQ(p.steps[2].target, "demo-db");  // the rendered name, not the template
  EXPECT_EQ(p.steps[4].phase, TaskPhase::kBeforeDeploy);
  EXPECT_EQ(p.steps[4].image, "backend");
  EXPECT_EQ(p.steps[5].count, 1);
  EXPECT_EQ(p.steps[5].version.ref, "v1");
  EXPECT_EQ(p.steps[7].image, "frontend");
  EXPECT_EQ(p.steps[8].patterns, std::vector<std::string>{"/static/*"});
  EXPECT_EQ(p.steps[9].phase, TaskPhase::kAfterCreate);
}

TEST_F(PlanTest, ADeployedVersionIsKeptWhileTheEnvFileStillNamesTheOldRef) {
  // up applied v1 from the file; deploy then moved backend to v1.1.
  wanted_.choices = ChooseVersions(project_, env_, std::nullopt, {}, "envs/demo.toml");
  Recorded after_up = plan::Applied(wanted_);
  EXPECT_EQ(after_up.file_refs["backend"], "v1");
  EXPECT_FALSE(after_up.deployed["backend"]);

  auto deploy = ChooseVersions(project_, env_, after_up, {{"backend", "v1.1"}}, "envs/demo.toml");
  EXPECT_EQ(deploy["backend"].ref, "v1.1");
  EXPECT_EQ(deploy["backend"].source, VersionSource::kDeploy);
  EXPECT_EQ(deploy["frontend"].source, VersionSource::kEnvFile);
  wanted_.choices = deploy;
  wanted_.versions["backend"] = {"v1.1", "c9", "tb2"};
  Recorded after_deploy = plan::Applied(wanted_);
  EXPECT_EQ(after_deploy.file_refs["backend"], "v1");  // what the file says, not what runs
  EXPECT_TRUE(after_deploy.deployed["backend"]);

  // A later up with the same file keeps v1.1, and says why.
  auto later = ChooseVersions(project_, env_, after_deploy, {}, "envs/demo.toml");
  EXPECT_EQ(later["backend"].source, VersionSource::kKept);
  EXPECT_EQ(later["backend"].ref, "v1.1");
  EXPECT_NE(later["backend"].why.find("envs/demo.toml still says v1"), std::string::npos);
  // Once the file's own version changes, the file wins again.
  env_.versions[0].ref = "v2";
  auto changed = ChooseVersions(project_, env_, after_deploy, {}, "envs/demo.toml");
  EXPECT_EQ(changed["backend"].source, VersionSource::kEnvFile);
  EXPECT_EQ(changed["backend"].ref, "v2");
}

TEST_F(PlanTest, ChangedBuildCommandsRebuildAndRollOnTheSameTree) {
  Recorded before = Applied();
  wanted_.versions["frontend"].build = "-b0123456789ab";
  Plan p = MakePlan(wanted_, before);
  EXPECT_EQ(Names(p), (std::vector<std::string>{"release frontend", "roll service web"}));
  EXPECT_EQ(p.steps[0].reason, "frontend build commands changed");
  // Recorded, the build key makes the next plan empty.
  Recorded after = plan::Applied(wanted_);
  auto round_trip = nlohmann::json::parse(RecordedJson(after).dump());
  EXPECT_EQ(round_trip["builds"]["frontend"], "-b0123456789ab");
  EXPECT_TRUE(MakePlan(wanted_, after).empty());
}

TEST_F(PlanTest, AppliedMatchesAPlanOfNothing) {
  Recorded applied = plan::Applied(wanted_);
  EXPECT_TRUE(MakePlan(wanted_, applied).empty());
  EXPECT_EQ(applied.service_images["web"], "frontend");
}

}  // namespace
}  // namespace adhoc::plan
