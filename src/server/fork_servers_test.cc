#include "server/fork_servers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "common/paths.h"
#include "common/test_support.h"
#include "runtime/task.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPython = "/usr/bin/python3";

// Real servers: Debian's python3 under this binary's shims.
class ForkServersTest : public ::testing::Test {
 protected:
  ForkServersTest()
      : runtime_(Options()),
        servers_(home_.path(), runtime_, [this](const std::string& w) { warnings_.push_back(w); }) {
  }
  ~ForkServersTest() override { servers_.StopAll(); }

  static runtime::LocalRuntimeOptions Options() {
    runtime::LocalRuntimeOptions o;
    o.shim_binary = ADHOC_BINARY;
    o.warn = [](const std::string&) {};
    return o;
  }

  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << "no " << kPython;
    for (const char* r : {"r1", "r2"}) fs::create_directories(home_.path() / "releases" / r);
  }

  fs::path Release(const char* name) { return home_.path() / "releases" / name; }

  static bool WaitFor(const fs::path& p) {
    for (int i = 0; i < 400 && !fs::exists(p); ++i) std::this_thread::sleep_for(50ms);
    return fs::exists(p);
  }

  pid_t ServerPid(const std::string& key) {
    auto h = runtime::ReadShimRecord(paths::ForkServersDir(home_.path()) / key);
    return h.ok() ? h->task.pid : 0;
  }

  testutil::TempDir home_;
  runtime::LocalRuntime runtime_;
  std::vector<std::string> warnings_;
  ForkServers servers_;
};

TEST_F(ForkServersTest, OnePerReleaseStartedOnceAndReplacedWhenItsModulesChange) {
  auto socket = servers_.Ensure(Release("r1"), kPython, {"json"});
  ASSERT_TRUE(socket.ok()) << socket.error().message();
  ASSERT_TRUE(WaitFor(*socket));
  EXPECT_EQ(fs::status(*socket).permissions() & fs::perms::others_all, fs::perms::none);
  const std::string key = socket->parent_path().filename();
  pid_t first = ServerPid(key);
  ASSERT_GT(first, 0);

  // Asked again (every launch asks): the same server, not a second one.
  auto again = servers_.Ensure(Release("r1"), kPython, {"json"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *socket);
  EXPECT_EQ(ServerPid(key), first);
  ASSERT_EQ(servers_.List().size(), 1u);
  EXPECT_EQ(servers_.List()[0].release, Release("r1"));
  EXPECT_TRUE(servers_.List()[0].running);

  // Other modules for the same release: the old server goes.
  auto changed = servers_.Ensure(Release("r1"), kPython, {"json", "csv"});
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(*changed, *socket);
  EXPECT_EQ(kill(first, 0), -1) << "the old server was stopped";
  EXPECT_FALSE(fs::exists(socket->parent_path()));
  ASSERT_EQ(servers_.List().size(), 1u);
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(ForkServersTest, AServerThatDiedIsStartedAgain) {
  auto socket = servers_.Ensure(Release("r1"), kPython, {});
  ASSERT_TRUE(socket.ok());
  ASSERT_TRUE(WaitFor(*socket));
  const std::string key = socket->parent_path().filename();
  pid_t first = ServerPid(key);
  kill(first, SIGKILL);
  for (int i = 0; i < 100 && servers_.List()[0].running; ++i) std::this_thread::sleep_for(50ms);
  auto again = servers_.Ensure(Release("r1"), kPython, {});
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(WaitFor(*again));
  EXPECT_NE(ServerPid(key), first);
  EXPECT_NE(ServerPid(key), 0);
}

TEST_F(ForkServersTest, UnusedReleasesLoseTheirServers) {
  ASSERT_TRUE(servers_.Ensure(Release("r1"), kPython, {}).ok());
  ASSERT_TRUE(servers_.Ensure(Release("r2"), kPython, {}).ok());
  ASSERT_EQ(servers_.List().size(), 2u);
  // Within its grace an unused release keeps its server; past it (zero here), it goes.
  EXPECT_EQ(servers_.StopUnused({Release("r2").string()}, std::chrono::hours(1)), 0);
  EXPECT_EQ(servers_.List().size(), 2u);
  EXPECT_EQ(servers_.StopUnused({Release("r2").string()}), 1);
  auto left = servers_.List();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].release, Release("r2"));
  servers_.StopAll();
  EXPECT_TRUE(servers_.List().empty());
}

TEST_F(ForkServersTest, AMissingInterpreterIsAWarningAndAnError) {
  auto socket = servers_.Ensure(Release("r1"), "/nonexistent/python3", {});
  EXPECT_FALSE(socket.ok());
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("/nonexistent/python3"), std::string::npos) << warnings_[0];
}

}  // namespace
}  // namespace adhoc::server
