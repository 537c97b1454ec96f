#include "render/aws.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "render/aws_names.h"
#include "render/aws_slots.h"
#include "render/test_support.h"

namespace adhoc::render {
namespace {

using nlohmann::json;
using testing::LoadUblog;
using testing::ReadTemplates;
using testing::UblogDir;

struct Ublog {
  spec::Workspace ws = LoadUblog();
  AwsInput input;
  Ublog() {
    auto slots = AssignSlots(ws.envs);
    EXPECT_TRUE(slots.ok());
    input.project = &ws.project;
    input.templates = ReadTemplates(ws.project, UblogDir());
    for (const spec::EnvFile& e : ws.envs)
      input.environments.push_back({&e, slots->slots.at(e.name)});
  }
};

const RenderedFile* Find(const RenderedFiles& files, const std::string& path) {
  for (const RenderedFile& f : files)
    if (f.path == path) return &f;
  return nullptr;
}

json Parse(const RenderedFiles& files, const std::string& path) {
  const RenderedFile* f = Find(files, path);
  EXPECT_NE(f, nullptr) << path;
  return f ? json::parse(f->text) : json();
}

TEST(RenderAwsTest, UblogMatchesGoldenFiles) {
  Ublog u;
  auto out = RenderAws(u.input);
  ASSERT_TRUE(out.ok()) << out.error().message();
  testing::ExpectGolden(out->files, "ublog-aws");
}

TEST(RenderAwsTest, SameInputSameBytes) {
  Ublog a, b;
  auto first = RenderAws(a.input);
  auto second = RenderAws(b.input);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->files.size(), second->files.size());
  for (size_t i = 0; i < first->files.size(); ++i) {
    EXPECT_EQ(first->files[i].path, second->files[i].path);
    EXPECT_EQ(first->files[i].text, second->files[i].text);
  }
}

TEST(RenderAwsTest, BaseOpensNothingButTheAlbToTheWorld) {
  Ublog u;
  auto out = RenderAws(u.input);
  ASSERT_TRUE(out.ok());
  json base = Parse(out->files, "base/main.tf.json");
  int world_rules = 0;
  for (const auto& [name, rule] : base["resource"]["aws_security_group_rule"].items()) {
    if (rule["type"] != "ingress" || !rule.contains("cidr_blocks")) continue;
    ++world_rules;
    EXPECT_EQ(rule["security_group_id"], "${aws_security_group.alb.id}") << name;
    EXPECT_TRUE(rule["from_port"] == 80 || rule["from_port"] == 443) << name;
    EXPECT_EQ(rule["from_port"], rule["to_port"]) << name;
  }
  EXPECT_EQ(world_rules, 2);
  // RDS: password kept by Secrets Manager, never written in the files.
  const json& db = base["resource"]["aws_db_instance"]["main"];
  EXPECT_EQ(db["manage_master_user_password"], true);
  EXPECT_FALSE(db.contains("password"));
  EXPECT_EQ(db["publicly_accessible"], false);
  EXPECT_EQ(base["resource"]["aws_lb_listener"]["http"]["default_action"][0]["type"], "redirect");
  EXPECT_TRUE(base["resource"]["aws_ecr_repository"].contains("backend"));
  EXPECT_TRUE(base["resource"]["aws_ecr_repository"].contains("frontend"));
  EXPECT_EQ(base["terraform"]["backend"]["s3"]["dynamodb_table"], "ublog-terraform-lock");
}

TEST(RenderAwsTest, EnvironmentRulesSecretsAndLimits) {
  Ublog u;
  auto out = RenderAws(u.input);
  ASSERT_TRUE(out.ok());
  json env = Parse(out->files, "environment/main.tf.json");
  const json& rules = env["resource"]["aws_lb_listener_rule"];
  // Backend paths first (priority slot*100+1), then the frontend's catch-all.
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules["gunicorn_1"]["priority"], "${var.slot * 100 + 1}");
  EXPECT_EQ(rules["web-ui_2"]["priority"], "${var.slot * 100 + 2}");
  const json& paths = rules["gunicorn_1"]["condition"][1]["path_pattern"]["values"];
  EXPECT_EQ(paths, json({"/admin", "/admin/*", "/api", "/api/*"}));
  EXPECT_EQ(rules["web-ui_2"]["condition"].size(), 1u);  // host only: every path
  for (const auto& [name, rule] : rules.items()) {
    size_t values = 0;
    for (const json& c : rule["condition"])
      for (const auto& [kind, body] : c.items()) values += body["values"].size();
    EXPECT_LE(values, kAlbConditionValues) << name;
  }
  // Passwords reach containers as secrets only.
  const std::string gunicorn =
      env["resource"]["aws_ecs_task_definition"]["gunicorn"]["container_definitions"]
          .get<std::string>();
  EXPECT_NE(gunicorn.find("valueFrom"), std::string::npos);
  const json& service = env["resource"]["aws_ecs_service"]["gunicorn"];
  EXPECT_EQ(service["lifecycle"]["ignore_changes"], json({"task_definition", "desired_count"}));
  EXPECT_EQ(env["resource"]["aws_ecs_cluster_capacity_providers"]["main"]
               ["default_capacity_provider_strategy"][1]["weight"],
            0);
  for (const char* task : {"migrate", "collectstatic", "db-create", "db-drop", "redis"})
    EXPECT_TRUE(env["resource"]["aws_ecs_task_definition"].contains(task)) << task;
  EXPECT_EQ(env["resource"]["aws_cloudwatch_log_group"]["gunicorn"]["name"],
            "/ecs/${var.env}/gunicorn");
  for (const char* o : {"url", "before_deploy_command", "ecs_exec_command",
                        "create_database_command", "drop_database_command"})
    EXPECT_TRUE(env["output"].contains(o)) << o;

