// Rendering an environment's access rules: the merge of adhoc.toml's and the env file's
// [access], placeholders, the router's checks on what they render to, and the two JSON forms.
#include "server/access_rules.h"

#include <gtest/gtest.h>

#include "spec/loader.h"

namespace adhoc::server {
namespace {

using nlohmann::json;

constexpr char kProject[] = R"(
name = "shop"
[images.backend]
path = "backend"
[services.api]
image = "backend"
command = "api"
port = 8000
routes = ["/api/*"]
)";

// The values of an environment named demo, with {random.*} as the test sets them.
struct Values {
  std::map<std::string, std::string> random;
  std::vector<std::string> asked;

  AccessValues Lookup() {
    return [this](const std::string& key) -> std::optional<std::string> {
      asked.push_back(key);
      if (key == "env") return "demo";
      if (key == "hostname") return "demo.localhost";
      if (key == "url") return "http://demo.localhost:8080/";
      if (key.starts_with("random.")) {
        auto it = random.find(key.substr(7));
        if (it != random.end()) return it->second;
      }
      return std::nullopt;
    };
  }
};

class AccessRulesTest : public ::testing::Test {
 protected:
  // The rules of `env_toml` with adhoc.toml's [access] `project_access` (may be empty).
  Result<std::optional<RenderedAccess>> Render(const std::string& project_access,
                                               const std::string& env_toml) {
    std::string project_toml = kProject;
    if (!project_access.empty()) project_toml += "[access]\n" + project_access;
    auto project = spec::ParseProject(project_toml);
    EXPECT_TRUE(project.ok()) << spec::FormatDiagnostics(project.diagnostics);
    project_ = project.value;
    auto env = spec::ParseEnvFile(env_toml, "demo", "envs/demo.toml", &project_);
    EXPECT_TRUE(env.ok()) << spec::FormatDiagnostics(env.diagnostics);
    env_ = env.value;
    return RenderAccess(project_, env_, values_.Lookup());
  }

  std::string Error(const std::string& project_access, const std::string& env_toml) {
    auto r = Render(project_access, env_toml);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.error().message();
  }

