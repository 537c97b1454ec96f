#include "router/route_table.h"

#include <gtest/gtest.h>

namespace adhoc::router {
namespace {

Route R(std::string pattern, std::optional<int> priority = std::nullopt) {
  Route r;
  r.pattern = std::move(pattern);
  r.priority = priority;
  r.service = r.pattern;  // names the route in assertions
  r.targets.push_back(Target{"t", "127.0.0.1:9000"});
  return r;
}

Environment Env(std::string name, std::vector<std::string> hosts, std::vector<Route> routes) {
  Environment e;
  e.name = std::move(name);
  e.hosts = std::move(hosts);
  e.routes = std::move(routes);
  return e;
}

std::string MatchIn(const RouteTable& table, const std::string& host, const std::string& path) {
  const Environment* env = table.FindHost(host);
  if (!env) return "<no env>";
  const Route* r = env->Match(path);
  return r ? r->pattern : "<none>";
}

TEST(RoutePattern, ExactPrefixCatchAll) {
  Route r = R("/api/*");
  ASSERT_TRUE(ParsePattern(r).ok());
  EXPECT_EQ(r.kind, PatternKind::kPrefix);
  EXPECT_TRUE(r.Matches("/api"));  // a prefix also matches itself
  EXPECT_TRUE(r.Matches("/api/"));
  EXPECT_TRUE(r.Matches("/api/x/y"));
  EXPECT_FALSE(r.Matches("/apix"));
  EXPECT_FALSE(r.Matches("/ap"));
  EXPECT_FALSE(r.Matches("/"));

  Route e = R("/health");
  ASSERT_TRUE(ParsePattern(e).ok());
  EXPECT_EQ(e.kind, PatternKind::kExact);
  EXPECT_TRUE(e.Matches("/health"));
  EXPECT_FALSE(e.Matches("/health/"));
  EXPECT_FALSE(e.Matches("/healthz"));

  Route all = R("/*");
  ASSERT_TRUE(ParsePattern(all).ok());
  EXPECT_EQ(all.kind, PatternKind::kCatchAll);
  EXPECT_TRUE(all.Matches("/"));
  EXPECT_TRUE(all.Matches("/anything/at/all"));
}

TEST(RoutePattern, RejectsOtherWildcardsAndJunk) {
  for (const char* bad : {"", "api", "/api*", "/a/*/b", "/*/x", "/a b", "/a?x", "/**"}) {
    Route r = R(bad);
    EXPECT_FALSE(ParsePattern(r).ok()) << bad;
  }
}

TEST(RouteTable, PrecedenceExactThenLongerPrefixThenShorterThenCatchAll) {
  SharedStateRegistry reg;
  auto table = RouteTable::Build({Env("demo", {"demo.localhost"},
                                      {R("/*"), R("/api/*"), R("/api/v2/*"), R("/api/v2/health")})},
                                 reg);
  ASSERT_TRUE(table.ok()) << table.error().message();
  const RouteTable& t = **table;
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/api/v2/health"), "/api/v2/health");
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/api/v2/health/x"), "/api/v2/*");
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/api/v2"), "/api/v2/*");
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/api/v1"), "/api/*");
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/api"), "/api/*");
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/apix"), "/*");
  EXPECT_EQ(MatchIn(t, "demo.localhost", "/"), "/*");
}

TEST(RouteTable, ExplicitPriorityWinsLowerFirst) {
  SharedStateRegistry reg;
  auto table = RouteTable::Build(
      {Env("demo", {"demo.localhost"}, {R("/api/v2/*"), R("/*", 5), R("/api/*", 1)})}, reg);
  ASSERT_TRUE(table.ok());
  // /api/* has priority 1, so it beats the longer, unprioritized /api/v2/*.
  EXPECT_EQ(MatchIn(**table, "demo.localhost", "/api/v2/x"), "/api/*");
  // /* (priority 5) beats the unprioritized /api/v2/* too.
  auto table2 =
      RouteTable::Build({Env("demo", {"demo.localhost"}, {R("/api/v2/*"), R("/*", 5)})}, reg);
  ASSERT_TRUE(table2.ok());
  EXPECT_EQ(MatchIn(**table2, "demo.localhost", "/api/v2/x"), "/*");
}

TEST(RouteTable, NoMatchWithoutCatchAll) {
  SharedStateRegistry reg;
  auto table = RouteTable::Build({Env("demo", {"demo.localhost"}, {R("/api/*")})}, reg);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(MatchIn(**table, "demo.localhost", "/admin"), "<none>");
}

TEST(RouteTable, HostLookupIsCaseInsensitiveAndIgnoresPort) {
  EXPECT_EQ(NormalizeHost("Demo.LocalHost:8080"), "demo.localhost");
  EXPECT_EQ(NormalizeHost("demo.localhost."), "demo.localhost");
  EXPECT_EQ(NormalizeHost("[::1]:8080"), "[::1]");
  SharedStateRegistry reg;
  auto table = RouteTable::Build({Env("demo", {"Demo.Localhost"}, {R("/*")})}, reg);
  ASSERT_TRUE(table.ok());
  EXPECT_NE((*table)->FindHost(NormalizeHost("DEMO.localhost:8080")), nullptr);
  EXPECT_EQ((*table)->FindHost("other.localhost"), nullptr);
}

TEST(RouteTable, RejectsDuplicateHostsNamesAndBadTargets) {
  SharedStateRegistry reg;
  EXPECT_FALSE(
      RouteTable::Build(
          {Env("a", {"x.localhost"}, {R("/*")}), Env("b", {"x.localhost"}, {R("/*")})}, reg)
          .ok());
  EXPECT_FALSE(
      RouteTable::Build(
          {Env("a", {"a.localhost"}, {R("/*")}), Env("a", {"b.localhost"}, {R("/*")})}, reg)
          .ok());
  Route bad = R("/*");
  bad.targets[0].address = "127.0.0.1";  // no port
  auto r = RouteTable::Build({Env("a", {"a.localhost"}, {bad})}, reg);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("environment 'a'"), std::string::npos);
}

TEST(RouteTable, WithEnvAndWithoutEnvLeaveTheOldSnapshotIntact) {
  SharedStateRegistry reg;
  auto t1 = RouteTable::Build({Env("a", {"a.localhost"}, {R("/*")})}, reg);
  ASSERT_TRUE(t1.ok());
  auto t2 = (*t1)->WithEnv(Env("b", {"b.localhost"}, {R("/*")}), reg);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ((*t1)->FindHost("b.localhost"), nullptr);
  EXPECT_NE((*t2)->FindHost("b.localhost"), nullptr);
  EXPECT_NE((*t2)->FindHost("a.localhost"), nullptr);
  auto t3 = (*t2)->WithoutEnv("a");
  ASSERT_TRUE(t3.ok());
  EXPECT_EQ((*t3)->FindHost("a.localhost"), nullptr);
  EXPECT_NE((*t2)->FindHost("a.localhost"), nullptr);
  EXPECT_TRUE((*t3)->WithoutEnv("nope").ok());  // idempotent
}

TEST(RouteTable, SharedStateSurvivesUpdates) {
  SharedStateRegistry reg;
  auto t1 = RouteTable::Build({Env("a", {"a.localhost"}, {R("/*")})}, reg);
  ASSERT_TRUE(t1.ok());
  const Environment* a1 = (*t1)->FindHost("a.localhost");
  a1->stats->requests = 7;
  auto t2 = (*t1)->WithEnv(Env("a", {"a.localhost"}, {R("/x/*")}), reg);
  ASSERT_TRUE(t2.ok());
  const Environment* a2 = (*t2)->FindHost("a.localhost");
  EXPECT_EQ(a2->stats->requests.load(), 7u);
  EXPECT_EQ(a1->routes[0].targets[0].state, a2->routes[0].targets[0].state);
  EXPECT_TRUE((*t2)->HasAddress("127.0.0.1:9000"));
}

TEST(RouteTableHolder, ReaderSeesNewSnapshotsAfterStore) {
  SharedStateRegistry reg;
  RouteTableHolder holder;
  RouteTableHolder::Reader reader(holder);
  EXPECT_TRUE(reader.Get()->envs().empty());
  holder.Store(*RouteTable::Build({Env("a", {"a.localhost"}, {R("/*")})}, reg));
  EXPECT_EQ(reader.Get()->envs().size(), 1u);
}

}  // namespace
}  // namespace adhoc::router
