#include "router/access_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/paths.h"
#include "router/test_support.h"

namespace adhoc::router {
namespace {

using nlohmann::json;

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST(AppendJsonString, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(Quoted("plain /a?b=c"), "\"plain /a?b=c\"");
  EXPECT_EQ(Quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Quoted(std::string("x\n\t\x01y", 5)), "\"x\\u000a\\u0009\\u0001y\"");
}

TEST(AppendJsonString, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json::parse(Quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")).get<std::string>(),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  // A lone continuation byte, a truncated sequence, an overlong encoding, a surrogate.
  std::string bad =
      "a\x80"
      "b\xc3"
      "c\xc0\xaf"
      "d\xed\xa0\x80";
  std::string parsed = json::parse(Quoted(bad)).get<std::string>();
  EXPECT_EQ(parsed.substr(0, 1), "a");
  EXPECT_NE(parsed.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_EQ(Quoted("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
}

TEST(FormatAccessLine, IsOneJsonObjectPerLine) {
  AccessRecord r;
  r.time_ms = 1700000000123;
  r.status = 502;
  r.bytes = 42;
  r.duration_ms = 7;
  r.target = "gunicorn-7f3a";
  std::string line = FormatAccessLine("GET", "/a\"b", r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  json j = json::parse(line);
  EXPECT_EQ(j["time"], 1700000000123);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/a\"b");
  EXPECT_EQ(j["status"], 502);
  EXPECT_EQ(j["bytes"], 42);
  EXPECT_EQ(j["duration_ms"], 7);
  EXPECT_EQ(j["target"], "gunicorn-7f3a");
}

TEST(AccessLog, FlushWritesEveryQueuedLineToItsEnvironmentsFile) {
  testing::TempDir dir;
  auto home = dir.path();
  {
    AccessLog log(home);
    AccessRecord r;
    r.status = 200;
    for (int i = 0; i < 3; ++i) {
      r.path = "/" + std::to_string(i);
      log.Log("alpha", r);
    }
    r.path = "/beta";
    log.Log("beta", r);
    // Flush writes now, without waiting for the batching delay.
    log.Flush();
    std::ifstream alpha(paths::AccessLog(home, "alpha"));
    std::string line;
    int n = 0;
    while (std::getline(alpha, line)) {
      EXPECT_EQ(json::parse(line)["path"], "/" + std::to_string(n));
      ++n;
    }
    EXPECT_EQ(n, 3);
    std::ifstream beta(paths::AccessLog(home, "beta"));
    ASSERT_TRUE(std::getline(beta, line));
    EXPECT_EQ(json::parse(line)["path"], "/beta");
    EXPECT_EQ(log.dropped(), 0u);
  }
}

// Access logs name paths, addresses and users: their owner's alone.
TEST(AccessLog, FilesAreTheOwnersOnly) {
  testing::TempDir dir;
  auto home = dir.path();
  std::filesystem::create_directories(paths::AccessLog(home, "x").parent_path());
  std::filesystem::permissions(paths::AccessLog(home, "x").parent_path(),
                               std::filesystem::perms(0755));
  AccessLog log(home);
  AccessRecord r;
  r.status = 200;
  log.Log("alpha", r);
  log.Flush();
  auto mode = [](const std::filesystem::path& p) {
    return std::filesystem::status(p).permissions() & std::filesystem::perms(0777);
  };
  EXPECT_EQ(mode(paths::AccessLog(home, "alpha")), std::filesystem::perms(0600));
  EXPECT_EQ(mode(paths::AccessLog(home, "alpha").parent_path()), std::filesystem::perms(0700));
}

TEST(AccessLog, DestructorWritesWhatIsQueued) {
  testing::TempDir dir;
  auto home = dir.path();
  {
    AccessLog log(home);
    AccessRecord r;
    r.path = "/last";
    log.Log("alpha", r);
  }
  std::ifstream alpha(paths::AccessLog(home, "alpha"));
  std::string line;
  ASSERT_TRUE(std::getline(alpha, line));
  EXPECT_EQ(json::parse(line)["path"], "/last");
}

}  // namespace
}  // namespace adhoc::router
