#include "spec/placeholders.h"

#include <gtest/gtest.h>

namespace adhoc::spec {
namespace {

std::vector<std::string> Keys(std::string_view text) {
  std::vector<std::string> out;
  for (const Placeholder& p : FindPlaceholders(text)) out.push_back(p.Key());
  return out;
}

PlaceholderScope FullScope(PlaceholderContext context) {
  PlaceholderScope s;
  s.context = context;
  s.images = {"backend", "frontend"};
  s.postgres = true;
  s.redis = true;
  return s;
}

std::vector<std::string> Problems(std::string_view text, const PlaceholderScope& scope) {
  std::vector<std::string> out;
  for (const PlaceholderProblem& p : CheckPlaceholders(text, scope)) out.push_back(p.message);
  return out;
}

TEST(PlaceholdersTest, GrammarAndOffsets) {
  std::vector<Placeholder> found = FindPlaceholders("gunicorn -b {bind} {version.backend}!");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].name, "bind");
  EXPECT_EQ(found[0].part, "");
  EXPECT_EQ(found[0].offset, 12u);
  EXPECT_EQ(found[0].length, 6u);
  EXPECT_EQ(found[1].name, "version");
  EXPECT_EQ(found[1].part, "backend");
  EXPECT_EQ(found[1].offset, 19u);
  EXPECT_EQ(Keys("{random.Secret_Key-2}"), std::vector<std::string>{"random.Secret_Key-2"});
  EXPECT_EQ(Keys("{a_1}"), std::vector<std::string>{"a_1"});
}

TEST(PlaceholdersTest, OtherBracesAreLiteral) {
  EXPECT_TRUE(Keys("server { listen 80; }").empty());
  EXPECT_TRUE(Keys("^a{1,3}$").empty());
  EXPECT_TRUE(Keys("${HOME} {Env} {1x} {} { env } {env.} {.x} {a.b.c} {env").empty());
  EXPECT_TRUE(Keys("{{env}").empty());  // escaped
  EXPECT_EQ(Keys("{{{env}"), std::vector<std::string>{"env"});
}

TEST(PlaceholdersTest, NginxConfigRendersOnlyItsPlaceholders) {
  const std::string conf =
      "events {}\n"
      "http {\n"
      "  server {\n"
      "    listen {bind};\n"
      "    location ~ ^/x{2,3}$ { return 204; }\n"
      "    root {workdir}/dist;\n"
      "  }\n"
      "}\n";
  Result<std::string> r = RenderPlaceholders(
      conf, std::map<std::string, std::string>{{"bind", "127.0.1.2:3000"}, {"workdir", "/r"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r,
            "events {}\n"
            "http {\n"
            "  server {\n"
            "    listen 127.0.1.2:3000;\n"
            "    location ~ ^/x{2,3}$ { return 204; }\n"
            "    root /r/dist;\n"
            "  }\n"
            "}\n");
}

TEST(PlaceholdersTest, RenderEscapesAndLookup) {
  std::map<std::string, std::string> values = {{"env", "demo"}, {"postgres.host", "127.0.0.1"}};
  EXPECT_EQ(*RenderPlaceholders("{{env} is {env}", values), "{env} is demo");
  EXPECT_EQ(*RenderPlaceholders("{{", values), "{");
  EXPECT_EQ(*RenderPlaceholders("a}}b", values), "a}}b");
  EXPECT_EQ(*RenderPlaceholders("{env}-db@{postgres.host}", values), "demo-db@127.0.0.1");
  int calls = 0;
  Result<std::string> r = RenderPlaceholders("{secret.x}{secret.y}", [&](const Placeholder& p) {
    ++calls;
    return std::optional<std::string>(p.part + "!");
  });
  EXPECT_EQ(*r, "x!y!");
  EXPECT_EQ(calls, 2);
}

TEST(PlaceholdersTest, RenderNamesTheMissingPlaceholder) {
  Result<std::string> r =
      RenderPlaceholders("x {env} {redis.url}", std::map<std::string, std::string>{{"env", "e"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("'{redis.url}'"), std::string::npos) << r.error().message();
}

TEST(PlaceholdersTest, EveryNameIsAllowedWithAPort) {
  const std::string all =
      "{env}{hostname}{url}{host}{port}{bind}{workdir}{taskdir}{static}{version.backend}"
      "{postgres.host}{postgres.port}{postgres.database}{postgres.user}{postgres.password}"
      "{postgres.url}{redis.host}{redis.port}{redis.password}{redis.url}{random.k}{secret.s}";
  EXPECT_EQ(Keys(all).size(), 22u);
  EXPECT_TRUE(Problems(all, FullScope(PlaceholderContext::kServiceWithPort)).empty());
}

TEST(PlaceholdersTest, UnknownNamesAndParts) {
  auto scope = FullScope(PlaceholderContext::kServiceWithPort);
  EXPECT_EQ(Problems("{nmae}", scope), std::vector<std::string>{"unknown placeholder '{nmae}'"});
  EXPECT_NE(Problems("{postgres.db}", scope).at(0).find("unknown placeholder '{postgres.db}'"),
            std::string::npos);
  EXPECT_NE(Problems("{redis.user}", scope).at(0).find("'{redis.user}'"), std::string::npos);
  EXPECT_NE(Problems("{env.x}", scope).at(0).find("takes no part"), std::string::npos);
  EXPECT_NE(Problems("{secret}", scope).at(0).find("needs a part"), std::string::npos);
  EXPECT_NE(Problems("{version.api}", scope).at(0).find("names no image"), std::string::npos);
  EXPECT_EQ(Problems("{a} {b}", scope).size(), 2u);
}

TEST(PlaceholdersTest, PortOnlyWhereThereIsOne) {
  for (auto context : {PlaceholderContext::kServiceWithoutPort, PlaceholderContext::kTask}) {
    auto scope = FullScope(context);
    scope.where = "service 'beat'";
    auto problems = Problems("{port} {bind} {host}", scope);
    ASSERT_EQ(problems.size(), 2u);
    EXPECT_NE(problems[0].find("'{port}' needs a port"), std::string::npos) << problems[0];
    EXPECT_NE(problems[0].find("service 'beat'"), std::string::npos) << problems[0];
    EXPECT_NE(problems[1].find("'{bind}'"), std::string::npos);
  }
}

TEST(PlaceholdersTest, PostgresAndRedisNeedTheirSections) {
  PlaceholderScope scope;
  scope.context = PlaceholderContext::kTask;
  auto problems = Problems("{postgres.url} {redis.url}", scope);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("needs a [postgres] section"), std::string::npos);
  EXPECT_NE(problems[1].find("needs a [redis] section"), std::string::npos);
}

TEST(PlaceholdersTest, AccessAndDatabaseContexts) {
  auto access = FullScope(PlaceholderContext::kAccess);
  EXPECT_TRUE(Problems("demo:{secret.pw}-{env}{random.x}{hostname}{url}", access).empty());
  EXPECT_EQ(Problems("{taskdir}:{postgres.password}", access).size(), 2u);
  auto db = FullScope(PlaceholderContext::kDatabaseName);
  EXPECT_TRUE(Problems("{env}-db", db).empty());
  EXPECT_EQ(Problems("{hostname}", db).size(), 1u);
}

}  // namespace
}  // namespace adhoc::spec
