#include "runtime/logs.h"

#include <gtest/gtest.h>

#include "runtime/log_writer.h"
#include "runtime/test_util.h"

namespace adhoc::runtime {
namespace {

using namespace std::chrono_literals;

TEST(TimestampTest, FormatsAndParsesRfc3339WithMilliseconds) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714566896789));
  EXPECT_EQ(FormatTimestamp(t), "2024-05-01T12:34:56.789Z");
  std::chrono::system_clock::time_point back;
  ASSERT_TRUE(ParseTimestamp("2024-05-01T12:34:56.789Z rest", &back));
  EXPECT_EQ(back, t);
  EXPECT_FALSE(ParseTimestamp("no timestamp here, sorry!", &back));
}

TEST(LogsTest, LastLinesSpanRotatedFiles) {
  testing::TempDir dir;
  fs::path log = dir.path() / "a.log";
  RotatingLogWriter w(log, 100, 3);
  ASSERT_TRUE(w.Open().ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(w.WriteLine("line " + std::to_string(i)).ok());
  EXPECT_TRUE(fs::exists(RotatedLogPath(log, 3)));
  EXPECT_FALSE(fs::exists(RotatedLogPath(log, 4)));
  auto last = ReadLastLines(log, 5);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->size(), 5u);
  EXPECT_EQ(last->front().text, "line 15");
  EXPECT_EQ(last->back().text, "line 19");
  auto none = ReadLastLines(dir.path() / "missing.log", 5);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(LogsTest, LinesSinceATime) {
  testing::TempDir dir;
  fs::path log = dir.path() / "a.log";
  std::ofstream(log) << "2024-05-01T10:00:00.000Z old\n"
                     << "2024-05-01T12:00:00.000Z new\n"
                     << "2024-05-01T12:00:01.000Z newer\n";
  std::chrono::system_clock::time_point since;
  ASSERT_TRUE(ParseTimestamp("2024-05-01T11:00:00.000Z", &since));
  auto lines = ReadLinesSince(log, since);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].text, "new");
}

TEST(LogFollowerTest, FollowsGrowthAndRotation) {
  testing::TempDir dir;
  fs::path log = dir.path() / "a.log";
  RotatingLogWriter w(log, 120, 2);
  ASSERT_TRUE(w.Open().ok());
  ASSERT_TRUE(w.WriteLine("before").ok());
  LogFollower f(log, /*from_end=*/true);
  EXPECT_TRUE(f.Poll().empty());
  std::vector<std::string> seen;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(w.WriteLine("l" + std::to_string(i)).ok());
    if (i % 2 == 0)  // poll less often than lines are written, across rotations
      for (const auto& l : f.Poll()) seen.push_back(l.text);
  }
  for (const auto& l : f.Poll()) seen.push_back(l.text);
  std::vector<std::string> want;
  for (int i = 0; i < 12; ++i) want.push_back("l" + std::to_string(i));
  EXPECT_EQ(seen, want);
}

}  // namespace
}  // namespace adhoc::runtime
