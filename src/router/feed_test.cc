#include "router/feed.h"

#include <gtest/gtest.h>

namespace adhoc::router {
namespace {

using json = nlohmann::json;

const char* kDemo = R"({"name":"demo","hosts":["demo.localhost"],"status":"running","routes":[
  {"pattern":"/api/*","service":"gunicorn","targets":[{"id":"t1","address":"127.0.0.2:8000"}]},
  {"pattern":"/static/*","folder":"/tmp/static"},
  {"pattern":"/*","priority":10,"service":"web-ui","targets":[{"id":"t2","address":"127.0.0.2:3000"}]}]})";

struct FeedFixture : ::testing::Test {
  RouteTableHolder holder;
  SharedStateRegistry registry;
  FeedHandler handler{holder, registry};
  json Send(const std::string& line) { return json::parse(handler.Handle(line)); }
};

TEST_F(FeedFixture, PingAndUnknownOp) {
  EXPECT_EQ(Send(R"({"op":"ping"})")["ok"], true);
  json r = Send(R"({"op":"explode"})");
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("unknown op"), std::string::npos);
  EXPECT_EQ(Send("not json")["ok"], false);
}

TEST_F(FeedFixture, ReplaceAllPutAndRemove) {
  json r = Send(std::string(R"({"op":"replace_all","envs":[)") + kDemo + "]}");
  ASSERT_EQ(r["ok"], true) << r.dump();
  auto table = holder.Load();
  const Environment* env = table->FindHost("demo.localhost");
  ASSERT_NE(env, nullptr);
  ASSERT_EQ(env->routes.size(), 3u);
  EXPECT_EQ(env->routes[0].pattern, "/*");             // explicit priority first
  EXPECT_EQ(env->Match("/api/x")->service, "web-ui");  // priority 10 beats /api/*
  EXPECT_EQ(env->routes[1].pattern, "/static/*");

  r = Send(R"({"op":"put_env","env":{"name":"b","hosts":["b.localhost"],"status":"starting",
    "routes":[{"pattern":"/*","service":"s","targets":[]}]}})");
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_NE(holder.Load()->FindHost("b.localhost"), nullptr);
  EXPECT_EQ(holder.Load()->FindHost("b.localhost")->status, EnvStatus::kStarting);

  r = Send(R"({"op":"remove_env","name":"demo"})");
  ASSERT_EQ(r["ok"], true);
  EXPECT_EQ(holder.Load()->FindHost("demo.localhost"), nullptr);
  EXPECT_EQ(Send(R"({"op":"remove_env","name":"demo"})")["ok"], true);  // idempotent
}

TEST_F(FeedFixture, BadEnvLeavesTheTableAsItWas) {
  ASSERT_EQ(Send(std::string(R"({"op":"replace_all","envs":[)") + kDemo + "]}")["ok"], true);
  auto before = holder.Load();
  json r = Send(R"({"op":"replace_all","envs":[{"name":"x","hosts":["x.localhost"],
    "routes":[{"pattern":"/a*b","service":"s","targets":[]}]}]})");
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("/a*b"), std::string::npos);
  EXPECT_EQ(holder.Load(), before);
  r = Send(R"({"op":"put_env","env":{"name":"y","hosts":["y.localhost"],"status":"zombie"}})");
  EXPECT_EQ(r["ok"], false);
  r = Send(R"({"op":"put_env","env":{"name":"y","hosts":["demo.localhost"]}})");
  EXPECT_EQ(r["ok"], false);  // host owned by demo
  EXPECT_EQ(holder.Load(), before);
}

