#include "router/request_path.h"

#include <gtest/gtest.h>

namespace adhoc::router {
namespace {

struct Case {
  const char* in;
  const char* out;  // nullptr: refused
};

std::string Show(const char* s) { return s ? s : "<refused>"; }

TEST(NormalizeRequestPath, DecodesUnreservedResolvesDotsMergesSlashes) {
  const Case cases[] = {
      {"/", "/"},
      {"/api/health-check/", "/api/health-check/"},
      {"/%61pi/health-check/", "/api/health-check/"},  // the bypass
      {"/%41%5a%7e%2d%2E%5f", "/AZ~-._"},
      {"/a%2fb", nullptr},  // an encoded slash: upstreams disagree on it
      {"/a%2Fb", nullptr},
      {"/a%5cb", nullptr},  // encoded backslash
      {"/a\\b", nullptr},   // raw backslash
      {"/a%00b", nullptr},  // encoded NUL
      {"/a%zzb", nullptr},
      {"/a%4", nullptr},
      {"/a%", nullptr},
      {"/a%20b", "/a%20b"},  // reserved and other escapes stay, hex upper-cased
      {"/a%3fb%c3%a9", "/a%3Fb%C3%A9"},
      {"/a/./b", "/a/b"},
      {"/a/../b", "/b"},
      {"/a/b/..", "/a/"},
      {"/a/b/.", "/a/b/"},
      {"/a/b/../../c", "/c"},
      {"/..", nullptr},
      {"/a/../..", nullptr},
      {"/../a", nullptr},
      {"/%2e%2e/a", nullptr},
      {"/a/%2e%2e/b", "/b"},
      {"/a/.%2e/b", "/b"},
      {"/public/../admin", "/admin"},
      {"//admin", "/admin"},
      {"/a//b///c", "/a/b/c"},
      {"/a/", "/a/"},
      {"/a//", "/a/"},
      {"/.a/..b/...", "/.a/..b/..."},  // only exact "." and ".." segments are dots
      {"/a.b/c..d", "/a.b/c..d"},
  };
  for (const Case& c : cases) {
    std::string path = c.in;
    PathNormalization n = NormalizeRequestPath(path);
    if (!c.out) {
      EXPECT_NE(n.error, nullptr) << c.in << " became " << path;
      continue;
    }
    ASSERT_EQ(n.error, nullptr) << c.in << ": " << n.error;
    EXPECT_EQ(path, c.out) << c.in;
    EXPECT_EQ(n.changed, std::string(c.in) != c.out) << c.in;
  }
}

TEST(NormalizeRequestPath, NormalPathsAreLeftAsTheyAre) {
  std::string path = "/static/app.js";
  const char* before = path.data();
  PathNormalization n = NormalizeRequestPath(path);
  EXPECT_EQ(n.error, nullptr);
  EXPECT_FALSE(n.changed);
  EXPECT_EQ(path.data(), before);
}

TEST(NormalizeRequestPath, IsIdempotent) {
  for (const char* in : {"/%61/./b//c/../d%20e", "/x/%7euser/", "/a/b/c/../../"}) {
    std::string once = in;
    ASSERT_EQ(NormalizeRequestPath(once).error, nullptr) << in;
    std::string twice = once;
    PathNormalization n = NormalizeRequestPath(twice);
    EXPECT_EQ(n.error, nullptr);
    EXPECT_FALSE(n.changed) << in;
    EXPECT_EQ(once, twice);
  }
}

}  // namespace
}  // namespace adhoc::router
