// μblog's rendered Terraform against the real tools: `terraform validate` on every stack, and
// apply + destroy of the base and one environment against moto, with the provider pointed at
// it from an override file (the rendered files stay untouched).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/exec.h"
#include "common/test_support.h"
#include "render/aws.h"
#include "render/aws_names.h"
#include "render/aws_slots.h"
#include "render/test_support.h"
#include "render/tool_test_support.h"

namespace adhoc::render {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Renders μblog for AWS into `dir`; returns demo's slot.
int RenderUblog(const fs::path& dir) {
  spec::Workspace ws = testing::LoadUblog();
  auto slots = AssignSlots(ws.envs);
  EXPECT_TRUE(slots.ok());
  AwsInput input;
  input.project = &ws.project;
  input.templates = testing::ReadTemplates(ws.project, testing::UblogDir());
  for (const spec::EnvFile& e : ws.envs)
    input.environments.push_back({&e, slots->slots.at(e.name)});
  auto out = RenderAws(input);
  EXPECT_TRUE(out.ok());
  for (const RenderedFile& f : out->files) {
    fs::create_directories((dir / f.path).parent_path());
    std::ofstream(dir / f.path, std::ios::binary) << f.text;
  }
  return slots->slots.at("demo");
}

class Terraform {
 public:
  Terraform(fs::path plugins, std::map<std::string, std::string> env)
      : plugins_(std::move(plugins)), env_(std::move(env)) {
    env_["TF_IN_AUTOMATION"] = "1";
    env_["TF_INPUT"] = "0";
    env_["CHECKPOINT_DISABLE"] = "1";
    env_["TF_CLI_CONFIG_FILE"] = "/dev/null";
  }
  // terraform ARGS in `dir`; the test fails on a non-zero exit. Returns the output.
  std::string Run(const fs::path& dir, std::vector<std::string> args,
                  std::chrono::minutes timeout = std::chrono::minutes(8)) {
    args.insert(args.begin(), "terraform");
    args.push_back("-no-color");
    auto r = Exec(args, {.cwd = dir, .env = env_, .timeout = timeout});
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, 0) << "terraform " << args[1] << " in " << dir << ":\n"
                               << LastLines(r->output, 40);
    return r->output;
  }
  void Init(const fs::path& dir, bool backend) {
    std::vector<std::string> args = {"init", "-input=false", "-plugin-dir=" + plugins_.string()};
    if (!backend) args.push_back("-backend=false");
    Run(dir, args);
  }
  json Show(const fs::path& dir) {
    auto r = Exec({"terraform", "show", "-json"}, {.cwd = dir, .env = env_});
    EXPECT_TRUE(r.ok() && r->exit_code == 0);
    return r.ok() ? json::parse(r->output, nullptr, false) : json();
  }

 private:
  fs::path plugins_;
  std::map<std::string, std::string> env_;
};

std::map<std::string, std::string> ThisEnv() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

#define SKIP_WITHOUT_TERRAFORM(plugins)                                                  \
  if (!testing::OnPath("terraform")) GTEST_SKIP() << "terraform is not installed";       \
  if (plugins.empty())                                                                   \
  GTEST_SKIP() << "no Terraform plugin folder with registry.terraform.io/hashicorp/aws " \
                  "(set ADHOC_TF_PLUGIN_DIR)"

TEST(TerraformTest, EveryRenderedStackOfUblogValidates) {
  fs::path plugins = testing::TerraformPluginDir();
  SKIP_WITHOUT_TERRAFORM(plugins);
  testutil::TempDir dir("adhoc-tf");
  RenderUblog(dir.path());
  Terraform tf(plugins, ThisEnv());
  for (const char* stack : {"bootstrap", "base", "environment"}) {
    tf.Init(dir.path() / stack, false);
    std::string out = tf.Run(dir.path() / stack, {"validate", "-json"});
    json result = json::parse(out, nullptr, false);
    EXPECT_EQ(result.value("valid", false), true) << stack << ": " << out;
    EXPECT_EQ(result.value("error_count", -1), 0) << stack;
  }
}

// The resources of a `terraform show -json`, by type.
std::multimap<std::string, json> ByType(const json& show) {
  std::multimap<std::string, json> out;
  for (const json& r : show["values"]["root_module"]["resources"]) out.emplace(r["type"], r);
  return out;
}

