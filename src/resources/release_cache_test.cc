#include "resources/release_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/exec.h"
#include "common/paths.h"
#include "common/test_support.h"

namespace adhoc::resources {
namespace {

namespace fs = std::filesystem;

using testutil::TempDir;

using testutil::Sh;

void Write(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << content;
}

std::string Read(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int CountLines(const fs::path& file) {
  std::string content = Read(file);
  return static_cast<int>(std::count(content.begin(), content.end(), '\n'));
}

// Half-built folders: any folder in .building/, any releases/<image>/<tree> without marker.
std::vector<fs::path> LeftoverFolders(const fs::path& home) {
  std::vector<fs::path> left;
  for (const auto& e : fs::directory_iterator(paths::BuildingDir(home)))
    if (e.is_directory()) left.push_back(e.path());
  for (const auto& image : fs::directory_iterator(paths::ReleasesDir(home))) {
    if (image.path().filename().string().starts_with(".")) continue;
    for (const auto& tree : fs::directory_iterator(image.path()))
      if (!fs::exists(tree.path() / ReleaseCache::kMarkerFile)) left.push_back(tree.path());
  }
  return left;
}

class ReleaseCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Sh(repo(),
       "git init -q -b main\n"
       "git config user.name test\n"
       "git config user.email test@example.com\n");
    Write(repo() / ".gitignore", "*.log\n");
    Write(repo() / "backend" / "manage.py", "print('backend')\n");
    Write(repo() / "frontend" / "index.js", "console.log('v1')\n");
    Sh(repo(), "git add -A && git commit -q -m first && git tag v1.0.0");
  }
  fs::path repo() const { return repo_dir_.path(); }
  fs::path home() const { return home_dir_.path(); }
  fs::path counter() const { return outside_.path() / "counter"; }
  // A build command that leaves a trace outside the release, to count builds.
  std::string CountingCommand(const std::string& extra = "") const {
    return extra + "echo built >> '" + counter().string() + "'";
  }
  git::ResolvedVersion Resolve(const std::string& folder, const std::string& ref) {
    auto r = git::ResolveVersion(repo(), folder, ref);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : git::ResolvedVersion{};
  }

  TempDir repo_dir_;
  TempDir home_dir_;
  TempDir outside_;
};

TEST_F(ReleaseCacheTest, BuildsOnceForTwoEnvironmentsOnTheSameTree) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("backend", "v1.0.0");
  std::vector<std::string> build{"echo \"home=$HOME\" > built.txt", CountingCommand()};

  auto first = cache.Ensure("backend", v, repo(), build);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_TRUE(first->built_now);
  EXPECT_EQ(first->path, paths::Release(home(), "backend", ReleaseKey(v.tree, build)));
  EXPECT_EQ(first->path, cache.Path("backend", v.tree, build));
  EXPECT_TRUE(fs::exists(first->path / "manage.py"));
  EXPECT_FALSE(fs::exists(first->path / "index.js"));
  EXPECT_EQ(Read(first->path / "built.txt"), "home=" + cache.BuildHome().string() + "\n");
  EXPECT_TRUE(fs::exists(first->path / ReleaseCache::kMarkerFile));
  EXPECT_NE(Read(first->path / ReleaseCache::kBuildLogFile).find("$ " + build[1]),
            std::string::npos);

  auto second = cache.Ensure("backend", v, repo(), build);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_FALSE(second->built_now);
  EXPECT_EQ(second->path, first->path);
  EXPECT_EQ(CountLines(counter()), 1);
  EXPECT_TRUE(LeftoverFolders(home()).empty());
}

