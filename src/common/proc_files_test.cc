#include "common/proc_files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
}  // namespace adhoc
