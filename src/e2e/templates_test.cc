// Migrated templates and cached static files on μblog (issue 12), with real PostgreSQL and
// Django: a new environment's migrate is a copy of a template built once per release, two
// environments created at once build it once, a changed migration builds another, the copy's
// role can run the next version's migration, and a failed build leaves no template.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TemplatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromScript(fs::path(ADHOC_SOURCE_DIR) / "examples/ublog/make-repo.sh");
    ASSERT_TRUE(fs::exists(box_.repo() / "adhoc.toml"));
  }

  // The keys of the template databases in the cluster.
  std::vector<std::string> Templates() {
    return box_.Sql(
        "SELECT datname FROM pg_database WHERE datname LIKE 'adhoc\\_tpl\\_%' ORDER BY 1");
  }

  // `adhoc new ENV` on these versions.
  void New(const std::string& env, const std::string& backend, const std::string& frontend) {
    ASSERT_EQ(box_.Adhoc({"new", env, "--version", "backend=" + backend, "--version",
                          "frontend=" + frontend})
                  .exit_code,
              0);
  }

  // The sample data (an after-create task) went into the environment's database: 20 posts.
  void ExpectSamplePosts(const std::string& env) {
    HttpAnswer posts = box_.Http(env, "GET", "/api/drf/fbv/posts/");
    EXPECT_EQ(posts.status, 200) << env << ": " << posts.body;
    json page = json::parse(posts.body, nullptr, false);
    EXPECT_TRUE(page.is_object() && page.value("count", 0) == 20) << env << ": " << posts.body;
  }

  // The detail `up` printed for a step ("copied from template 1a2b3c4d, built now").
  static std::string StepLine(const std::string& output, const std::string& step) {
    size_t at = output.find("ok     " + step);
    if (at == std::string::npos) return "";
    return output.substr(at, output.find('\n', at) - at);
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(TemplatesTest, EnvironmentsStartFromATemplateBuiltOncePerReleaseAndMigrateOnwards) {
  // Two environments at once on v1.0.0: one template, built by one of them.
  for (const char* env : {"one", "two"}) ASSERT_NO_FATAL_FAILURE(New(env, "v1.0.0", "v2.0.0"));
  auto up = [&](const std::string& env) { return box_.Adhoc({"up", env}); };
  auto first = std::async(std::launch::async, up, "one");
  auto second = std::async(std::launch::async, up, "two");
  CommandResult a = first.get(), b = second.get();
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  std::string migrate_a = StepLine(a.output, "task migrate");
  std::string migrate_b = StepLine(b.output, "task migrate");
  EXPECT_NE(migrate_a.find("copied from template"), std::string::npos) << a.output;
  EXPECT_NE(migrate_b.find("copied from template"), std::string::npos) << b.output;
  int built = (migrate_a.find("built now") != std::string::npos) +
              (migrate_b.find("built now") != std::string::npos);
  EXPECT_EQ(built, 1) << migrate_a << "\n" << migrate_b;
  EXPECT_EQ(Templates().size(), 1u);
  // collectstatic's files are linked from one cache, and served.
  int static_built =
      (StepLine(a.output, "task collectstatic").find("built now") != std::string::npos) +
      (StepLine(b.output, "task collectstatic").find("built now") != std::string::npos);
  EXPECT_EQ(static_built, 1) << a.output << "\n" << b.output;
  for (const char* env : {"one", "two"}) {
    EXPECT_EQ(box_.Http(env, "GET", "/static/admin/css/base.css").status, 200) << env;
    ExpectSamplePosts(env);
  }

  // The copy's role runs the next version's migration (v1.1.0 adds Post.total_views).
  CommandResult deploy = box_.Adhoc({"deploy", "one", "backend=v1.1.0"});
  ASSERT_EQ(deploy.exit_code, 0) << deploy.output;
  EXPECT_NE(StepLine(deploy.output, "task migrate").find("exit 0"), std::string::npos)
      << "a deploy migrates the environment's own database: " << deploy.output;
  HttpAnswer version = box_.WaitFor("one", "/api/version/", 30, [](const HttpAnswer& a) {
    return a.body.find("v1.1.0") != std::string::npos;
  });
  EXPECT_NE(version.body.find("v1.1.0"), std::string::npos) << version.body;

  // A new environment on v1.1.0: its migrations differ, so another template is built.
  ASSERT_NO_FATAL_FAILURE(New("three", "v1.1.0", "v2.1.0"));
  CommandResult three = box_.Adhoc({"up", "three"});
  ASSERT_EQ(three.exit_code, 0) << three.output;
  EXPECT_NE(StepLine(three.output, "task migrate").find("built now"), std::string::npos)
      << three.output;
  EXPECT_EQ(Templates().size(), 2u);
  EXPECT_EQ(box_.Http("three", "GET", "/api/drf/fbv/posts/").status, 200);

  // Each template gets a copy made ahead, off the `up` that used it; the next environment on
  // v1.1.0 takes it instead of copying.
  auto spares = [&] {
    return box_.Sql(
        "SELECT datname FROM pg_database WHERE datname LIKE 'adhoc\\_spr\\_%' ORDER BY 1");
  };
  for (int i = 0; i < 600 && spares().size() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(spares().size(), 2u);
  ASSERT_NO_FATAL_FAILURE(New("four", "v1.1.0", "v2.1.0"));
  CommandResult four = box_.Adhoc({"up", "four"});
  ASSERT_EQ(four.exit_code, 0) << four.output;
  EXPECT_NE(StepLine(four.output, "task migrate").find("made ahead"), std::string::npos)
      << four.output;
  ExpectSamplePosts("four");

  // Templates are shared: destroying environments leaves them; gc removes the unused one.
  ASSERT_EQ(box_.Adhoc({"destroy", "two"}).exit_code, 0);
  ASSERT_EQ(box_.Adhoc({"destroy", "one"}).exit_code, 0);
  EXPECT_EQ(Templates().size(), 2u);
  CommandResult gc = box_.Adhoc({"gc"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_EQ(Templates().size(), 1u) << gc.output;
  EXPECT_NE(gc.output.find("template"), std::string::npos) << gc.output;
  // The removed template's spare went with it; the kept one's stays.
  EXPECT_LE(spares().size(), 1u) << gc.output;
  for (const std::string& spare : spares()) EXPECT_EQ(spare.substr(10), Templates()[0].substr(10));
}

TEST_F(TemplatesTest, AFailedTemplateBuildLeavesNoTemplateAndNothingOfTheEnvironment) {
  ASSERT_NO_FATAL_FAILURE(New("bad", "v1.2.0-broken", "v2.1.0"));
  CommandResult broken = box_.Adhoc({"up", "bad"});
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find("this migration fails on purpose"), std::string::npos)
      << broken.output;
  EXPECT_TRUE(Templates().empty());
  EXPECT_TRUE(
      box_.Sql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'adhoc\\_tpl\\_%'").empty());
  EXPECT_TRUE(box_.Leftovers("bad").empty());
}

}  // namespace
}  // namespace adhoc::e2e
