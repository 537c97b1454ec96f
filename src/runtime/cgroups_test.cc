#include "runtime/cgroups.h"

#include <gtest/gtest.h>

#include <thread>

#include "runtime/runtime.h"
#include "runtime/test_util.h"

namespace adhoc::runtime {
namespace {

using namespace std::chrono_literals;
using testing::CleanEnv;
using testing::ReadFile;
using testing::TaskReaper;
using testing::TempDir;
using testing::UniqueId;

const char kMountinfoV1[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupPathsTest, V1GroupsAreUnderThisProcesssOwnGroup) {
  std::string self = "4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
  int version = 0;
  EXPECT_EQ(OwnCgroupDir("memory", self, kMountinfoV1, &version),
            "/sys/fs/cgroup/memory/process_api/abc");
  EXPECT_EQ(version, 1);
  EXPECT_EQ(OwnCgroupDir("cpu", self, kMountinfoV1, &version), "/sys/fs/cgroup/cpu");
}

TEST(CgroupPathsTest, CombinedControllersAndMountRoots) {
  std::string self = "3:cpu,cpuacct:/a/b\n";
  std::string mounts =
      "32 31 0:29 /a /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
  int version = 0;
  EXPECT_EQ(OwnCgroupDir("cpu", self, mounts, &version), "/sys/fs/cgroup/cpu,cpuacct/b");
  EXPECT_TRUE(OwnCgroupDir("memory", self, mounts, &version).empty());
}

TEST(CgroupSupportTest, MissingControllersGiveWarningsNotErrors) {
  CgroupSupport none;
  none.cpu.reason = "controller not mounted";
  none.memory.reason = "controller not mounted";
  none.pids.reason = "controller not mounted";
  auto groups = CreateTaskCgroups(none, "adhoc-12345678/demo", "t1", 512, 100);
  ASSERT_TRUE(groups.ok());
  EXPECT_TRUE(groups->groups.empty());
  ASSERT_EQ(groups->warnings.size(), 2u);
  EXPECT_EQ(groups->warnings[0], "cpu limit not applied: controller not mounted");
  EXPECT_NE(none.Summary().find("memory unavailable: controller not mounted"), std::string::npos);
  EXPECT_NE(none.Summary().find("pids unavailable: controller not mounted"), std::string::npos);
}

TEST(LimitsGroupTest, NamedByHomeAndEnvironment) {
  std::string demo = LimitsGroup("/var/lib/adhoc", "demo");
  ASSERT_EQ(demo.size(), std::string("adhoc-12345678/demo").size()) << demo;
  EXPECT_EQ(demo.substr(0, 6), "adhoc-");
  EXPECT_EQ(demo.substr(14), "/demo");
  // Stable: the same home, however it is spelled, gives the same name.
  EXPECT_EQ(LimitsGroup("/var/lib/adhoc/", "demo"), demo);
  EXPECT_EQ(LimitsGroup("/var/lib/./adhoc", "demo"), demo);
  EXPECT_EQ(LimitsGroup("/var/lib/adhoc", "other").substr(0, 14), demo.substr(0, 14));
  // Another home on the same machine: another folder for the same environment name.
  EXPECT_NE(LimitsGroup("/home/bob/.local/share/adhoc", "demo").substr(0, 14), demo.substr(0, 14));
}

// A cgroup v1 layout in a temporary folder: logic only (a real cgroupfs is tested below).
class FakeCgroupTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    support_.version = 1;
    for (auto [c, name] : {std::pair{&support_.cpu, "cpu"},
                           {&support_.memory, "memory"},
                           {&support_.pids, "pids"}}) {
      c->available = true;
      c->parent = dir_.path() / name / "own";
      fs::create_directories(c->parent);
    }
  }
  CgroupSupport support_;
  TempDir dir_;
};

