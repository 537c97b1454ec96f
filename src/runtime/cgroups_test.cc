#include "runtime/cgroups.h"

#include <gtest/gtest.h>

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
  auto groups = CreateTaskCgroups(none, "t1", 512, 100);
  ASSERT_TRUE(groups.ok());
  EXPECT_TRUE(groups->groups.empty());
  ASSERT_EQ(groups->warnings.size(), 2u);
  EXPECT_EQ(groups->warnings[0], "cpu limit not applied: controller not mounted");
  EXPECT_NE(none.Summary().find("memory unavailable: controller not mounted"), std::string::npos);
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
  TaskSpec Spec(const std::string& command) {
    TaskSpec s;
    s.id = UniqueId("cg");
    s.task_folder = dir_.path() / s.id;
    s.log_path = dir_.path() / (s.id + ".log");
    s.command = command;
    s.env = CleanEnv();
    return s;
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
  fs::path group = support_.memory.parent / spec.id;
  TaskState s = runtime_->Wait(*h, 60s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  // The shell may run python as its child and report 128+9 itself.
  EXPECT_EQ(s.exit.ShellCode(), 128 + SIGKILL) << s.exit.ToString() << "\n"
                                               << ReadFile(spec.log_path);
  EXPECT_EQ(ReadFile(spec.log_path).find("survived"), std::string::npos);
  EXPECT_FALSE(fs::exists(group)) << "the group is removed when the task ends";
  EXPECT_TRUE(warnings_.empty());
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

TEST_F(CgroupRuntimeTest, CpuQuotaIsSetAndTheTaskJoinsItsGroup) {
  if (!support_.cpu.available) GTEST_SKIP() << support_.Summary();
  TaskSpec spec = Spec("exec sleep 30");
  spec.cpu = 256;
  spec.stop_timeout = 2s;
  auto h = runtime_->Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  fs::path group = support_.cpu.parent / spec.id;
  if (support_.version == 1) {
    long period = std::stol(ReadFile(group / "cpu.cfs_period_us"));
    EXPECT_EQ(std::stol(ReadFile(group / "cpu.cfs_quota_us")), period / 4);
  } else {
    EXPECT_EQ(ReadFile(group / "cpu.max").substr(0, 5), "25000");
  }
  EXPECT_NE(ReadFile(group / "cgroup.procs").find(std::to_string(h->task.pid)), std::string::npos);
  ASSERT_TRUE(runtime_->Stop(*h).ok());
  EXPECT_FALSE(fs::exists(group));
}

TEST_F(CgroupRuntimeTest, UnavailableControllerWarnsAndRunsUnlimited) {
  LocalRuntimeOptions o;
  o.shim_binary = ADHOC_BINARY;
  o.cgroups = CgroupSupport{};
  o.cgroups->memory.reason = "controller not mounted";
  o.warn = [this](const std::string& w) { warnings_.push_back(w); };
  LocalRuntime runtime(o);
  TaskSpec spec = Spec("exit 0");
  spec.memory_mib = 50;
  auto h = runtime.Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  reaper_.Add(*h);
  EXPECT_EQ(runtime.Wait(*h, 20s).exit.code, 0);
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_EQ(warnings_[0], spec.id + ": memory limit not applied: controller not mounted");
}

}  // namespace
}  // namespace adhoc::runtime
