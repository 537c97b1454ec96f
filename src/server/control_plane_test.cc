#include "server/control_plane.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/paths.h"
#include "common/test_support.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;

TEST(ControlPlaneTest, AKeepersRestartDoesNotMakeARemovedHomeAgain) {
  testutil::TempDir dir;
  const fs::path home = dir.path() / "home";
  setenv("ADHOC_HOME_MUST_EXIST", "1", 1);
  auto options = OptionsFromEnvironment(home);
  unsetenv("ADHOC_HOME_MUST_EXIST");
  ASSERT_TRUE(options.ok()) << options.error().message();
  EXPECT_FALSE(options->create_home);
  options->keeper = false;
  auto refused = ControlPlane::Open(*options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find(home.string() + " is gone"), std::string::npos)
      << refused.error().message();
  EXPECT_FALSE(fs::exists(home)) << "the home was made again";

  // Without the variable (the CLI's own start) a missing home is made.
  auto made = OptionsFromEnvironment(home);
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(made->create_home);
  made->keeper = false;
  auto cp = ControlPlane::Open(*made);
  ASSERT_TRUE(cp.ok()) << cp.error().message();
  EXPECT_TRUE(fs::exists(paths::StateDb(home)));
}

}  // namespace
}  // namespace adhoc::server
