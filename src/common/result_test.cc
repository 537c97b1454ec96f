#include "common/result.h"

#include <gtest/gtest.h>

namespace adhoc {
namespace {

Result<int> Half(int x) {
  if (x % 2) return BadInput("odd number " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ADHOC_ASSIGN_OR_RETURN(int h, Half(x));
  return std::move(Half(h)).context("halving " + std::to_string(h));
}

Status CheckEven(int x) {
  ADHOC_RETURN_IF_ERROR(Half(x));
  return OkStatus();
}

TEST(ResultTest, ValueAndErrorTravelWithContext) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "halving 3: odd number 3");
  EXPECT_EQ(r.error().exit_code(), 2);
  EXPECT_EQ(Failed("x").exit_code(), 1);
}

TEST(ResultTest, StatusFromResult) {
  EXPECT_TRUE(CheckEven(4).ok());
  Status s = CheckEven(5);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(std::move(s).context("checking").error().message(), "checking: odd number 5");
}

}  // namespace
}  // namespace adhoc
