#include "spec/env_file_writer.h"

#include <gtest/gtest.h>

#include "spec/loader.h"

namespace adhoc::spec {
namespace {

TEST(EnvFileWriterTest, RoundTrip) {
  EnvFile e;
  e.name = "feature-abc";
  e.owner = "brian \"b\" o'neil";
  e.ttl = std::chrono::hours(74);
  e.sleep_after = std::chrono::minutes(30);
  e.data = DataSource{DataSource::Kind::kFile, "dumps/a b.sql"};
  e.versions = {{"frontend", "v2.0.0", {}}, {"backend", "@worktree", {}}};
  e.env = {{"ZED", "tab\there\\ and \"quotes\"\nnewline {env}", {}}, {"ALPHA", "", {}}};
  e.access = Access{};
  e.access->basic_auth =
      std::vector<std::string>{"demo:{random.demo_password}", "qa:{env}-{random.qa}"};
  e.access->token = "{random.access_token}";
  e.access->allow = std::vector<std::string>{"10.0.0.0/8", "::1"};
  e.access->public_paths = std::vector<std::string>{"/api/health-check/", "/static/*"};
  e.aws = EnvAwsTarget{12, {}};

  std::string text = RenderEnvFile(e);
  auto loaded = ParseEnvFile(text, "feature-abc", "envs/feature-abc.toml");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics) << text;
  const EnvFile& back = loaded.value;
  EXPECT_EQ(back.owner, e.owner);
  EXPECT_EQ(back.ttl, e.ttl);
  EXPECT_EQ(back.sleep_after, e.sleep_after);
  EXPECT_EQ(back.data.kind, e.data.kind);
  EXPECT_EQ(back.data.argument, e.data.argument);
  ASSERT_EQ(back.versions.size(), 2u);
  EXPECT_EQ(back.versions[0].image, "frontend");  // order kept
  EXPECT_EQ(back.versions[1].ref, "@worktree");
  ASSERT_EQ(back.env.size(), 2u);
  EXPECT_EQ(back.env[0].name, "ZED");
  EXPECT_EQ(back.env[0].value, e.env[0].value);
  EXPECT_EQ(back.env[1].value, "");
  ASSERT_TRUE(back.access.has_value());
  EXPECT_EQ(back.access->basic_auth, e.access->basic_auth);
  EXPECT_EQ(back.access->token, e.access->token);
  EXPECT_EQ(back.access->allow, e.access->allow);
  EXPECT_EQ(back.access->public_paths, e.access->public_paths);
  ASSERT_TRUE(back.aws.has_value());
  EXPECT_EQ(back.aws->slot, 12);
}

TEST(EnvFileWriterTest, NeverRoundTrips) {
  EnvFile e;
  e.name = "qa";
  e.ttl = std::chrono::seconds(0);
  e.sleep_after = std::chrono::seconds(0);
  std::string text = RenderEnvFile(e);
  EXPECT_NE(text.find("ttl = \"never\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sleep_after = \"never\"\n"), std::string::npos) << text;
  auto loaded = ParseEnvFile(text, "qa", "envs/qa.toml");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics) << text;
  EXPECT_EQ(loaded.value.ttl, e.ttl);
  EXPECT_EQ(loaded.value.sleep_after, e.sleep_after);
}

// Absent, one value and "off" stay apart: an absent key takes adhoc.toml's, an empty one turns
// that part off.
TEST(EnvFileWriterTest, AccessKeysKeepAbsentAndEmptyApart) {
  EnvFile e;
  e.name = "demo";
  e.access = Access{};
  e.access->basic_auth = std::vector<std::string>{"demo:{random.pw}"};
  e.access->token = "";
  e.access->public_paths = std::vector<std::string>{};
  std::string text = RenderEnvFile(e);
  EXPECT_NE(text.find("basic_auth = \"demo:{random.pw}\"\n"), std::string::npos) << text;
  auto loaded = ParseEnvFile(text, "demo", "envs/demo.toml");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics) << text;
  const Access& back = *loaded.value.access;
  EXPECT_EQ(back.basic_auth, e.access->basic_auth);
  EXPECT_EQ(back.token, std::optional<std::string>(""));
  EXPECT_FALSE(back.allow.has_value());
  ASSERT_TRUE(back.public_paths.has_value());
  EXPECT_TRUE(back.public_paths->empty());
}

TEST(EnvFileWriterTest, MinimalFileIsSmall) {
  EnvFile e;
  e.name = "demo";
  e.owner = "ci";
  e.versions = {{"backend", "v1", {}}};
  std::string text = RenderEnvFile(e);
  EXPECT_NE(text.find("owner = \"ci\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[versions]\nbackend = \"v1\"\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("ttl"), std::string::npos);
  EXPECT_EQ(text.find("[env]"), std::string::npos);
  auto loaded = ParseEnvFile(text, "demo", "envs/demo.toml");
  EXPECT_TRUE(loaded.diagnostics.empty()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_FALSE(loaded.value.ttl.has_value());
}

TEST(EnvFileWriterTest, TomlQuoting) {
  EXPECT_EQ(TomlString("a\"b\\c\x01"), "\"a\\\"b\\\\c\\u0001\"");
  EXPECT_EQ(TomlKey("backend"), "backend");
  EXPECT_EQ(TomlKey("a.b"), "\"a.b\"");
}

TEST(SetEnvFileVersions, ReplacesAddsAndKeepsEverythingElse) {
  const std::string text =
      "# brian's branch\nowner = \"brian\"\n\n[versions]\nbackend  = \"v1.0.0\"   # pinned\n"
      "\n[env]\nDEBUG = \"1\"\n";
  std::string out = SetEnvFileVersions(text, {{"backend", "v1.1.0"}, {"frontend", "v2.1.0"}});
  EXPECT_NE(out.find("# brian's branch"), std::string::npos) << out;
  EXPECT_NE(out.find("backend = \"v1.1.0\""), std::string::npos) << out;
  EXPECT_EQ(out.find("v1.0.0"), std::string::npos) << out;
  EXPECT_LT(out.find("frontend = \"v2.1.0\""), out.find("[env]")) << out;
  auto parsed = ParseEnvFile(out, "brian-test", "envs/brian-test.toml");
  ASSERT_TRUE(parsed.ok()) << FormatDiagnostics(parsed.diagnostics);
  EXPECT_EQ(*parsed.value.FindVersion("backend"), "v1.1.0");
  EXPECT_EQ(*parsed.value.FindVersion("frontend"), "v2.1.0");
  EXPECT_EQ(parsed.value.env.size(), 1u);
}

TEST(SetEnvFileVersions, AFileWithoutVersionsGetsThem) {
  std::string out = SetEnvFileVersions("owner = \"x\"\n", {{"backend", "v2"}});
  auto parsed = ParseEnvFile(out, "demo", "envs/demo.toml");
  ASSERT_TRUE(parsed.ok()) << out;
  EXPECT_EQ(*parsed.value.FindVersion("backend"), "v2");
  EXPECT_EQ(parsed.value.owner, "x");
}

}  // namespace
}  // namespace adhoc::spec
