#include "common/proc_files.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

namespace adhoc {
namespace {

TEST(ReadProcFileTest, ReadsALiveProcessAndNeverThrowsForAGoneOne) {
  auto self = ReadProcFile("/proc/self/stat");
  ASSERT_TRUE(self.has_value());
  EXPECT_NE(self->find(std::to_string(getpid())), std::string::npos);
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(ReadProcFile("/proc/" + std::to_string(child) + "/environ").has_value());
  EXPECT_FALSE(ReadProcFile("/no/such/file").has_value());
}

TEST(ProcessesWorkingUnderTest, FindsAChildWorkingInAFolderAlsoAfterTheFolderIsRemoved) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/adhoc-proc-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path dir = fs::path(tmpl) / "inner";
  fs::create_directories(dir);
  pid_t child = fork();
  if (child == 0) {
    if (chdir(dir.c_str()) != 0) _exit(1);
    pause();
    _exit(0);
  }
  auto found = [&] {
    auto pids = ProcessesWorkingUnder(tmpl);
    return std::find(pids.begin(), pids.end(), child) != pids.end();
  };
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = found();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(seen);
  fs::remove_all(tmpl);
  EXPECT_TRUE(found()) << "a removed working folder still counts";
  EXPECT_TRUE(ProcessesWorkingUnder("/nonexistent-adhoc-folder").empty());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

}  // namespace
}  // namespace adhoc
