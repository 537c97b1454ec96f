// Guarded environments end to end: an env file's [access] goes from `adhoc up` through the
// control plane's feed to the router, which keeps out whoever brings no credentials, lets in
// basic auth and the token link (then its cookie), never passes consumed credentials on to the
// app, serves public paths openly, and leaves other environments alone. The app is
// src/e2e/testdata/miniapp; its /api/headers answers with the headers that reached it.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Base64(const std::string& in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v =
        (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63],
                       kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
  }

  void WriteEnvFile(const std::string& env, const std::string& access) {
    std::ofstream(box_.repo() / "envs" / (env + ".toml"))
        << "owner = \"test\"\n[versions]\nbackend = \"HEAD\"\nfrontend = \"HEAD\"\n\n"
        << access;
  }

  // The headers /api/headers says reached the app.
  static json Reached(const HttpAnswer& a) {
    json j = json::parse(a.body, nullptr, false);
    return j.is_object() ? j["headers"] : json();
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST(Base64Test, MatchesTheStandard) {
  EXPECT_EQ(Base64("qa:pw"), "cWE6cHc=");
  EXPECT_EQ(Base64("ab"), "YWI=");
  EXPECT_EQ(Base64("abc"), "YWJj");
}

TEST_F(AccessTest, AGuardedEnvironmentLetsInOnlyWhatItsFileSays) {
  WriteEnvFile("guarded",
               "[access]\n"
               "basic_auth   = \"qa:{random.qa_password}\"\n"
               "token        = \"{random.access_token}\"\n"
               "public_paths = [\"/api/health\"]\n");
  CommandResult up = box_.Adhoc({"up", "guarded"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  const std::string url = "http://guarded.localhost:" + std::to_string(box_.router_port()) + "/";
  // `up` says it is guarded and how to get in; `status --json` gives the same credentials.
  EXPECT_NE(up.output.find("  guarded:  credentials needed; open paths /api/health"),
            std::string::npos)
      << up.output;
  json status = box_.AdhocJson({"status", "guarded"});
  ASSERT_TRUE(status.contains("access")) << status;
  const json& access = status["access"];
  const std::string password = access["basic_auth"][0]["password"];
  const std::string token = access["token"];
  EXPECT_EQ(access["basic_auth"][0]["user"], "qa");
  EXPECT_EQ(password.size(), 50u);
  EXPECT_EQ(token.size(), 50u);
  EXPECT_EQ(access["token_url"], url + "?adhoc_token=" + token);
  EXPECT_NE(up.output.find("  user:     qa  password " + password), std::string::npos) << up.output;
  EXPECT_NE(up.output.find("  link:     " + url + "?adhoc_token=" + token), std::string::npos)
      << up.output;
  CommandResult text = box_.Adhoc({"status", "guarded"});
  EXPECT_NE(text.output.find("  link:     " + url + "?adhoc_token=" + token), std::string::npos)
      << text.output;

  // No credentials: 401 everywhere but the public path, with a basic-auth challenge.
  HttpAnswer none = box_.Http("guarded", "GET", "/api/env");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_NE(none.headers["www-authenticate"].find("Basic realm=\"guarded\""), std::string::npos);
  EXPECT_EQ(box_.Http("guarded", "GET", "/").status, 401);
  EXPECT_EQ(box_.Http("guarded", "GET", "/static/hello.txt").status, 401);
  // An encoded path is the same path: no way around the rule, nor out of the public one.
  EXPECT_EQ(box_.Http("guarded", "GET", "/%61pi/env").status, 401);
  EXPECT_EQ(box_.Http("guarded", "GET", "/api/health/../env").status, 401);
  EXPECT_EQ(box_.Http("guarded", "GET", "/api/health").status, 200);
  EXPECT_EQ(box_.Http("guarded", "GET", "/%61pi/health").status, 200);

  // Basic auth: in, and the app never sees the Authorization header the router consumed.
  const std::string basic = "Basic " + Base64("qa:" + password);
  HttpAnswer in = box_.Http("guarded", "GET", "/api/headers", "", {{"Authorization", basic}});
  ASSERT_EQ(in.status, 200) << in.body;
  EXPECT_FALSE(Reached(in).contains("authorization")) << in.body;
  EXPECT_EQ(box_.Http("guarded", "GET", "/api/env", "", {{"Authorization", basic}}).status, 200);
  EXPECT_EQ(box_.Http("guarded", "GET", "/api/env", "",
                      {{"Authorization", "Basic " + Base64("qa:wrong")}})
                .status,
            401);

  // The token link: a redirect to the same URL without it, setting the cookie...
  HttpAnswer link = box_.Http("guarded", "GET", "/api/headers?adhoc_token=" + token);
  EXPECT_EQ(link.status, 302) << link.body;
  EXPECT_EQ(link.headers["location"], "/api/headers");
  EXPECT_NE(link.headers["set-cookie"].find("adhoc_access=" + token), std::string::npos)
      << link.headers["set-cookie"];
  EXPECT_EQ(box_.Http("guarded", "GET", "/api/env?adhoc_token=not-the-token-at-all").status, 401);
  // ...and the cookie lets in, without reaching the app (the app's own cookies do).
  HttpAnswer cookie = box_.Http("guarded", "GET", "/api/headers", "",
                                {{"Cookie", "theme=dark; adhoc_access=" + token}});
  ASSERT_EQ(cookie.status, 200) << cookie.body;
  EXPECT_EQ(Reached(cookie)["cookie"], "theme=dark") << cookie.body;
  EXPECT_EQ(box_.Http("guarded", "GET", "/", "", {{"Cookie", "adhoc_access=" + token}}).status,
            200);

  // Another environment without [access] stays open.
  CommandResult alpha = box_.Adhoc({"up", "alpha"});
  ASSERT_EQ(alpha.exit_code, 0) << alpha.output;
  EXPECT_EQ(alpha.output.find("guarded:"), std::string::npos) << alpha.output;
  EXPECT_EQ(json::parse(box_.Http("alpha", "GET", "/api/env").body)["env"], "alpha");
  EXPECT_FALSE(box_.AdhocJson({"status", "alpha"}).contains("access"));

  // The rules follow the file: turned off, the environment is open; nothing restarted.
  auto pids = box_.TaskPids("guarded");
  WriteEnvFile("guarded", "[access]\nbasic_auth = []\ntoken = \"\"\npublic_paths = []\n");
  CommandResult open = box_.Adhoc({"up", "guarded"});
  ASSERT_EQ(open.exit_code, 0) << open.output;
  EXPECT_NE(open.output.find("access rules"), std::string::npos) << open.output;
  EXPECT_EQ(box_.Http("guarded", "GET", "/api/env").status, 200);
  EXPECT_EQ(box_.TaskPids("guarded"), pids);
}

// Rules that cannot be rendered stop `up` before it makes anything: exit 1, the key, the file
// and line, and why.
TEST_F(AccessTest, RulesThatCannotBeRenderedStopUpBeforeAnythingIsMade) {
  WriteEnvFile("short", "[access]\ntoken = \"{env}-token\"\n");
  CommandResult up = box_.Adhoc({"up", "short"});
  EXPECT_EQ(up.exit_code, 1) << up.output;
  EXPECT_NE(up.output.find("access.token (envs/short.toml:7): '{env}-token' renders to "
                           "'short-token' (11 characters); a token needs 16 or more"),
            std::string::npos)
      << up.output;
  EXPECT_NE(up.output.find("Nothing was changed."), std::string::npos) << up.output;
  json ls = box_.AdhocJson({"ls"});
  EXPECT_TRUE(ls["environments"].empty()) << ls;
  EXPECT_FALSE(fs::exists(box_.home() / "envs" / "short"));
}

// The control plane's API and dashboard through the router at adhoc.localhost: nothing without
// the home's token; the bearer token, the sign-in link and its cookie let in; a change needs
// more than the cookie; gc leaves the route alone; a restarted control plane is reached again.
TEST_F(AccessTest, TheControlPlaneBehindTheRouterNeedsTheHomesToken) {
  WriteEnvFile("alpha", "");
  CommandResult up = box_.Adhoc({"up", "alpha"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  json dashboard = box_.AdhocJson({"dashboard"});
  const std::string url = "http://adhoc.localhost:" + std::to_string(box_.router_port()) + "/";
  ASSERT_EQ(dashboard["url"], url) << dashboard;
  const std::string token = dashboard["token"];
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(dashboard["token_url"], url + "?adhoc_token=" + token);
  EXPECT_EQ(fs::status(box_.home() / "api-token").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  HttpAnswer none = box_.Http("adhoc", "GET", "/v1/environments");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_EQ(box_.Http("adhoc", "GET", "/").status, 401);
  EXPECT_EQ(box_.Http("adhoc", "POST", "/v1/shutdown").status, 401);
  EXPECT_EQ(box_.Http("adhoc", "GET", "/v1/environments", "",
                      {{"Authorization", "Bearer " + std::string(64, '0')}})
                .status,
            401);

  const std::map<std::string, std::string> bearer = {{"Authorization", "Bearer " + token}};
  HttpAnswer list = box_.Http("adhoc", "GET", "/v1/environments", "", bearer);
  ASSERT_EQ(list.status, 200) << list.body;
  json envs = json::parse(list.body)["environments"];
  ASSERT_EQ(envs.size(), 1u) << list.body;
  EXPECT_EQ(envs[0]["name"], "alpha");

  // The sign-in link, then the dashboard with its cookie.
  HttpAnswer link = box_.Http("adhoc", "GET", "/?adhoc_token=" + token);
  EXPECT_EQ(link.status, 303) << link.body;
  EXPECT_EQ(link.headers["location"], "/");
  EXPECT_NE(link.headers["set-cookie"].find("adhoc_api=" + token), std::string::npos);
  const std::map<std::string, std::string> cookie = {{"Cookie", "adhoc_api=" + token}};
  HttpAnswer page = box_.Http("adhoc", "GET", "/", "", cookie);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<title>adhoc</title>"), std::string::npos);
  EXPECT_EQ(box_.Http("adhoc", "GET", "/v1/environments/alpha", "", cookie).status, 200);
  // A change with the cookie alone is refused, and nothing happens to alpha.
  EXPECT_EQ(box_.Http("adhoc", "POST", "/v1/environments/alpha/sleep", "{}", cookie).status, 403);
  EXPECT_EQ(box_.AdhocJson({"status", "alpha"})["status"], "running");

  // gc does not take the control plane's route for an orphan.
  json gc = box_.AdhocJson({"gc", "--dry-run"});
  for (const auto& g : gc["garbage"]) EXPECT_NE(g["env"], "adhoc") << gc;

  // A restarted control plane listens on another port; the router is told.
  pid_t old = box_.ControlPlanePid();
  ASSERT_GT(old, 0);
  kill(old, SIGKILL);
  int status = 0;
  for (int i = 0; i < 300 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = box_.ControlPlanePid() != old
                 ? box_.Http("adhoc", "GET", "/v1/health", "", bearer).status
                 : 0;
  }
  EXPECT_EQ(status, 200) << "the router does not reach the restarted control plane";
}

}  // namespace
}  // namespace adhoc::e2e
