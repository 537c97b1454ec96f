#include "router/metrics.h"

#include <gtest/gtest.h>

#include "router/feed.h"

namespace adhoc::router {
namespace {

using json = nlohmann::json;

TEST(RenderMetrics, CountersHistogramsHealthAndGauges) {
  RouteTableHolder holder;
  SharedStateRegistry registry;
  FeedHandler feed(holder, registry);
  json env = {{"name", "demo"},
              {"hosts", {"demo.localhost"}},
              {"routes",
               {{{"pattern", "/api/*"},
                 {"service", "api"},
                 {"targets", {{{"id", "api-1"}, {"address", "127.0.0.1:9"}}}}}}}};
  ASSERT_EQ(json::parse(feed.Handle(json{{"op", "put_env"}, {"env", env}}.dump()))["ok"], true);
  auto table = holder.Load();
  const Environment* demo = table->FindHost("demo.localhost");
  demo->routes[0].metrics->Record(200, 800);    // 0.8 ms: first bucket
  demo->routes[0].metrics->Record(503, 30000);  // 30 ms
  demo->router_metrics->Record(404, 100);
  demo->stats->bytes.fetch_add(1234);
  demo->stats->upgraded.fetch_add(2);
  demo->stats->denied_credentials.fetch_add(3);
  RouterMetrics router;
  router.open_connections = 7;
  router.unknown_host_requests_total = 5;

  std::string text = RenderMetrics(*table, router);
  auto has = [&](const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has(R"(adhoc_router_requests_total{env="demo",service="api",class="2xx"} 1)"))
      << text;
  EXPECT_TRUE(has(R"(adhoc_router_requests_total{env="demo",service="api",class="5xx"} 1)"));
  EXPECT_TRUE(has(R"x(adhoc_router_requests_total{env="demo",service="(router)",class="4xx"} 1)x"));
  EXPECT_TRUE(has(
      R"(adhoc_router_request_duration_seconds_bucket{env="demo",service="api",le="0.001"} 1)"));
  EXPECT_TRUE(has(
      R"(adhoc_router_request_duration_seconds_bucket{env="demo",service="api",le="0.025"} 1)"));
  EXPECT_TRUE(
      has(R"(adhoc_router_request_duration_seconds_bucket{env="demo",service="api",le="0.05"} 2)"));
  EXPECT_TRUE(
      has(R"(adhoc_router_request_duration_seconds_bucket{env="demo",service="api",le="+Inf"} 2)"));
  EXPECT_TRUE(has(R"(adhoc_router_request_duration_seconds_count{env="demo",service="api"} 2)"));
  EXPECT_TRUE(
      has(R"(adhoc_router_request_duration_seconds_sum{env="demo",service="api"} 0.030800)"));
  EXPECT_TRUE(has(R"(adhoc_router_response_bytes_total{env="demo"} 1234)"));
  EXPECT_TRUE(has(R"(adhoc_router_upgraded_connections{env="demo"} 2)"));
  EXPECT_TRUE(has(R"(adhoc_router_access_denied_total{env="demo",reason="credentials"} 3)"));
  EXPECT_TRUE(has(R"(adhoc_router_healthy_targets{env="demo",service="api"} 1)")) << text;
  EXPECT_TRUE(has("adhoc_router_open_connections 7"));
  EXPECT_TRUE(has("adhoc_router_unknown_host_requests_total 5"));
  EXPECT_TRUE(has("# TYPE adhoc_router_request_duration_seconds histogram"));
  EXPECT_EQ(text.back(), '\n');

  // Counters survive a route change and leave with their environment.
  ASSERT_EQ(json::parse(feed.Handle(json{{"op", "put_env"}, {"env", env}}.dump()))["ok"], true);
  text = RenderMetrics(*holder.Load(), router);
  EXPECT_TRUE(has(R"(adhoc_router_requests_total{env="demo",service="api",class="2xx"} 1)"));
  ASSERT_EQ(json::parse(feed.Handle(R"({"op":"remove_env","name":"demo"})"))["ok"], true);
  text = RenderMetrics(*holder.Load(), router);
  EXPECT_EQ(text.find("env=\"demo\""), std::string::npos);
}

TEST(RenderMetrics, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace adhoc::router