  spec::Project project_;
  spec::EnvFile env_;
  Values values_{
      {{"pw", "5be1f0c2d9a84e7f3b6c01a9d"}, {"access_token", "0c9e7d41b2a65f83e17d40b9a"}}};
};

TEST_F(AccessRulesTest, NoAccessTableNoRules) {
  auto r = Render("", "owner = \"x\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(values_.asked.empty());
}

TEST_F(AccessRulesTest, RendersUsersTokenAndPaths) {
  auto r = Render("", R"([access]
basic_auth   = ["{env}:{random.pw}", "qa:x-{hostname}"]
token        = "{random.access_token}"
allow        = ["10.0.0.0/8", "127.0.0.1"]
public_paths = ["/api/health-check/", "/static/*"]
)");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(r->has_value());
  const RenderedAccess& a = **r;
  ASSERT_EQ(a.users.size(), 2u);
  EXPECT_EQ(a.users[0].user, "demo");
  EXPECT_EQ(a.users[0].password, "5be1f0c2d9a84e7f3b6c01a9d");
  EXPECT_EQ(a.users[1].user, "qa");
  EXPECT_EQ(a.users[1].password, "x-demo.localhost");
  EXPECT_EQ(a.token, "0c9e7d41b2a65f83e17d40b9a");
  EXPECT_EQ(AccessFeedJson(a), json::parse(R"({"allow":["10.0.0.0/8","127.0.0.1"],
              "basic_auth":[{"user":"demo","password":"5be1f0c2d9a84e7f3b6c01a9d"},
                            {"user":"qa","password":"x-demo.localhost"}],
              "token":"0c9e7d41b2a65f83e17d40b9a",
              "public_paths":["/api/health-check/","/static/*"]})"));
  json view = AccessViewJson(a, "http://demo.localhost:8080/");
  EXPECT_EQ(view["token_url"], "http://demo.localhost:8080/?adhoc_token=0c9e7d41b2a65f83e17d40b9a");
  EXPECT_EQ(view["basic_auth"][0]["password"], "5be1f0c2d9a84e7f3b6c01a9d");
}

TEST_F(AccessRulesTest, ThePasswordMayHoldColonsTheUserIsBeforeTheFirst) {
  auto r = Render("", "[access]\nbasic_auth = \"ops:a:b:{url}\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)->users[0].user, "ops");
  EXPECT_EQ((*r)->users[0].password, "a:b:http://demo.localhost:8080/");
  EXPECT_TRUE(AccessFeedJson(**r).contains("basic_auth"));
  EXPECT_FALSE(AccessFeedJson(**r).contains("token"));
  EXPECT_FALSE(AccessViewJson(**r, "http://x/").contains("token_url"));
}

TEST_F(AccessRulesTest, TheEnvFileReplacesTheProjectsKeysOneByOne) {
  const std::string defaults =
      "basic_auth = \"team:{random.pw}\"\ntoken = \"{random.access_token}\"\n"
      "public_paths = [\"/health\"]\n";
  // Nothing in the env file: the project's rules.
  auto same = Render(defaults, "owner = \"x\"\n");
  ASSERT_TRUE(same.ok()) << same.error().message();
  EXPECT_EQ((*same)->users[0].user, "team");
  EXPECT_EQ((*same)->token, "0c9e7d41b2a65f83e17d40b9a");
  // Its own users, the token off, the project's public paths kept, an allow list added.
  auto mine = Render(defaults,
                     "[access]\nbasic_auth = \"{env}:{random.pw}\"\ntoken = \"\"\n"
                     "allow = [\"10.0.0.0/8\"]\n");
  ASSERT_TRUE(mine.ok()) << mine.error().message();
  ASSERT_EQ((*mine)->users.size(), 1u);
  EXPECT_EQ((*mine)->users[0].user, "demo");
  EXPECT_EQ((*mine)->token, "");
  EXPECT_EQ((*mine)->public_paths, std::vector<std::string>{"/health"});
  EXPECT_EQ((*mine)->allow, std::vector<std::string>{"10.0.0.0/8"});
  // Every part off: open, no rules.
  auto off = Render(defaults, "[access]\nbasic_auth = []\ntoken = \"\"\npublic_paths = []\n");
  ASSERT_TRUE(off.ok()) << off.error().message();
  EXPECT_FALSE(off->has_value());
}

TEST_F(AccessRulesTest, ATokenThatRendersShortOrWithBadCharactersIsAnError) {
  EXPECT_EQ(Error("", "[access]\ntoken = \"{env}-token-{env}\"\n"),
            "access.token (envs/demo.toml:2): '{env}-token-{env}' renders to "
            "'demo-token-demo' (15 characters); a token needs 16 or more, such as "
            "'{random.access_token}'");
  values_.random["t"] = "a/b";
  EXPECT_EQ(Error("", "[access]\ntoken = \"0123456789abcdef{random.t}\"\n"),
            "access.token (envs/demo.toml:2): '0123456789abcdef{random.t}' renders to "
            "'0123456789abcdefa/b', which holds characters other than A-Z a-z 0-9 - _ . ~");
  // From adhoc.toml: the message says so.
  EXPECT_NE(Error("token = \"{hostname}\"\n", "").find("access.token (adhoc.toml:11)"),
            std::string::npos);
}

TEST_F(AccessRulesTest, SecretsAndUnknownPlaceholdersAreErrorsThatSaySo) {
  EXPECT_EQ(Error("", "[access]\nbasic_auth = \"demo:{secret.demo_password}\"\n"),
            "access.basic_auth (envs/demo.toml:2): '{secret.demo_password}': secrets are not "
            "built yet; use '{random.demo_password}' (adhoc makes it once and `adhoc status` "
            "shows it)");
  // Names the files refuse in [access] are refused here too (rules recorded by an older
  // version, or a context made by hand).
  spec::Project project;
  spec::EnvFile env;
  env.access = spec::Access{};
  env.access->token = "{taskdir}0123456789abcdef";
  auto r = RenderAccess(project, env, values_.Lookup());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("unknown placeholder '{taskdir}' (access rules may use "
                                     "{env}, {hostname}, {url} and {random.NAME})"),
            std::string::npos)
      << r.error().message();
  // A value the environment does not have.
  env.access->token = "{random.missing}";
  r = RenderAccess(project, env, values_.Lookup());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("no value for '{random.missing}'"), std::string::npos);
}

TEST_F(AccessRulesTest, UsersAsTheRouterWantsThem) {
  EXPECT_NE(Error("", "[access]\nbasic_auth = \"{url}:pw\"\n")
                .find("access.basic_auth (envs/demo.toml:2): the user "
                      "'http://demo.localhost:8080/' must not be empty nor hold ':'"),
            std::string::npos);
  values_.random["empty"] = "";
  EXPECT_NE(Error("", "[access]\nbasic_auth = \"u:{random.empty}\"\n")
                .find("the password of 'u' is empty"),
            std::string::npos);
}

TEST_F(AccessRulesTest, PublicPathsWithoutCredentialsAreAnError) {
  // The loader refuses this; rules made another way are checked again, as the router would.
  spec::Project project;
  spec::EnvFile env;
  env.access = spec::Access{};
  env.access->allow = std::vector<std::string>{"10.0.0.0/8"};
  env.access->public_paths = std::vector<std::string>{"/health"};
  auto r = RenderAccess(project, env, values_.Lookup());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("public paths need basic_auth or token"), std::string::npos);
}

TEST_F(AccessRulesTest, AnAllowListAloneGuards) {
  auto r = Render("allow = [\"10.0.0.0/8\"]\n", "");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(AccessFeedJson(**r), json::parse(R"({"allow":["10.0.0.0/8"]})"));
}

}  // namespace
}  // namespace adhoc::server