TEST_F(ReleaseCacheTest, FinishedReleaseIsReadableByAllAndWritableByNoOneElse) {
  ReleaseCache cache(home());
  auto r = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(),
                        {"umask 000; mkdir -p out; echo x > out/file; chmod 600 manage.py"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  for (const fs::path& p : {r->path, r->path / "out", r->path / "out" / "file",
                            r->path / "manage.py", r->path / ReleaseCache::kBuildLogFile}) {
    struct stat st;
    ASSERT_EQ(stat(p.c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_mode & 022, 0u) << p;
    EXPECT_EQ(st.st_mode & 0004, 0004u) << p;
  }
}

// nginx's workers (`nobody`) pass through to the release they serve, but nobody lists the
// releases, nor reads the builds in progress or the build commands' HOME (npm's cache).
TEST_F(ReleaseCacheTest, OthersPassThroughToReleasesButListNothing) {
  ReleaseCache cache(home());
  auto r = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(), {"true"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto mode = [](const fs::path& p) { return fs::status(p).permissions() & fs::perms(0777); };
  EXPECT_EQ(mode(paths::ReleasesDir(home())), fs::perms(0711));
  EXPECT_EQ(mode(r->path.parent_path()), fs::perms(0711));
  EXPECT_EQ(mode(r->path), fs::perms(0755));
  EXPECT_EQ(mode(paths::BuildingDir(home())), fs::perms(0700));
  EXPECT_EQ(mode(cache.BuildHome()), fs::perms(0700));
}

TEST_F(ReleaseCacheTest, TwoThreadsAndAProcessAtOnceBuildOnce) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("backend", "v1.0.0");
  std::vector<std::string> build{CountingCommand("sleep 0.3; ")};

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ReleaseCache other(home());
    _exit(other.Ensure("backend", v, repo(), build).ok() ? 0 : 1);
  }
  std::atomic<int> built{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      auto r = cache.Ensure("backend", v, repo(), build);
      if (!r.ok()) {
        ++failed;
        return;
      }
      if (r->built_now) ++built;
    });
  }
  for (auto& t : threads) t.join();
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(failed, 0);
  EXPECT_LE(built, 1);
  EXPECT_EQ(CountLines(counter()), 1);
  EXPECT_TRUE(LeftoverFolders(home()).empty());
}

TEST_F(ReleaseCacheTest, FrontendOnlyCommitReusesTheBackendRelease) {
  ReleaseCache cache(home());
  auto before = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(), {CountingCommand()});
  ASSERT_TRUE(before.ok()) << before.error().message();
  Write(repo() / "frontend" / "index.js", "console.log('v2')\n");
  Sh(repo(), "git commit -q -am 'frontend only'");
  auto after = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(), {CountingCommand()});
  ASSERT_TRUE(after.ok()) << after.error().message();
  EXPECT_FALSE(after->built_now);
  EXPECT_EQ(after->path, before->path);
  EXPECT_EQ(CountLines(counter()), 1);
}

TEST_F(ReleaseCacheTest, FailingBuildLeavesNothingAndNamesTheCommand) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("frontend", "HEAD");
  auto r = cache.Ensure("frontend", v, repo(), {"true", "echo npm-broke; exit 3"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kFailed);
  const std::string& message = r.error().message();
  EXPECT_NE(message.find("image 'frontend'"), std::string::npos) << message;
  EXPECT_NE(message.find("'echo npm-broke; exit 3' exited with status 3"), std::string::npos)
      << message;
  EXPECT_NE(message.find("npm-broke"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(paths::Release(home(), "frontend", v.tree)));
  EXPECT_TRUE(LeftoverFolders(home()).empty());
  auto listed = cache.List();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());

  // Also when the build left a folder its owner cannot write (matters when not root).
  auto locked = cache.Ensure("frontend", v, repo(), {"mkdir -p ro/sub && chmod 500 ro; exit 1"});
  ASSERT_FALSE(locked.ok());
  EXPECT_TRUE(LeftoverFolders(home()).empty());

  // A fixed command then builds it.
  auto fixed = cache.Ensure("frontend", v, repo(), {"true"});
  ASSERT_TRUE(fixed.ok()) << fixed.error().message();
  EXPECT_TRUE(fixed->built_now);
}

