#include "spec/duration.h"

#include <gtest/gtest.h>

namespace adhoc::spec {
namespace {

using std::chrono::seconds;

TEST(DurationTest, ParsesEveryUnitAndCombinations) {
  EXPECT_EQ(*ParseDuration("30s"), seconds(30));
  EXPECT_EQ(*ParseDuration("10m"), seconds(600));
  EXPECT_EQ(*ParseDuration("1h30m"), seconds(5400));
  EXPECT_EQ(*ParseDuration("3d"), seconds(3 * 86400));
  EXPECT_EQ(*ParseDuration("2w"), seconds(14 * 86400));
  EXPECT_EQ(*ParseDuration("1w2d3h4m5s"), seconds(604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5));
  EXPECT_EQ(*ParseDuration("0s"), seconds(0));
}

TEST(DurationTest, RejectsBadTextNamingTheValue) {
  for (const char* bad : {"", "10", "m", "10x", "1.5h", "-5s", "10 m", "30m1h", "1h1h", " 5s"}) {
    Result<seconds> r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(r.error().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << r.error().message();
  }
  EXPECT_FALSE(ParseDuration("99999999999999999999w").ok());
}

TEST(DurationTest, FormatReadsBack) {
  EXPECT_EQ(FormatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(3 * 86400)), "3d");
  for (int64_t s : {1, 59, 60, 3601, 86400 * 9 + 7, 604800 * 3}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(seconds(s))), seconds(s)) << s;
  }
}

}  // namespace
}  // namespace adhoc::spec