TEST_F(FakeCgroupTreeTest, SameTaskIdInTwoEnvironmentsGetsTwoGroupsWithTheirOwnLimits) {
  std::string alpha = LimitsGroup("/srv/home-a", "alpha");
  std::string beta = LimitsGroup("/srv/home-a", "beta");
  auto a = CreateTaskCgroups(support_, alpha, "gunicorn-1", 512, 100);
  auto b = CreateTaskCgroups(support_, beta, "gunicorn-1", 256, 300);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_EQ(a->groups.size(), 3u) << "cpu, memory and pids";
  ASSERT_EQ(b->groups.size(), 3u);
  EXPECT_TRUE(a->warnings.empty());
  fs::path a_memory = support_.memory.parent / alpha / "gunicorn-1";
  fs::path b_memory = support_.memory.parent / beta / "gunicorn-1";
  EXPECT_EQ(a->groups[1], a_memory);
  EXPECT_EQ(b->groups[1], b_memory);
  EXPECT_EQ(ReadFile(a_memory / "memory.limit_in_bytes"), std::to_string(100 << 20));
  EXPECT_EQ(ReadFile(b_memory / "memory.limit_in_bytes"), std::to_string(300 << 20));
  EXPECT_EQ(ReadFile(support_.cpu.parent / alpha / "gunicorn-1" / "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(ReadFile(support_.cpu.parent / beta / "gunicorn-1" / "cpu.cfs_quota_us"), "25000");
  EXPECT_TRUE(fs::is_directory(support_.pids.parent / alpha / "gunicorn-1"));
}

TEST_F(FakeCgroupTreeTest, ASecondHomeGetsOtherGroupsForTheSameEnvironmentAndTask) {
  std::string mine = LimitsGroup("/var/lib/adhoc", "demo");
  std::string theirs = LimitsGroup("/home/bob/.local/share/adhoc", "demo");
  auto a = CreateTaskCgroups(support_, mine, "web-1", 0, 64);
  auto b = CreateTaskCgroups(support_, theirs, "web-1", 0, 128);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a->groups.size(); ++i) EXPECT_NE(a->groups[i], b->groups[i]);
  EXPECT_EQ(ReadFile(support_.memory.parent / mine / "web-1" / "memory.limit_in_bytes"),
            std::to_string(64 << 20));
}

TEST_F(FakeCgroupTreeTest, TasksWithoutLimitsStillGetGroupsForAccounting) {
  auto a = CreateTaskCgroups(support_, "adhoc-12345678/demo", "worker-1", 0, 0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->groups.size(), 3u);
  EXPECT_FALSE(fs::exists(a->groups[1] / "memory.limit_in_bytes")) << "no limit was asked for";
}

TEST_F(FakeCgroupTreeTest, RemovingTheLastTaskOfAnEnvironmentRemovesItsFolders) {
  std::string alpha = LimitsGroup("/srv/h", "alpha");
  std::string beta = LimitsGroup("/srv/h", "beta");
  auto a1 = CreateTaskCgroups(support_, alpha, "web-1", 0, 64);
  auto a2 = CreateTaskCgroups(support_, alpha, "web-2", 0, 64);
  auto b1 = CreateTaskCgroups(support_, beta, "web-1", 0, 64);
  ASSERT_TRUE(a1.ok() && a2.ok() && b1.ok());
  // A fake tree has knob files in its folders; a real cgroupfs removes them with the folder.
  auto drop_knobs = [](const TaskCgroups& t) {
    for (const auto& g : t.groups)
      for (const auto& f : fs::directory_iterator(g)) fs::remove(f.path());
  };
  drop_knobs(*a1);
  drop_knobs(*a2);
  drop_knobs(*b1);
  const fs::path memory = support_.memory.parent;
  const fs::path home_folder = memory / fs::path(alpha).parent_path();

  RemoveTaskCgroups(a1->groups, alpha);
  EXPECT_FALSE(fs::exists(memory / alpha / "web-1"));
  EXPECT_TRUE(fs::exists(memory / alpha / "web-2")) << "another task of the environment";
  EXPECT_TRUE(fs::exists(memory / beta / "web-1")) << "the same task id in another environment";

  RemoveTaskCgroups(a2->groups, alpha);
  EXPECT_FALSE(fs::exists(memory / alpha)) << "the environment's folder goes with its last task";
  EXPECT_FALSE(fs::exists(support_.cpu.parent / alpha));
  EXPECT_FALSE(fs::exists(support_.pids.parent / alpha));
  EXPECT_TRUE(fs::exists(home_folder)) << "beta still has a task";

  RemoveTaskCgroups(b1->groups, beta);
  EXPECT_FALSE(fs::exists(home_folder));
  EXPECT_TRUE(fs::exists(memory)) << "adhoc's own group is never removed";
}

TEST_F(FakeCgroupTreeTest, ALimitsGroupMustStayBelowAdhocsOwnGroup) {
  for (const char* bad : {"../escape", "/abs/olute", "a/../../b", "", "a//b", ".hidden/x"}) {
    auto r = CreateTaskCgroups(support_, bad, "web-1", 0, 64);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput) << bad;
    }
  }
  EXPECT_FALSE(CreateTaskCgroups(support_, "adhoc-1/demo", "../web", 0, 64).ok());
  EXPECT_FALSE(fs::exists(dir_.path() / "memory" / "escape"));
}

class CgroupRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    support_ = DetectCgroups();
    LocalRuntimeOptions o;
    o.shim_binary = ADHOC_BINARY;
    o.cgroups = support_;
    o.warn = [this](const std::string& w) { warnings_.push_back(w); };
    runtime_ = std::make_unique<LocalRuntime>(o);
  }
  TaskSpec Spec(const std::string& command, const std::string& id = "") {
    TaskSpec s;
    s.id = id.empty() ? UniqueId("cg") : id;
    s.task_folder = dir_.path() / UniqueId("folder") / s.id;
    s.log_path = s.task_folder.parent_path() / (s.id + ".log");
    s.command = command;
    s.env = CleanEnv();
    // A home of the test's own: its groups never meet another test's.
    s.limits_group = LimitsGroup(dir_.path(), "env");
    return s;
  }
  // Waits (bounded) until the task's log holds `text`.
  bool WaitForLog(const TaskSpec& spec, const std::string& text) {
    for (int i = 0; i < 600; ++i) {
      if (ReadFile(spec.log_path).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  CgroupSupport support_;
  std::vector<std::string> warnings_;
  TempDir dir_;
  TaskReaper reaper_;
  std::unique_ptr<LocalRuntime> runtime_;
};

TEST_F(CgroupRuntimeTest, MemoryLimitKillsATaskAllocatingBeyondIt) {
  if (!support_.memory.available) GTEST_SKIP() << support_.Summary();
  TaskSpec spec = Spec("/usr/bin/python3 -c \"b=bytearray(200*1024*1024); print('survived')\"");
  spec.memory_mib = 50;
  auto h = runtime_->Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  fs::path group = support_.memory.parent / spec.limits_group / spec.id;
  TaskState s = runtime_->Wait(*h, 60s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  // The shell may run python as its child and report 128+9 itself.
  EXPECT_EQ(s.exit.ShellCode(), 128 + SIGKILL) << s.exit.ToString() << "\n"
                                               << ReadFile(spec.log_path);
  EXPECT_EQ(ReadFile(spec.log_path).find("survived"), std::string::npos);
  EXPECT_FALSE(fs::exists(group)) << "the group is removed when the task ends";
  EXPECT_FALSE(fs::exists(group.parent_path())) << "and the environment's, its last task gone";
  EXPECT_TRUE(warnings_.empty());
}

// The reported fault: every environment's `gunicorn-1` shared one memory limit, so one
// environment's worker running out of memory killed another environment's.
TEST_F(CgroupRuntimeTest, AMemoryHogInOneEnvironmentLeavesTheSameTaskOfAnotherAlone) {
  if (!support_.memory.available) GTEST_SKIP() << support_.Summary();
  const char* kHolder =
      "/usr/bin/python3 -c \"import time; b=bytearray(60*1024*1024); print('holding', "
      "flush=True); time.sleep(120)\"";
  const char* kHog =
      "/usr/bin/python3 -c \"b=bytearray(60*1024*1024); c=bytearray(200*1024*1024); "
      "print('survived')\"";
  TaskSpec quiet = Spec(kHolder, "gunicorn-1");
  quiet.limits_group = LimitsGroup(dir_.path(), "quiet");
  quiet.memory_mib = 100;
  quiet.stop_timeout = 2s;
  TaskSpec hog = Spec(kHog, "gunicorn-1");
  hog.limits_group = LimitsGroup(dir_.path(), "hog");
  hog.memory_mib = 100;

  auto q = runtime_->Start(quiet);
  ASSERT_TRUE(q.ok()) << q.error().message();
  reaper_.Add(*q);
  ASSERT_TRUE(WaitForLog(quiet, "holding")) << ReadFile(quiet.log_path);
  fs::path quiet_group = support_.memory.parent / quiet.limits_group / "gunicorn-1";
  EXPECT_EQ(ReadFile(quiet_group / "memory.limit_in_bytes"), std::to_string(100 << 20) + "\n");

  auto h = runtime_->Start(hog);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  TaskState hog_state = runtime_->Wait(*h, 60s);
  ASSERT_EQ(hog_state.kind, TaskState::kExited);
  EXPECT_EQ(hog_state.exit.ShellCode(), 128 + SIGKILL) << ReadFile(hog.log_path);
  EXPECT_EQ(ReadFile(hog.log_path).find("survived"), std::string::npos);

  // Together the two hold more than one limit: had they shared a group, the bigger one (the
  // quiet task, when the hog starts) would have been killed.
  // The task itself, not its shim (which outlives a killed task by a moment).
  EXPECT_TRUE(IsAlive(q->task)) << ReadFile(quiet.log_path);
  EXPECT_EQ(runtime_->Inspect(*q).kind, TaskState::kRunning);
  EXPECT_NE(ReadFile(quiet_group / "cgroup.procs").find(std::to_string(q->task.pid)),
            std::string::npos);
  EXPECT_EQ(ReadFile(quiet_group / "memory.failcnt"), "0\n")
      << "the quiet task never hit its limit";
  EXPECT_FALSE(fs::exists(support_.memory.parent / hog.limits_group))
      << "the hog's environment folder went with its only task";

  ASSERT_TRUE(runtime_->Stop(*q).ok());
  EXPECT_FALSE(fs::exists(quiet_group.parent_path()));
  EXPECT_FALSE(fs::exists(support_.memory.parent / fs::path(quiet.limits_group).parent_path()))
      << "the home's folder went with its last environment";
}

// A shim killed with -9 cannot remove its task's groups: the runtime does, once it sees the
// task vanished, and the environment's folder goes with them.
TEST_F(CgroupRuntimeTest, TheGroupsOfAVanishedTaskAreRemoved) {
  if (!support_.memory.available) GTEST_SKIP() << support_.Summary();
  TaskSpec spec = Spec("exec sleep 30");
  spec.memory_mib = 64;
  auto h = runtime_->Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  fs::path group = support_.memory.parent / spec.limits_group / spec.id;
  ASSERT_TRUE(fs::exists(group));
  kill(h->shim.pid, SIGKILL);
  kill(-h->task.pid, SIGKILL);
  for (int i = 0; i < 200 && (IsAlive(h->shim) || IsAlive(h->task)); ++i)
    std::this_thread::sleep_for(10ms);
  TaskState s = runtime_->Inspect(*h);
  for (int i = 0; i < 100 && fs::exists(group); ++i) {  // the killed task leaves it a moment later
    std::this_thread::sleep_for(20ms);
    s = runtime_->Inspect(*h);
  }
  EXPECT_EQ(s.kind, TaskState::kVanished);
  EXPECT_FALSE(fs::exists(group));
  EXPECT_FALSE(fs::exists(group.parent_path()));
}

TEST_F(CgroupRuntimeTest, WithoutALimitTheSameTaskSurvives) {
  TaskSpec spec = Spec("/usr/bin/python3 -c \"b=bytearray(200*1024*1024); print('survived')\"");
  auto h = runtime_->Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  TaskState s = runtime_->Wait(*h, 60s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 0);
}

TEST_F(CgroupRuntimeTest, CpuQuotaIsSetAndTheTaskJoinsItsGroupsInEveryController) {
  if (!support_.cpu.available) GTEST_SKIP() << support_.Summary();
  TaskSpec spec = Spec("exec sleep 30");
  spec.cpu = 256;
  spec.stop_timeout = 2s;
  auto h = runtime_->Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  fs::path group = support_.cpu.parent / spec.limits_group / spec.id;
  if (support_.version == 1) {
    long period = std::stol(ReadFile(group / "cpu.cfs_period_us"));
    EXPECT_EQ(std::stol(ReadFile(group / "cpu.cfs_quota_us")), period / 4);
  } else {
    EXPECT_EQ(ReadFile(group / "cpu.max").substr(0, 5), "25000");
  }
  std::string pid = std::to_string(h->task.pid);
  EXPECT_NE(ReadFile(group / "cgroup.procs").find(pid), std::string::npos);
  for (const ControllerSupport* c : {&support_.memory, &support_.pids}) {
    if (!c->available) continue;
    EXPECT_NE(ReadFile(c->parent / spec.limits_group / spec.id / "cgroup.procs").find(pid),
              std::string::npos)
        << c->parent;
  }
  ASSERT_TRUE(runtime_->Stop(*h).ok());
  EXPECT_FALSE(fs::exists(group));
  EXPECT_FALSE(fs::exists(support_.cpu.parent / fs::path(spec.limits_group).parent_path()));
}

TEST_F(CgroupRuntimeTest, UnavailableControllerWarnsOnceAndRunsUnlimited) {
  LocalRuntimeOptions o;
  o.shim_binary = ADHOC_BINARY;
  o.cgroups = CgroupSupport{};
  o.cgroups->memory.reason = "controller not mounted";
  o.warn = [this](const std::string& w) { warnings_.push_back(w); };
  LocalRuntime runtime(o);
  for (int i = 0; i < 3; ++i) {
    TaskSpec spec = Spec("exit 0");
    spec.memory_mib = 50;
    auto h = runtime.Start(spec);
    ASSERT_TRUE(h.ok()) << h.error().message();
    reaper_.Add(*h);
    EXPECT_EQ(runtime.Wait(*h, 20s).exit.code, 0);
  }
  ASSERT_EQ(warnings_.size(), 1u) << "one warning, not one per task";
  EXPECT_EQ(warnings_[0].find("memory limit not applied: controller not mounted"), 0u)
      << warnings_[0];
}

}  // namespace
}  // namespace adhoc::runtime