TEST_F(FeedFixture, StatsReportPerEnvironmentCounters) {
  ASSERT_EQ(Send(std::string(R"({"op":"replace_all","envs":[)") + kDemo + "]}")["ok"], true);
  const Environment* env = holder.Load()->FindHost("demo.localhost");
  env->stats->requests += 3;
  env->stats->bytes += 100;
  env->stats->errors_5xx += 1;
  env->stats->last_request_ms = 12345;
  json r = Send(R"({"op":"stats"})");
  ASSERT_EQ(r["ok"], true);
  EXPECT_EQ(r["envs"]["demo"]["requests"], 3);
  EXPECT_EQ(r["envs"]["demo"]["bytes"], 100);
  EXPECT_EQ(r["envs"]["demo"]["errors_5xx"], 1);
  EXPECT_EQ(r["envs"]["demo"]["last_request_ms"], 12345);
  EXPECT_EQ(r["envs"]["demo"]["in_flight"], 0);
}

TEST_F(FeedFixture, StatsCountOutstandingRequestsPerAddressEvenAfterItLeftTheTable) {
  ASSERT_EQ(Send(std::string(R"({"op":"replace_all","envs":[)") + kDemo + "]}")["ok"], true);
  const Environment* env = holder.Load()->FindHost("demo.localhost");
  std::shared_ptr<UpstreamState> held;  // what an in-flight request holds
  for (const Route& route : env->routes)
    for (const Target& t : route.targets) held = t.state;
  ASSERT_TRUE(held);
  held->outstanding += 2;
  const std::string address = held->address;
  // The target leaves the table; the request in flight still holds it.
  ASSERT_EQ(Send(R"({"op":"remove_env","name":"demo"})")["ok"], true);
  json r = Send(R"({"op":"stats","addresses":[")" + address + R"(","127.9.9.9:1"]})");
  ASSERT_EQ(r["ok"], true) << r;
  EXPECT_EQ(r["upstreams"][address], 2);
  EXPECT_EQ(r["upstreams"]["127.9.9.9:1"], 0);
  held->outstanding -= 2;
  EXPECT_EQ(Send(R"({"op":"stats","addresses":[")" + address + R"("]})")["upstreams"][address], 0);
  EXPECT_EQ(Send(R"({"op":"stats","addresses":"x"})")["ok"], false);
}

}  // namespace
}  // namespace adhoc::router

namespace adhoc::router {
namespace {

TEST(AccessRulesFromJson, ReadsEveryMode) {
  auto rules = AccessRulesFromJson(json::parse(R"({
      "allow": ["10.8.0.0/16", "127.0.0.1", "::1"],
      "basic_auth": [{"user": "qa", "password": "s3cret"}, {"user": "pm", "password": "p:w"}],
      "token": "k7Qm2xYp9LrT4vWn",
      "cookie_max_age_s": 3600,
      "public_paths": ["/api/health-check/", "/webhooks/*"],
      "realm": "demo preview"})"),
                                   "demo");
  ASSERT_TRUE(rules.ok()) << rules.error().message();
  EXPECT_EQ(rules->allow.size(), 3u);
  ASSERT_EQ(rules->basic_credentials.size(), 2u);
  EXPECT_EQ(rules->basic_credentials[0], Base64Encode("qa:s3cret"));
  EXPECT_EQ(rules->basic_credentials[1], Base64Encode("pm:p:w"));  // a ':' is fine in a password
  EXPECT_EQ(rules->token, "k7Qm2xYp9LrT4vWn");
  EXPECT_EQ(rules->cookie_max_age_s, 3600);
  EXPECT_EQ(rules->public_paths.size(), 2u);
  EXPECT_EQ(rules->realm, "demo preview");
  auto defaults = AccessRulesFromJson(json::parse(R"({"token":"k7Qm2xYp9LrT4vWn"})"), "demo");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->realm, "demo");
  EXPECT_EQ(defaults->cookie_max_age_s, 7 * 24 * 3600);
  EXPECT_TRUE(AccessRulesFromJson(json::parse("{}"), "demo")->empty());
  EXPECT_TRUE(AccessRulesFromJson(json(nullptr), "demo")->empty());
}