  json demo = Parse(out->files, "environment/envs/demo.tfvars.json");
  EXPECT_EQ(demo["env"], "demo");
  EXPECT_EQ(demo["image_tags"]["backend"], "v1.0.0");
  for (const auto& [service, name] : demo["target_group_names"].items())
    EXPECT_LE(name.get<std::string>().size(), kMaxTargetGroupName);
  EXPECT_EQ(out->budget.rules_per_environment, 2);
  EXPECT_EQ(out->budget.environments_that_fit, 50);
}

TEST(RenderAwsTest, LongPathListsBecomeSeveralRules) {
  auto loaded = spec::ParseProject(R"(name = "app"
[images.backend]
path = "backend"
[services.api]
image = "backend"
command = "serve {bind}"
port = 8000
routes = ["/a/*", "/bb/*", "/ccc/*", "/exact", "/dddd/*"]
[services.web]
image = "backend"
command = "serve {bind}"
port = 3000
routes = ["/*"]
[targets.aws]
domain = "example.com"
registry = "r.example.com"
)");
  ASSERT_TRUE(loaded.ok()) << spec::FormatDiagnostics(loaded.diagnostics);
  auto rules = OrderedRules(loaded.value, kAlbConditionValues - 1);
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].paths, std::vector<std::string>({"/exact", "/dddd", "/dddd/*"}));
  EXPECT_EQ(rules[1].paths, std::vector<std::string>({"/ccc", "/ccc/*", "/bb", "/bb/*"}));
  EXPECT_EQ(rules[2].paths, std::vector<std::string>({"/a", "/a/*"}));
  EXPECT_TRUE(rules[3].catch_all);
  EXPECT_EQ(rules[3].service, "web");
  AwsInput input;
  input.project = &loaded.value;
  auto out = RenderAws(input);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(out->budget.rules_per_environment, 4);
  EXPECT_EQ(out->budget.environments_that_fit, 25);
}

TEST(RenderAwsTest, BadInputsAreNamed) {
  Ublog u;
  spec::Project no_target = u.ws.project;
  no_target.targets.aws.reset();
  AwsInput input = u.input;
  input.project = &no_target;
  auto out = RenderAws(input);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(out.error().message().find("no [targets.aws]"), std::string::npos);

  spec::EnvFile worktree = u.ws.envs[0];
  worktree.versions[0].ref = "@worktree";
  input = u.input;
  input.environments = {{&worktree, 1}};
  out = RenderAws(input);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("versions.backend: \"@worktree\" cannot run on AWS"),
            std::string::npos)
      << out.error().message();

  input = u.input;
  input.templates.clear();
  out = RenderAws(input);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("nginx.conf.in"), std::string::npos);
}

TEST(AwsNamesTest, TargetGroupNamesFitAndDiffer) {
  EXPECT_EQ(AwsTargetGroupName("demo", "gunicorn"), "demo-gunicorn");
  std::string a = AwsTargetGroupName("a-very-long-environment-name-for-qa-one", "gunicorn");
  std::string b = AwsTargetGroupName("a-very-long-environment-name-for-qa-two", "gunicorn");
  EXPECT_LE(a.size(), kMaxTargetGroupName);
  EXPECT_NE(a, b);
  std::string c = AwsTargetGroupName("x", "a-service-name-of-thirty-chars");
  EXPECT_LE(c.size(), kMaxTargetGroupName);
  EXPECT_NE(c.front(), '-');
  EXPECT_NE(c.back(), '-');
}

}  // namespace
}  // namespace adhoc::render
