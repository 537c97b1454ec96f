#include "common/paths.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace adhoc::paths {
namespace {

TEST(PathsTest, AdhocHomeOverridesEverything) {
  setenv("ADHOC_HOME", "/tmp/some-home", 1);
  EXPECT_EQ(HomeDir(), fs::path("/tmp/some-home"));
  unsetenv("ADHOC_HOME");
  EXPECT_NE(HomeDir(), fs::path("/tmp/some-home"));
}

TEST(PathsTest, LayoutIsUnderHome) {
  fs::path home = "/h";
  EXPECT_EQ(TaskWorkDir(home, "demo", "gunicorn-1"),
            fs::path("/h/envs/demo/tasks/gunicorn-1/work"));
  EXPECT_EQ(TaskLog(home, "demo", "migrate", "migrate-3"),
            fs::path("/h/envs/demo/logs/migrate/migrate-3.log"));
  EXPECT_EQ(Release(home, "backend", "abc"), fs::path("/h/releases/backend/abc"));
}

}  // namespace
}  // namespace adhoc::paths
