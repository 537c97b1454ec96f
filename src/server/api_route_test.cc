#include "server/api_route.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "server/test_fakes.h"

namespace adhoc::server {
namespace {

using nlohmann::json;
using testing::EventLog;
using testing::FakeRouteSink;

json Env(const std::string& name, const std::string& host) {
  return {{"name", name}, {"hosts", {host}}, {"status", "running"}, {"routes", json::array()}};
}

TEST(ApiRouteTest, DomainOfAHostIsWhatFollowsItsFirstLabel) {
  EXPECT_EQ(DomainOfHost("demo.localhost"), "localhost");
  EXPECT_EQ(DomainOfHost("demo.preview.example.com"), "preview.example.com");
  EXPECT_EQ(DomainOfHost("localhost"), "");
}

TEST(ApiRouteTest, NoEntryUntilTheApiListensOnTcp) {
  EventLog log;
  FakeRouteSink router(log);
  ApiRouteSink sink(router, {"localhost"});
  EXPECT_TRUE(sink.Entry().is_null());
  ASSERT_TRUE(sink.ReplaceAll(json::array({Env("demo", "demo.localhost")})).ok());
  EXPECT_FALSE(router.Env("demo").is_null());
  EXPECT_TRUE(router.Env(kApiRouteName).is_null());
}

TEST(ApiRouteTest, AWholeTableGetsTheEntryWithAHostPerDomain) {
  EventLog log;
  FakeRouteSink router(log);
  ApiRouteSink sink(router, {"localhost"});
  ASSERT_TRUE(sink.SetApiAddress("127.0.0.1:41234").ok());
  json entry = router.Env(kApiRouteName);
  ASSERT_FALSE(entry.is_null());
  EXPECT_EQ(entry["hosts"], json({"adhoc.localhost"}));
  EXPECT_EQ(entry["routes"][0]["pattern"], "/*");
  EXPECT_EQ(entry["routes"][0]["targets"][0]["address"], "127.0.0.1:41234");

  ASSERT_TRUE(sink.ReplaceAll(json::array({Env("demo", "demo.localhost"),
                                           Env("qa", "qa.preview.example.com")}))
                  .ok());
  entry = router.Env(kApiRouteName);
  ASSERT_FALSE(entry.is_null()) << "a whole table replaced the entry away";
  EXPECT_EQ(entry["hosts"], json({"adhoc.localhost", "adhoc.preview.example.com"}));
  EXPECT_FALSE(router.Env("demo").is_null());
}

TEST(ApiRouteTest, AnEnvironmentOnANewDomainAddsItsHostAndAKnownOneDoesNotRePut) {
  EventLog log;
  FakeRouteSink router(log);
  ApiRouteSink sink(router, {"localhost"});
  ASSERT_TRUE(sink.SetApiAddress("127.0.0.1:41234").ok());
  ASSERT_TRUE(sink.PutEnv(Env("demo", "demo.localhost")).ok());
  auto events = log.events();
  EXPECT_EQ(std::count(events.begin(), events.end(), "route adhoc [control-plane]"), 1);
  ASSERT_TRUE(sink.PutEnv(Env("qa", "qa.team.example")).ok());
  events = log.events();
  EXPECT_EQ(std::count(events.begin(), events.end(), "route adhoc [control-plane]"), 2);
  EXPECT_EQ(router.Env(kApiRouteName)["hosts"], json({"adhoc.localhost", "adhoc.team.example"}));
  EXPECT_EQ(sink.Hosts(), (std::vector<std::string>{"adhoc.localhost", "adhoc.team.example"}));
}

}  // namespace
}  // namespace adhoc::server