bool PortInRange(const json& rule, int port) {
  if (rule["protocol"] == "-1" || rule["protocol"] == "all") return true;
  return rule["from_port"].get<int>() <= port && port <= rule["to_port"].get<int>();
}

TEST(TerraformMotoTest, BaseAndOneEnvironmentApplyAndDestroy) {
  fs::path plugins = testing::TerraformPluginDir();
  SKIP_WITHOUT_TERRAFORM(plugins);
  if (!testing::OnPath("moto_server")) GTEST_SKIP() << "moto_server (moto) is not installed";
  if (!testing::OnPath("aws")) GTEST_SKIP() << "the aws client is not installed";
  testing::MotoServer moto;
  ASSERT_TRUE(moto.ready()) << "moto_server did not start";
  testutil::TempDir dir("adhoc-tf-moto");
  int slot = RenderUblog(dir.path());
  std::map<std::string, std::string> env = moto.Env();

  // What the base takes as input: a wildcard certificate and the zone of the domain.
  auto aws = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"aws"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = Exec(argv, {.env = env});
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->output : "");
    std::string out = r.ok() ? r->output : "";
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  };
  std::string cert = aws({"acm", "request-certificate", "--domain-name", "*.dev.example.com",
                          "--query", "CertificateArn", "--output", "text"});
  std::string zone =
      aws({"route53", "create-hosted-zone", "--name", "dev.example.com", "--caller-reference",
           "adhoc-test", "--query", "HostedZone.Id", "--output", "text"});
  zone = zone.substr(zone.rfind('/') + 1);

  // The override: every endpoint at moto, state on local disk.
  json endpoints = json::object();
  for (const char* s : {"acm", "dynamodb", "ec2", "ecr", "ecs", "elbv2", "iam", "logs", "rds",
                        "route53", "s3", "secretsmanager", "servicediscovery", "sts"})
    endpoints[s] = moto.url();
  json provider = {{"aws",
                    {{"access_key", "test"},
                     {"secret_key", "test"},
                     {"skip_credentials_validation", true},
                     {"skip_metadata_api_check", true},
                     {"s3_use_path_style", true},
                     {"endpoints", {endpoints}}}}};
  fs::path base = dir.path() / "base", environment = dir.path() / "environment";
  std::ofstream(base / "adhoc_test_override.tf.json")
      << json({{"provider", provider}, {"terraform", {{"backend", {{"local", json::object()}}}}}});
  std::ofstream(environment / "adhoc_test_override.tf.json")
      << json({{"provider", provider},
               {"terraform", {{"backend", {{"local", json::object()}}}}},
               {"data",
                {{"terraform_remote_state",
                  {{"base",
                    {{"backend", "local"},
                     {"config", {{"path", (base / "terraform.tfstate").string()}}}}}}}}}});

  Terraform tf(plugins, env);
  std::vector<std::string> base_vars = {"-var", "certificate_arn=" + cert, "-var",
                                        "hosted_zone_id=" + zone};
  tf.Init(base, true);
  auto apply_base = base_vars;
  apply_base.insert(apply_base.begin(), {"apply", "-auto-approve", "-input=false"});
  tf.Run(base, apply_base);
  json base_show = tf.Show(base);
  if (HasFailure()) return;

  tf.Init(environment, true);
  tf.Run(environment, {"workspace", "new", "demo"});
  tf.Run(environment,
         {"apply", "-auto-approve", "-input=false", "-var-file=envs/demo.tfvars.json"});
  json env_show = tf.Show(environment);

  // Base: only the ALB is open to the world, on 80 and 443; never 22, 5432 or 6379.
  auto base_resources = ByType(base_show);
  std::string alb_sg;
  for (auto [it, end] = base_resources.equal_range("aws_security_group"); it != end; ++it)
    if (it->second["name"] == "alb") alb_sg = it->second["values"]["id"];
  ASSERT_FALSE(alb_sg.empty());
  int world_rules = 0;
  for (auto [it, end] = base_resources.equal_range("aws_security_group_rule"); it != end; ++it) {
    const json& v = it->second["values"];
    if (v["type"] != "ingress") continue;
    bool world = false;
    for (const json& c : v["cidr_blocks"]) world |= c == "0.0.0.0/0";
    for (const json& c : v["ipv6_cidr_blocks"]) world |= c == "::/0";
    if (!world) continue;
    ++world_rules;
    EXPECT_EQ(v["security_group_id"], alb_sg) << it->second["address"];
    for (int port : {22, 5432, 6379})
      EXPECT_FALSE(PortInRange(v, port)) << it->second["address"] << " opens " << port;
  }
  EXPECT_EQ(world_rules, 2);
  std::string listener;
  for (auto [it, end] = base_resources.equal_range("aws_lb_listener"); it != end; ++it)
    if (it->second["name"] == "https") listener = it->second["values"]["arn"];

  // Environment: rules in the slot's block, unique, backend paths before the catch-all.
  auto env_resources = ByType(env_show);
  std::map<int, json> by_priority;
  for (auto [it, end] = env_resources.equal_range("aws_lb_listener_rule"); it != end; ++it) {
    const json& v = it->second["values"];
    int priority = v["priority"];
    EXPECT_TRUE(by_priority.emplace(priority, v).second) << "priority " << priority << " twice";
    EXPECT_GT(priority, slot * kPrioritiesPerSlot);
    EXPECT_LT(priority, (slot + 1) * kPrioritiesPerSlot);
    EXPECT_EQ(v["listener_arn"], listener);
    size_t values = 0;
    for (const json& c : v["condition"]) {
      for (const json& h : c["host_header"]) {
        values += h["values"].size();
        EXPECT_EQ(h["values"][0], "demo.dev.example.com");
      }
      for (const json& p : c["path_pattern"]) values += p["values"].size();
    }
    EXPECT_LE(values, kAlbConditionValues);
  }
  ASSERT_EQ(by_priority.size(), 2u);
  std::vector<std::string> forwarded;
  for (const auto& [priority, v] : by_priority)
    forwarded.push_back(v["action"][0]["target_group_arn"]);
  std::map<std::string, std::string> tg_names;  // arn -> name
  for (auto [it, end] = env_resources.equal_range("aws_lb_target_group"); it != end; ++it) {
    const json& v = it->second["values"];
    EXPECT_LE(v["name"].get<std::string>().size(), kMaxTargetGroupName);
    tg_names[v["arn"]] = v["name"];
  }
  EXPECT_EQ(tg_names[forwarded[0]], "demo-gunicorn");  // the lower number: the backend
  EXPECT_EQ(tg_names[forwarded[1]], "demo-web-ui");

  // References resolved: images from the registry at the env file's tags, secrets by ARN, no
  // password in plain text.
  int definitions = 0;
  for (auto [it, end] = env_resources.equal_range("aws_ecs_task_definition"); it != end; ++it) {
    ++definitions;
    json containers = json::parse(it->second["values"]["container_definitions"].get<std::string>());
    for (const json& c : containers) {
      std::string image = c["image"];
      if (it->second["name"] == "gunicorn") {
        EXPECT_EQ(image, "123456789012.dkr.ecr.us-east-1.amazonaws.com/ublog/backend:v1.0.0");
      }
      for (const json& e : c.value("environment", json::array())) {
        EXPECT_NE(e["name"], "POSTGRES_PASSWORD");
        EXPECT_NE(e["name"], "REDIS_URL");
        EXPECT_EQ(e["value"].get<std::string>().find("${"), std::string::npos) << e;
      }
      for (const json& s : c.value("secrets", json::array()))
        EXPECT_TRUE(s["valueFrom"].get<std::string>().starts_with("arn:aws:secretsmanager:")) << s;
    }
  }
  EXPECT_EQ(definitions, 10);  // 4 services, 3 one-off tasks, Redis, db-create, db-drop
  int services = 0;
  for (auto [it, end] = env_resources.equal_range("aws_ecs_service"); it != end; ++it) {
    ++services;
    EXPECT_TRUE(
        it->second["values"]["task_definition"].get<std::string>().starts_with("arn:aws:ecs:"));
  }
  EXPECT_EQ(services, 5);

  tf.Run(environment,
         {"destroy", "-auto-approve", "-input=false", "-var-file=envs/demo.tfvars.json"});
  auto destroy_base = base_vars;
  destroy_base.insert(destroy_base.begin(), {"destroy", "-auto-approve", "-input=false"});
  tf.Run(base, destroy_base);
  EXPECT_FALSE(tf.Show(base)["values"].contains("root_module"));
}

}  // namespace
}  // namespace adhoc::render
