#include "server/garbage.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "common/test_support.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Items(const std::vector<Garbage>& garbage) {
  std::vector<std::string> out;
  for (const auto& g : garbage) out.push_back(g.kind + " " + g.name);
  return out;
}

TEST(GarbageTest, OnlyWhatNoRecordedEnvironmentOwnsIsGarbage) {
  HomeInventory inv;
  inv.recorded = {"alpha", "beta"};
  inv.processes = {{101, "alpha", "python3 app.py"}, {202, "ghost", "sleep 600"}};
  using Kind = resources::ManagedObject::Kind;
  inv.databases = {{Kind::kDatabase, "alpha-db", "alpha", "env_alpha"},
                   {Kind::kDatabase, "ghost-db", "ghost", "env_ghost"},
                   {Kind::kDatabase, "template-abc", "", "postgres"},  // shared: never garbage
                   {Kind::kRole, "env_alpha", "alpha", ""},
                   {Kind::kRole, "env_ghost", "ghost", ""}};
  inv.routed = {"alpha", "gone", "adhoc"};  // adhoc: the control plane's own route
  inv.folders = {"alpha", "beta", "ghost"};
  inv.access_logs = {"beta", "old", "adhoc"};
  inv.releases = {{"backend", "t1", "t1", "/h/releases/backend/t1", {}},
                  {"backend", "t0", "t0", "/h/releases/backend/t0", {}}};
  inv.used_releases = {"/h/releases/backend/t1"};
  EXPECT_EQ(Items(FindGarbage(inv)),
            (std::vector<std::string>{"process 202", "route gone", "database ghost-db",
                                      "role env_ghost", "folder envs/ghost",
                                      "log router/access/old.log", "release backend/t0"}));
  // Recording the ghost makes everything of it its own.
  inv.recorded.insert("ghost");
  EXPECT_EQ(
      Items(FindGarbage(inv)),
      (std::vector<std::string>{"route gone", "log router/access/old.log", "release backend/t0"}));
}

TEST(GarbageTest, CachesGoWithTheReleaseTheyWereMadeForButNotWhileBeingBuilt) {
  HomeInventory inv;
  inv.used_releases = {"/h/releases/backend/t1"};
  inv.templates = {{"aaaaaaaaaaaaaaaa", "adhoc_tpl_aaaaaaaaaaaaaaaa", "backend/t1", true, 1},
                   {"bbbbbbbbbbbbbbbb", "adhoc_tpl_bbbbbbbbbbbbbbbb", "backend/t0", true, 1},
                   {"cccccccccccccccc", "adhoc_tpl_cccccccccccccccc", "backend/t0", false, 1},
                   // A spare copy left by a template removed while it was being made.
                   {"ffffffffffffffff", "adhoc_spr_ffffffffffffffff", "", false, 1}};
  inv.static_caches = {{"dddddddddddddddd", "backend/t1", 1, 1},
                       {"eeeeeeeeeeeeeeee", "backend/t0", 1, 1}};
  EXPECT_EQ(
      Items(FindGarbage(inv)),
      (std::vector<std::string>{"template adhoc_tpl_bbbbbbbbbbbbbbbb",
                                "template adhoc_spr_ffffffffffffffff", "static eeeeeeeeeeeeeeee"}));
}

TEST(GarbageTest, AForkServerGoesWithItsReleaseAndBeforeIt) {
  HomeInventory inv;
  inv.used_releases = {"/h/releases/backend/t1"};
  inv.releases = {{"backend", "t1", "t1", "/h/releases/backend/t1", {}},
                  {"backend", "t0", "t0", "/h/releases/backend/t0", {}}};
  inv.fork_servers = {{"1111111111111111", "/h/releases/backend/t1", true},
                      {"0000000000000000", "/h/releases/backend/t0", true},
                      {"2222222222222222", "", false}};  // its record unreadable
  EXPECT_EQ(Items(FindGarbage(inv)),
            (std::vector<std::string>{"fork-server 0000000000000000",
                                      "fork-server 2222222222222222", "release backend/t0"}));
}

TEST(GarbageTest, ProcessesAreTiedToTheirEnvironmentByWorkingFolderOrCommandLine) {
  testutil::TempDir dir;
  fs::path work = dir.path() / "home/envs/ghost/tasks/t-1/work";
  fs::create_directories(work);
  pid_t child = fork();
  if (child == 0) {
    if (chdir(work.c_str()) != 0) _exit(1);
    execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(1);
  }
  ASSERT_GT(child, 0);
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {
    for (const auto& p : ProcessesOfEnvironments(dir.path() / "home"))
      if (p.pid == child) {
        EXPECT_EQ(p.env, "ghost");
        found = true;
      }
    if (!found) usleep(20000);
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(found) << "a process working in envs/ghost/ belongs to ghost";
}

}  // namespace
}  // namespace adhoc::server
