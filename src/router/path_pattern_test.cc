#include "router/path_pattern.h"

#include <gtest/gtest.h>

namespace adhoc::router {
namespace {

TEST(ParsePathPattern, KindsAndMatching) {
  auto prefix = ParsePathPattern("/admin/*");
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(prefix->kind, PatternKind::kPrefix);
  EXPECT_TRUE(prefix->Matches("/admin"));
  EXPECT_TRUE(prefix->Matches("/admin/users/"));
  EXPECT_FALSE(prefix->Matches("/administrator"));
  auto exact = ParsePathPattern("/api/health-check/");
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(exact->Matches("/api/health-check/"));
  EXPECT_FALSE(exact->Matches("/api/health-check"));
  auto all = ParsePathPattern("/*");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Matches("/whatever"));
}

TEST(ParsePathPattern, RefusesPatternsThatAreNotNormal) {
  // Requests are matched in normal form, so these could never match what they seem to name.
  for (const char* bad : {"/%61pi/*", "/a//b", "/a/./b", "/a/../b/*", "/a%2fb", "/..", "/a\\b"}) {
    auto p = ParsePathPattern(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.error().message().find(bad), std::string::npos) << p.error().message();
  }
  auto p = ParsePathPattern("/%61pi/*");
  EXPECT_NE(p.error().message().find("write '/api'"), std::string::npos) << p.error().message();
}

}  // namespace
}  // namespace adhoc::router
