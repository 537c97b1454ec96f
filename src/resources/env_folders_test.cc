#include "resources/env_folders.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/paths.h"

namespace adhoc::resources {
namespace {

namespace fs = std::filesystem;

class EnvFoldersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    home_ = fs::temp_directory_path() /
            ("adhoc-envdirs-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(home_);
    fs::create_directories(home_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }
  static unsigned Mode(const fs::path& p) {
    struct stat st;
    EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  fs::path home_;
};

// Nothing of an environment is other users' business: its tasks' records and logs hold its
// secrets, and no other user (PostgreSQL's, nginx's workers) needs to reach into it.
TEST_F(EnvFoldersTest, CreatesTheTreeForItsOwnerOnly) {
  chmod(home_.c_str(), 0711);
  Status s = CreateEnvironmentFolders(home_, "feature-abc");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(Mode(paths::EnvsDir(home_)), 0700u);
  EXPECT_EQ(Mode(paths::EnvDir(home_, "feature-abc")), 0700u);
  EXPECT_EQ(Mode(paths::StaticDir(home_, "feature-abc")), 0700u);
  EXPECT_EQ(Mode(paths::TasksDir(home_, "feature-abc")), 0700u);
  EXPECT_EQ(Mode(paths::LogsDir(home_, "feature-abc")), 0700u);
  EXPECT_EQ(Mode(home_), 0711u) << "the home is not this function's";
  // Idempotent, and resets a mode changed since.
  chmod(paths::LogsDir(home_, "feature-abc").c_str(), 0777);
  ASSERT_TRUE(CreateEnvironmentFolders(home_, "feature-abc").ok());
  EXPECT_EQ(Mode(paths::LogsDir(home_, "feature-abc")), 0700u);
}

TEST_F(EnvFoldersTest, RemoveLeavesNothingEvenWithReadOnlyFolders) {
  ASSERT_TRUE(CreateEnvironmentFolders(home_, "demo").ok());
  ASSERT_TRUE(CreateEnvironmentFolders(home_, "other").ok());
  fs::path work = paths::TaskWorkDir(home_, "demo", "gunicorn-1");
  fs::create_directories(work / "locked");
  std::ofstream(work / "locked" / "file") << "x";
  std::ofstream(paths::StaticDir(home_, "demo") / "app.css") << "body{}";
  chmod((work / "locked").c_str(), 0500);
  fs::create_symlink(home_ / "outside", paths::EnvDir(home_, "demo") / "link");
  std::ofstream(home_ / "outside") << "kept";

  Status s = RemoveEnvironmentFolders(home_, "demo");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_FALSE(fs::exists(paths::EnvDir(home_, "demo")));
  EXPECT_TRUE(fs::exists(home_ / "outside"));  // a link's target is not followed
  EXPECT_TRUE(fs::exists(paths::EnvDir(home_, "other")));
  EXPECT_TRUE(RemoveEnvironmentFolders(home_, "demo").ok());  // already gone

  ASSERT_TRUE(RemoveEnvironmentFolders(home_, "other").ok());
  EXPECT_TRUE(fs::is_empty(paths::EnvsDir(home_)));
}

TEST_F(EnvFoldersTest, RefusesNamesThatAreNotEnvironmentNames) {
  ASSERT_TRUE(CreateEnvironmentFolders(home_, "keep").ok());
  for (const std::string& bad : std::vector<std::string>{
           "", "..", ".", "../keep", "a/b", "Keep", "1abc", "-x", "a_b", std::string(41, 'a')}) {
    Status removed = RemoveEnvironmentFolders(home_, bad);
    ASSERT_FALSE(removed.ok()) << "'" << bad << "'";
    EXPECT_EQ(removed.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(removed.error().message().find("not a valid environment name"), std::string::npos);
    EXPECT_FALSE(CreateEnvironmentFolders(home_, bad).ok()) << "'" << bad << "'";
  }
  EXPECT_TRUE(fs::exists(paths::EnvDir(home_, "keep")));
  EXPECT_TRUE(fs::exists(home_));
  EXPECT_TRUE(IsValidEnvironmentName(std::string(40, 'a')));
  EXPECT_TRUE(IsValidEnvironmentName("pr-123"));
}

}  // namespace
}  // namespace adhoc::resources
