#include "common/exec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace adhoc {
namespace {

TEST(ExecTest, CapturesOutputAndStatus) {
  auto r = Exec({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "out\nerr\n");
}

TEST(ExecTest, GivenEnvironmentOnly) {
  auto r =
      Exec({"sh", "-c", "echo \"$FOO-$HOME\""},
           {.env = std::map<std::string, std::string>{{"FOO", "bar"}, {"PATH", "/usr/bin:/bin"}}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->output, "bar-\n");
}

TEST(ExecTest, MissingCommandIsNotFound) {
  auto r = Exec({"no-such-command-adhoc"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(r.error().message().find("no-such-command-adhoc"), std::string::npos);
}

TEST(ExecTest, TimeoutKillsTheGroup) {
  auto r = Exec({"sh", "-c", "sleep 30 & sleep 30"}, {.timeout = std::chrono::milliseconds(200)});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
}

TEST(ExecTest, StdinAndLogFile) {
  auto dir = std::filesystem::temp_directory_path() / ("exec-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto r = Exec({"cat"}, {.log_file = dir / "log", .stdin_data = "hello\n"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  std::ifstream in(dir / "log");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hello");
  std::filesystem::remove_all(dir);
}

TEST(ExecTest, TimeoutAlsoWithLogFile) {
  auto dir = std::filesystem::temp_directory_path() / ("exec-test-to-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto start = std::chrono::steady_clock::now();
  auto r =
      Exec({"sleep", "30"}, {.timeout = std::chrono::milliseconds(200), .log_file = dir / "log"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  std::filesystem::remove_all(dir);
}

TEST(ExecTest, ExecOkNamesCommandAndTail) {
  auto r = ExecOk({"sh", "-c", "echo one; echo two; exit 1"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("exited with status 1"), std::string::npos);
  EXPECT_NE(r.error().message().find("two"), std::string::npos);
}

TEST(ExecTest, LastLines) {
  EXPECT_EQ(LastLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(LastLines("a\nb\nc", 5), "a\nb\nc");
  EXPECT_EQ(LastLines("", 2), "");
}

TEST(ExecTest, ShellQuote) {
  EXPECT_EQ(ShellQuote("abc"), "abc");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
}

}  // namespace
}  // namespace adhoc
