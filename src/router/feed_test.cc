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

TEST(HealthCheckFromJson, DefaultsAndValidation) {
  auto h = HealthCheckFromJson(nlohmann::json::parse(R"({"path":"/api/health-check/"})"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->path, "/api/health-check/");
  EXPECT_EQ(h->interval.count(), 7000);
  EXPECT_EQ(h->timeout.count(), 5000);
  EXPECT_EQ(h->healthy_threshold, 2);
  EXPECT_EQ(h->unhealthy_threshold, 3);
  EXPECT_EQ(h->matcher_low, 200);
  EXPECT_EQ(h->matcher_high, 399);
  auto one = HealthCheckFromJson(nlohmann::json::parse(R"({"matcher":"204"})"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->matcher_low, 204);
  EXPECT_EQ(one->matcher_high, 204);
  for (const char* bad : {R"({"path":"x"})", R"({"matcher":"399-200"})", R"({"matcher":"2xx"})",
                          R"({"interval_ms":0})", R"({"healthy":"2"})"}) {
    EXPECT_FALSE(HealthCheckFromJson(nlohmann::json::parse(bad)).ok()) << bad;
  }
}

}  // namespace
}  // namespace adhoc::router
