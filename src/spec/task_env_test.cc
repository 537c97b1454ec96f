#include "spec/task_env.h"

#include <gtest/gtest.h>

namespace adhoc::spec {
namespace {

EnvList Vars(std::initializer_list<std::pair<std::string, std::string>> items) {
  EnvList out;
  int line = 1;
  for (const auto& [name, value] : items) out.push_back({name, value, {"adhoc.toml", line++, 1}});
  return out;
}

std::optional<std::string> Lookup(const Placeholder& p) {
  if (p.Key() == "env") return std::string("demo");
  if (p.Key() == "postgres.host") return std::string("127.0.0.1");
  return std::nullopt;
}

TEST(TaskEnvTest, LaterLayersWinAndValuesAreRendered) {
  EnvList project = Vars({{"A", "project"},
                          {"B", "project"},
                          {"C", "project"},
                          {"D", "project"},
                          {"DB", "{postgres.host}"},
                          {"PATH", "/opt/bin"}});
  EnvList own = Vars({{"B", "own"}, {"C", "own"}, {"D", "own-{env}"}});
  EnvList file = Vars({{"C", "file"}, {"D", "file"}});
  TaskEnvLayers layers;
  layers.home = "/home/task";
  layers.project_env = &project;
  layers.own_env = &own;
  layers.env_file_env = &file;
  layers.secrets = {{"D", "secret {env} stays raw"}};
  auto env = BuildTaskEnv(layers, Lookup);
  ASSERT_TRUE(env.ok()) << env.error().message();
  EXPECT_EQ(env->at("A"), "project");
  EXPECT_EQ(env->at("B"), "own");
  EXPECT_EQ(env->at("C"), "file");
  EXPECT_EQ(env->at("D"), "secret {env} stays raw");
  EXPECT_EQ(env->at("DB"), "127.0.0.1");
  EXPECT_EQ(env->at("PATH"), "/opt/bin");  // the project may override the base
  EXPECT_EQ(env->at("HOME"), "/home/task");
  EXPECT_EQ(env->at("LANG"), "C.UTF-8");
  EXPECT_EQ(env->size(), 8u);
}

TEST(TaskEnvTest, CleanBaseOnly) {
  setenv("ADHOC_SPEC_TEST_LEAK", "1", 1);
  TaskEnvLayers layers;
  layers.home = "/t";
  auto env = BuildTaskEnv(layers, Lookup);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(*env, (std::map<std::string, std::string>{
                      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                      {"HOME", "/t"},
                      {"LANG", "C.UTF-8"}}));
}

TEST(TaskEnvTest, OnlyTheWinnerIsRendered) {
  EnvList project = Vars({{"X", "{unknown.thing}"}});
  EnvList own = Vars({{"X", "fine"}});
  TaskEnvLayers layers;
  layers.project_env = &project;
  layers.own_env = &own;
  auto env = BuildTaskEnv(layers, Lookup);
  ASSERT_TRUE(env.ok()) << env.error().message();
  EXPECT_EQ(env->at("X"), "fine");
}

TEST(TaskEnvTest, ErrorNamesVariableAndPlace) {
  EnvList project = Vars({{"OK", "1"}, {"REDIS_URL", "{redis.url}"}});
  TaskEnvLayers layers;
  layers.project_env = &project;
  auto env = BuildTaskEnv(layers, Lookup);
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.error().message().find("[env] REDIS_URL (adhoc.toml:2)"), std::string::npos)
      << env.error().message();
  EXPECT_NE(env.error().message().find("'{redis.url}'"), std::string::npos);
}

}  // namespace
}  // namespace adhoc::spec