TEST_F(ReleaseCacheTest, BuildCommandTimeoutIsAFailureThatLeavesNothing) {
  ReleaseCache cache(home(), {.command_timeout = std::chrono::milliseconds(300)});
  auto r = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(), {"sleep 30"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("'sleep 30' timed out"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(LeftoverFolders(home()).empty());
}

TEST_F(ReleaseCacheTest, BuildEnvironmentIsClean) {
  setenv("ADHOC_TEST_LEAK", "leaked", 1);
  ReleaseCache cache(home());
  auto r = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(), {"env > env.txt"});
  unsetenv("ADHOC_TEST_LEAK");
  ASSERT_TRUE(r.ok()) << r.error().message();
  std::string env = Read(r->path / "env.txt");
  EXPECT_EQ(env.find("ADHOC_TEST_LEAK"), std::string::npos);
  EXPECT_NE(env.find("LANG=C.UTF-8"), std::string::npos);
  EXPECT_NE(env.find("PATH=/usr/local/sbin:"), std::string::npos);
}

TEST_F(ReleaseCacheTest, WorktreeReleaseHoldsUncommittedFiles) {
  Write(repo() / "backend" / "manage.py", "print('uncommitted')\n");
  Write(repo() / "backend" / "extra.py", "x = 1\n");
  Write(repo() / "backend" / "noise.log", "ignored\n");
  git::ResolvedVersion v = Resolve("backend", "@worktree");
  ASSERT_TRUE(v.dirty);
  ReleaseCache cache(home());
  auto r = cache.Ensure("backend", v, repo(), {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->path, paths::Release(home(), "backend", v.tree));
  EXPECT_EQ(Read(r->path / "manage.py"), "print('uncommitted')\n");
  EXPECT_TRUE(fs::exists(r->path / "extra.py"));
  EXPECT_FALSE(fs::exists(r->path / "noise.log"));

  // An edit after resolving must not be built under the old key.
  Write(repo() / "backend" / "extra.py", "x = 2\n");
  git::ResolvedVersion stale = v;
  stale.tree = "wt-0000000000000000";
  auto conflict = cache.Ensure("backend", stale, repo(), {});
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().kind(), ErrorKind::kConflict);
  EXPECT_FALSE(fs::exists(paths::Release(home(), "backend", stale.tree)));
}

TEST_F(ReleaseCacheTest, ListAndRemove) {
  ReleaseCache cache(home());
  git::ResolvedVersion backend = Resolve("backend", "HEAD");
  git::ResolvedVersion frontend = Resolve("frontend", "HEAD");
  ASSERT_TRUE(cache.Ensure("backend", backend, repo(), {}).ok());
  ASSERT_TRUE(cache.Ensure("frontend", frontend, repo(), {}).ok());
  auto listed = cache.List();
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].image, "backend");
  EXPECT_EQ((*listed)[0].tree, backend.tree);
  EXPECT_EQ((*listed)[1].image, "frontend");

  Status removed = cache.Remove("backend", backend.tree);
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_FALSE(fs::exists(paths::Release(home(), "backend", backend.tree)));
  EXPECT_TRUE(cache.Remove("backend", backend.tree).ok());  // already gone
  listed = cache.List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].image, "frontend");
  EXPECT_TRUE(LeftoverFolders(home()).empty());

  auto rebuilt = cache.Ensure("backend", backend, repo(), {});
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_TRUE(rebuilt->built_now);
}

TEST_F(ReleaseCacheTest, ProgressReportsEachStage) {
  ReleaseCache cache(home());
  std::vector<std::string> seen;
  auto r = cache.Ensure("backend", Resolve("backend", "HEAD"), repo(), {"true", "echo hi"},
                        [&](const BuildProgress& p) {
                          switch (p.stage) {
                            case BuildProgress::Stage::kWaiting:
                              seen.push_back("waiting");
                              break;
                            case BuildProgress::Stage::kExporting:
                              seen.push_back("exporting");
                              break;
                            case BuildProgress::Stage::kRunning:
                              seen.push_back(std::to_string(p.step) + "/" +
                                             std::to_string(p.steps) + " " + p.command);
                              break;
                            case BuildProgress::Stage::kDone:
                              seen.push_back("done");
                              break;
                          }
                        });
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(seen, (std::vector<std::string>{"exporting", "1/2 true", "2/2 echo hi", "done"}));
}

TEST_F(ReleaseCacheTest, RefusesNamesThatAreNotFolderNames) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("backend", "HEAD");
  EXPECT_EQ(cache.Ensure("../x", v, repo(), {}).error().kind(), ErrorKind::kBadInput);
  git::ResolvedVersion bad = v;
  bad.tree = "../../etc";
  EXPECT_EQ(cache.Ensure("backend", bad, repo(), {}).error().kind(), ErrorKind::kBadInput);
  EXPECT_EQ(cache.Remove("backend", "..").error().kind(), ErrorKind::kBadInput);
}

TEST(ReleaseKeyTest, TheTreeAloneWithoutBuildCommandsElseTheCommandsToo) {
  const std::string tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
  EXPECT_EQ(ReleaseKey(tree, {}), tree);
  std::string built = ReleaseKey(tree, {"npm ci", "npm run build"});
  EXPECT_EQ(built.substr(0, tree.size() + 2), tree + "-b");
  EXPECT_EQ(built.size(), tree.size() + 2 + 12);
  EXPECT_EQ(ReleaseKey(tree, {"npm ci", "npm run build"}), built) << "stable";
  EXPECT_NE(ReleaseKey(tree, {"npm ci", "npm run build:prod"}), built);
  EXPECT_NE(ReleaseKey(tree, {"npm run build", "npm ci"}), built) << "order matters";
  EXPECT_NE(ReleaseKey(tree, {"npm ci npm run build"}),
            ReleaseKey(tree, {"npm ci", "npm run build"}));
  EXPECT_NE(ReleaseKey(tree, {"a\nb"}), ReleaseKey(tree, {"a", "b"}));
  EXPECT_NE(ReleaseKey("other", {"npm ci", "npm run build"}).substr(5), built.substr(5));
}