TEST(AccessRulesFromJson, RefusesWhatCouldLeaveAnEnvironmentOpen) {
  struct Bad {
    const char* json;
    const char* names;  // part of the message
  };
  for (const Bad& b : std::initializer_list<Bad>{
           {R"({"alow": ["10.0.0.0/8"]})", "\"alow\""},
           {R"({"allow": ["10.0.0.0/33"]})", "10.0.0.0/33"},
           {R"({"allow": "10.0.0.0/8"})", "\"allow\""},
           {R"({"basic_auth": [{"user": "qa"}]})", "password"},
           {R"({"basic_auth": [{"user": "q:a", "password": "x"}]})", "q:a"},
           {R"({"basic_auth": [{"user": "qa", "password": ""}]})", "qa"},
           {R"({"basic_auth": {"user": "qa", "password": "x"}})", "basic_auth"},
           {R"({"token": "short"})", "16"},
           {R"({"token": "has spaces in it, sadly"})", "A-Z"},
           {R"({"token": "k7Qm2xYp9LrT4vWn", "cookie_max_age_s": 5})", "cookie_max_age_s"},
           {R"({"token": "k7Qm2xYp9LrT4vWn", "public_paths": ["/a*"]})", "/a*"},
           {R"({"public_paths": ["/health"]})", "public_paths"},
           {R"({"token": "k7Qm2xYp9LrT4vWn", "realm": "a\"b"})", "realm"},
           {R"([1])", "object"},
       }) {
    auto r = AccessRulesFromJson(json::parse(b.json), "demo");
    ASSERT_FALSE(r.ok()) << b.json;
    EXPECT_NE(r.error().message().find(b.names), std::string::npos)
        << b.json << ": " << r.error().message();
  }
}

TEST_F(FeedFixture, AccessTravelsWithTheEnvironmentAndABadOneChangesNothing) {
  json env = json::parse(kDemo);
  env["access"] = {{"basic_auth", {{{"user", "qa"}, {"password", "s3cret"}}}}};
  ASSERT_EQ(Send(json{{"op", "put_env"}, {"env", env}}.dump())["ok"], true);
  auto table = holder.Load();
  ASSERT_NE(table->FindHost("demo.localhost")->access, nullptr);
  EXPECT_EQ(table->FindHost("demo.localhost")->access->basic_credentials.size(), 1u);

  env["access"] = {{"token", "short"}};
  json r = Send(json{{"op", "put_env"}, {"env", env}}.dump());
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("environment 'demo'"), std::string::npos)
      << r.dump();
  EXPECT_EQ(holder.Load(), table);  // still guarded as before

  env["access"] = json::object();  // no rules: nothing checked on the hot path
  ASSERT_EQ(Send(json{{"op", "put_env"}, {"env", env}}.dump())["ok"], true);
  EXPECT_EQ(holder.Load()->FindHost("demo.localhost")->access, nullptr);
}

TEST_F(FeedFixture, RemovingAnEnvironmentTellsTheRouter) {
  std::vector<std::shared_ptr<EnvStats>> removed;
  FeedHooks hooks;
  hooks.env_removed = [&](std::shared_ptr<EnvStats> s) { removed.push_back(std::move(s)); };
  FeedHandler with_hooks(holder, registry, hooks);
  auto send = [&](const std::string& line) { return json::parse(with_hooks.Handle(line)); };
  ASSERT_EQ(send(std::string(R"({"op":"replace_all","envs":[)") + kDemo + "]}")["ok"], true);
  std::shared_ptr<EnvStats> demo = holder.Load()->FindHost("demo.localhost")->stats;
  ASSERT_EQ(send(std::string(R"({"op":"put_env","env":)") + kDemo + "}")["ok"], true);
  EXPECT_TRUE(removed.empty());  // a route change is not a removal
  ASSERT_EQ(send(R"({"op":"remove_env","name":"demo"})")["ok"], true);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], demo);
  EXPECT_TRUE(demo->removed.load());
  ASSERT_EQ(send(std::string(R"({"op":"replace_all","envs":[)") + kDemo + "]}")["ok"], true);
  ASSERT_EQ(send(R"({"op":"replace_all","envs":[]})")["ok"], true);
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_EQ(send(R"({"op":"reload_tls"})")["ok"], false);  // no HTTPS listener here
}

}  // namespace
}  // namespace adhoc::router
