#include "router/error_pages.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace adhoc::router {
namespace {

TEST(ErrorPages, AcceptNegotiation) {
  EXPECT_FALSE(PrefersJson(""));
  EXPECT_FALSE(PrefersJson("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
  EXPECT_TRUE(PrefersJson("application/json"));
  EXPECT_TRUE(PrefersJson("application/json, text/plain, */*"));
  EXPECT_TRUE(PrefersJson("text/html;q=0.5, application/json"));
  EXPECT_FALSE(PrefersJson("application/json;q=0.4, text/html"));
  EXPECT_FALSE(PrefersJson("application/json;q=0"));
}

TEST(ErrorPages, NameTheEnvironmentAndWhy) {
  ErrorPage html = MakeErrorPage(503, "demo", "demo.localhost", "Environment 'demo' is <b>", false);
  EXPECT_NE(html.content_type.find("text/html"), std::string::npos);
  EXPECT_NE(html.body.find("503 Service Unavailable"), std::string::npos);
  EXPECT_NE(html.body.find("<b>demo</b>"), std::string::npos);
  EXPECT_NE(html.body.find("is &lt;b&gt;"), std::string::npos);  // escaped

  ErrorPage json = MakeErrorPage(404, "", "x.localhost", "No environment has x", true);
  auto j = nlohmann::json::parse(json.body);
  EXPECT_EQ(j["status"], 404);
  EXPECT_EQ(j["host"], "x.localhost");
  EXPECT_EQ(j["detail"], "No environment has x");
}

}  // namespace
}  // namespace adhoc::router