// The reported fault: build commands were not part of the key, so a changed `build` (even a
// failing one) reused the release of the old commands.
TEST_F(ReleaseCacheTest, AChangedBuildCommandBuildsANewRelease) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("frontend", "v1.0.0");
  std::vector<std::string> old_build{"echo old > out.txt", CountingCommand()};
  std::vector<std::string> new_build{"echo new > out.txt", CountingCommand()};
  auto old_release = cache.Ensure("frontend", v, repo(), old_build);
  ASSERT_TRUE(old_release.ok()) << old_release.error().message();
  EXPECT_FALSE(cache.IsCached("frontend", v.tree, new_build));

  auto new_release = cache.Ensure("frontend", v, repo(), new_build);
  ASSERT_TRUE(new_release.ok()) << new_release.error().message();
  EXPECT_TRUE(new_release->built_now);
  EXPECT_NE(new_release->path, old_release->path);
  EXPECT_EQ(Read(new_release->path / "out.txt"), "new\n");
  EXPECT_EQ(Read(old_release->path / "out.txt"), "old\n") << "the old release is left as it was";
  EXPECT_NE(Read(new_release->path / ReleaseCache::kMarkerFile).find("build echo new > out.txt"),
            std::string::npos);
  EXPECT_EQ(CountLines(counter()), 2);

  // Unchanged commands: cached, nothing runs.
  auto again = cache.Ensure("frontend", v, repo(), new_build);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->built_now);
  EXPECT_EQ(again->path, new_release->path);
  EXPECT_TRUE(cache.IsCached("frontend", v.tree, new_build));
  EXPECT_EQ(CountLines(counter()), 2);
  auto listed = cache.List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].tree, v.tree);
  EXPECT_EQ((*listed)[1].tree, v.tree);
  EXPECT_NE((*listed)[0].key, (*listed)[1].key);
}

TEST_F(ReleaseCacheTest, AChangedFailingBuildFailsInsteadOfReusingTheOldRelease) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("frontend", "v1.0.0");
  std::vector<std::string> working{"echo ok > out.txt"};
  auto good = cache.Ensure("frontend", v, repo(), working);
  ASSERT_TRUE(good.ok()) << good.error().message();

  std::vector<std::string> broken{"echo ok > out.txt", "echo missing-script; exit 2"};
  auto failed = cache.Ensure("frontend", v, repo(), broken);
  ASSERT_FALSE(failed.ok()) << "a failing build must not reuse " << good->path;
  EXPECT_NE(failed.error().message().find("'echo missing-script; exit 2' exited with status 2"),
            std::string::npos)
      << failed.error().message();
  EXPECT_FALSE(fs::exists(cache.Path("frontend", v.tree, broken)));
  EXPECT_FALSE(cache.IsCached("frontend", v.tree, broken));
  EXPECT_TRUE(LeftoverFolders(home()).empty()) << "nothing half-built is left behind";
  EXPECT_TRUE(cache.IsCached("frontend", v.tree, working)) << "and the old release is untouched";
  auto listed = cache.List();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(ReleaseCacheTest, CleaningUpAfterADeadBuildSparesAnotherKeysBuild) {
  ReleaseCache cache(home());
  git::ResolvedVersion v = Resolve("backend", "HEAD");
  // A build in progress of the same tree with build commands: its key starts with this one.
  fs::path other = paths::BuildingDir(home()) /
                   ("backend-" + ReleaseKey(v.tree, {"make"}) + "-" + std::to_string(getpid() + 1));
  fs::path dead = paths::BuildingDir(home()) / ("backend-" + v.tree + "-999999");
  fs::create_directories(other);
  fs::create_directories(dead);
  ASSERT_TRUE(cache.Ensure("backend", v, repo(), {}).ok());
  EXPECT_TRUE(fs::exists(other)) << "another key's build must not be removed";
  EXPECT_FALSE(fs::exists(dead)) << "a dead build of this key is cleaned up";
}

}  // namespace
}  // namespace adhoc::resources
