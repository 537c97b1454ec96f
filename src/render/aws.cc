#include "render/aws.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "render/aws_names.h"
#include "render/aws_slots.h"
#include "spec/duration.h"
#include "spec/placeholders.h"

namespace adhoc::render {

namespace {

using json = nlohmann::json;

constexpr char kProviderVersion[] = ">= 5.40";
constexpr char kRedisImage[] = "public.ecr.aws/docker/library/redis:7-alpine";
constexpr int kRedisPort = 6379;
constexpr char kExecutionPolicy[] =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

// The smallest Fargate task size holding `cpu` units and `memory` MiB.
std::optional<std::pair<int, int>> FargateSize(int cpu, int memory) {
  struct Row {
    int cpu, min, max, step;
  };
  static const Row kRows[] = {{256, 512, 2048, 512},       {512, 1024, 4096, 1024},
                              {1024, 2048, 8192, 1024},    {2048, 4096, 16384, 1024},
                              {4096, 8192, 30720, 1024},   {8192, 16384, 61440, 4096},
                              {16384, 32768, 122880, 8192}};
  for (const Row& r : kRows) {
    if (r.cpu < cpu) continue;
    for (int m = r.min; m <= r.max; m += r.step) {
      if (r.cpu == 256 && m == 1536) continue;  // 256 units: 512, 1024 or 2048 only
      if (m >= memory) return std::make_pair(r.cpu, m);
    }
  }
  return std::nullopt;
}

std::string Q(const std::string& s) { return "\"" + s + "\""; }

// HCL for a list of strings.
std::string HclList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + HclString(items[i]);
  return out + "]";
}

// The Terraform template text of one placeholder on AWS, for a process with `port`.
std::optional<std::string> AwsValue(const std::string& key, std::optional<int> port) {
  auto gen = [](const std::string& name) {
    return Interp("aws_secretsmanager_secret_version.generated[\"" + name + "\"].secret_string");
  };
  if (key == "env") return Interp("var.env");
  if (key == "hostname") return Interp("local.hostname");
  if (key == "url") return "https://" + Interp("local.hostname");
  if (key == "host") return std::string(kCloudHost);
  if (key == "port" && port) return std::to_string(*port);
  if (key == "bind" && port) return std::string(kCloudHost) + ":" + std::to_string(*port);
  if (key == "workdir") return std::string(kCloudWorkdir);
  if (key == "taskdir") return std::string(kCloudTaskdir);
  if (key == "static") return std::string(kCloudStatic);
  size_t dot = key.find('.');
  if (dot == std::string::npos) return std::nullopt;
  std::string name = key.substr(0, dot), part = key.substr(dot + 1);
  if (name == "version") return Interp("var.versions[\"" + part + "\"]");
  if (name == "postgres") {
    if (part == "host") return Interp("local.base.rds_address");
    if (part == "port") return Interp("tostring(local.base.rds_port)");
    if (part == "database") return Interp("local.database");
    if (part == "user") return Interp("local.database_user");
    if (part == "password") return gen("postgres-password");
    if (part == "url")
      return "postgres://" + Interp("local.database_user") + ":" + gen("postgres-password") + "@" +
             Interp("local.base.rds_address") + ":" + Interp("local.base.rds_port") + "/" +
             Interp("local.database");
  }
  if (name == "redis") {
    if (part == "host") return Interp("local.redis_host");
    if (part == "port") return std::to_string(kRedisPort);
    if (part == "password") return gen("redis-password");
    if (part == "url")
      return "redis://:" + gen("redis-password") + "@" + Interp("local.redis_host") + ":" +
             std::to_string(kRedisPort) + "/0";
  }
  if (name == "random") return gen("random-" + part);
  if (name == "secret")
    return Interp("data.aws_secretsmanager_secret_version.secret[\"" + part + "\"].secret_string");
  return std::nullopt;
}

// `text` with its placeholders as Terraform interpolations and the rest literal.
Result<std::string> ToTerraform(const std::string& text, std::optional<int> port) {
  std::vector<std::string> values;
  auto rendered =
      spec::RenderPlaceholders(text, [&](const spec::Placeholder& p) -> std::optional<std::string> {
        std::optional<std::string> v = AwsValue(p.Key(), port);
        if (!v) return std::nullopt;
        values.push_back(*v);
        return "\x02" + std::to_string(values.size() - 1) + "\x03";
      });
  if (!rendered.ok()) return rendered.error();
  std::string literal = TfLiteral(*rendered);
  std::string out;
  for (size_t i = 0; i < literal.size(); ++i) {
    if (literal[i] != '\x02') {
      out += literal[i];
      continue;
    }
    size_t end = literal.find('\x03', i);
    out += values[std::stoul(literal.substr(i + 1, end - i - 1))];
    i = end;
  }
  return out;
}

// The names of {random.NAME} and {secret.NAME} in `text`.
void CollectNamed(const std::string& text, std::set<std::string>* randoms,
                  std::set<std::string>* secrets) {
  for (const spec::Placeholder& p : spec::FindPlaceholders(text)) {
    if (p.name == "random") randoms->insert(p.part);
    if (p.name == "secret") secrets->insert(p.part);
  }
}

// One process of an environment as an ECS container: a service, a one-off task, or Redis.
struct Process {
  std::string name;
  std::string image;  // adhoc image name; empty for Redis and the database tasks
  std::string command;
  std::optional<int> port;
  int cpu = 256, memory = 512;
  std::string stop_signal = "TERM";
  int stop_timeout = 10;
  const spec::EnvList* own_env = nullptr;
  std::vector<std::string> templates;
  std::optional<spec::HealthCheck> health;
};

class AwsWriter {
 public:
  AwsWriter(const AwsInput& input, const spec::AwsTarget& aws)
      : in_(input), p_(*input.project), aws_(aws) {
    state_bucket_ = aws.state_bucket.empty() ? p_.name + "-terraform-state" : aws.state_bucket;
    lock_table_ = aws.lock_table.empty() ? p_.name + "-terraform-lock" : aws.lock_table;
  }

  Result<AwsOutput> Write() {
    AwsOutput out;
    for (const AwsEnvironment& e : in_.environments) {
      for (const spec::EnvVar& v : e.env_file->env) CollectNamed(v.value, &randoms_, &secrets_);
    }
    for (const spec::EnvVar& v : p_.env) CollectNamed(v.value, &randoms_, &secrets_);
    for (const spec::Service& s : p_.services) {
      CollectNamed(s.command, &randoms_, &secrets_);
      for (const spec::EnvVar& v : s.env) CollectNamed(v.value, &randoms_, &secrets_);
    }
    for (const spec::Task& t : p_.tasks) {
      CollectNamed(t.command, &randoms_, &secrets_);
      for (const spec::EnvVar& v : t.env) CollectNamed(v.value, &randoms_, &secrets_);
    }
    rules_ = OrderedRules(p_, kAlbConditionValues - 1);
    if (static_cast<int>(rules_.size()) >= kPrioritiesPerSlot)
      return BadInput(p_.where.file + ": the services' routes need " +
                      std::to_string(rules_.size()) + " listener rules, more than the " +
                      std::to_string(kPrioritiesPerSlot - 1) + " an environment's slot holds");

    out.files.push_back({"bootstrap/main.tf.json", JsonText(Bootstrap())});
    out.files.push_back({"base/main.tf.json", JsonText(Base())});
    ADHOC_ASSIGN_OR_RETURN(json environment, Environment());
    out.files.push_back({"environment/main.tf.json", JsonText(environment)});
    std::vector<AwsEnvironment> envs = in_.environments;
    std::sort(envs.begin(), envs.end(), [](const AwsEnvironment& a, const AwsEnvironment& b) {
      return a.env_file->name < b.env_file->name;
    });
    for (const AwsEnvironment& e : envs) {
      ADHOC_ASSIGN_OR_RETURN(json vars, Tfvars(e));
      out.files.push_back(
          {"environment/envs/" + e.env_file->name + ".tfvars.json", JsonText(vars)});
    }
    out.budget.rules_per_environment = static_cast<int>(rules_.size());
    out.budget.quota = aws_.rule_quota;
    out.budget.environments_that_fit =
        rules_.empty() ? aws_.rule_quota : aws_.rule_quota / static_cast<int>(rules_.size());
    out.budget.environments = static_cast<int>(envs.size());
    out.files.push_back({"README.md", Readme(out.budget)});
    std::sort(out.files.begin(), out.files.end(),
              [](const RenderedFile& a, const RenderedFile& b) { return a.path < b.path; });
    return out;
  }

 private:
  json Provider(const std::string& stack, bool per_env) const {
    json tags = {{"adhoc:project", p_.name}, {"adhoc:stack", stack}};
    if (per_env) {
      tags["adhoc:environment"] = Interp("var.env");
      tags["adhoc:owner"] = Interp("var.owner");
      tags["adhoc:ttl"] = Interp("var.ttl");
    }
    return {{"aws", {{"region", aws_.region}, {"default_tags", {{"tags", tags}}}}}};
  }

  json Terraform(const std::optional<std::string>& state_key, bool workspaces) const {
    json t = {{"required_version", ">= 1.5.0"},
              {"required_providers",
               {{"aws", {{"source", "hashicorp/aws"}, {"version", kProviderVersion}}}}}};
    if (state_key) {
      json s3 = {{"bucket", state_bucket_},
                 {"key", *state_key},
                 {"region", aws_.region},
                 {"dynamodb_table", lock_table_},
                 {"encrypt", true}};
      if (workspaces) s3["workspace_key_prefix"] = "environments";
      t["backend"] = {{"s3", s3}};
    }
    return t;
  }

  // ---- bootstrap: Terraform's own state ----------------------------------------------
  json Bootstrap() const {
    json root;
    root["terraform"] = Terraform(std::nullopt, false);
    root["provider"] = Provider("bootstrap", false);
    json& r = root["resource"];
    r["aws_s3_bucket"]["state"] = {{"bucket", state_bucket_}};
    r["aws_s3_bucket_versioning"]["state"] = {
        {"bucket", Interp("aws_s3_bucket.state.id")},
        {"versioning_configuration", {{"status", "Enabled"}}}};
    r["aws_s3_bucket_server_side_encryption_configuration"]["state"] = {
        {"bucket", Interp("aws_s3_bucket.state.id")},
        {"rule", {{{"apply_server_side_encryption_by_default", {{"sse_algorithm", "AES256"}}}}}}};
    r["aws_s3_bucket_public_access_block"]["state"] = PublicAccessBlock("aws_s3_bucket.state.id");
    r["aws_dynamodb_table"]["lock"] = {{"name", lock_table_},
                                       {"billing_mode", "PAY_PER_REQUEST"},
                                       {"hash_key", "LockID"},
                                       {"attribute", {{{"name", "LockID"}, {"type", "S"}}}}};
    root["output"]["state_bucket"] = {{"value", Interp("aws_s3_bucket.state.bucket")}};
    root["output"]["lock_table"] = {{"value", Interp("aws_dynamodb_table.lock.name")}};
    return root;
  }

  static json PublicAccessBlock(const std::string& bucket_ref) {
    return {{"bucket", Interp(bucket_ref)},
            {"block_public_acls", true},
            {"block_public_policy", true},
            {"ignore_public_acls", true},
            {"restrict_public_buckets", true}};
  }

  // ---- base: what every environment shares ------------------------------------------
  json Base() const {
    json root;
    root["terraform"] = Terraform("base/terraform.tfstate", false);
    root["provider"] = Provider("base", false);
    json cert = {{"type", "string"},
                 {"description", "ARN of the ACM certificate for *." + aws_.domain}};
    if (!aws_.certificate_arn.empty()) cert["default"] = aws_.certificate_arn;
    json zone = {{"type", "string"},
                 {"description", "ID of the Route 53 hosted zone of " + aws_.domain}};
    if (!aws_.hosted_zone_id.empty()) zone["default"] = aws_.hosted_zone_id;
    root["variable"]["certificate_arn"] = cert;
    root["variable"]["hosted_zone_id"] = zone;
    root["data"]["aws_availability_zones"]["available"] = {{"state", "available"}};
    const std::string n = p_.name;
    json& r = root["resource"];

    // Network: public subnets for the ALB and the NAT gateway, private ones for tasks and RDS.
    r["aws_vpc"]["main"] = {{"cidr_block", "10.0.0.0/16"},
                            {"enable_dns_hostnames", true},
                            {"enable_dns_support", true},
                            {"tags", {{"Name", n + "-vpc"}}}};
    for (const char* kind : {"public", "private"}) {
      bool pub = std::string(kind) == "public";
      r["aws_subnet"][kind] = {
          {"count", 3},
          {"vpc_id", Interp("aws_vpc.main.id")},
          {"cidr_block", Interp(std::string("cidrsubnet(aws_vpc.main.cidr_block, 8, ") +
                                (pub ? "101" : "1") + " + count.index)")},
          {"availability_zone", Interp("data.aws_availability_zones.available.names[count.index]")},
          {"map_public_ip_on_launch", pub},
          {"tags", {{"Name", n + "-" + kind + "-" + Interp("count.index")}}}};
      r["aws_route_table"][kind] = {{"vpc_id", Interp("aws_vpc.main.id")},
                                    {"tags", {{"Name", n + "-" + kind}}}};
      r["aws_route_table_association"][kind] = {
          {"count", 3},
          {"subnet_id", Interp(std::string("aws_subnet.") + kind + "[count.index].id")},
          {"route_table_id", Interp(std::string("aws_route_table.") + kind + ".id")}};
    }
    r["aws_internet_gateway"]["main"] = {{"vpc_id", Interp("aws_vpc.main.id")},
                                         {"tags", {{"Name", n + "-igw"}}}};
    r["aws_eip"]["nat"] = {{"domain", "vpc"}, {"tags", {{"Name", n + "-nat"}}}};
    r["aws_nat_gateway"]["main"] = {{"allocation_id", Interp("aws_eip.nat.id")},
                                    {"subnet_id", Interp("aws_subnet.public[0].id")},
                                    {"tags", {{"Name", n + "-nat"}}},
                                    {"depends_on", {"aws_internet_gateway.main"}}};
    r["aws_route"]["public_internet"] = {{"route_table_id", Interp("aws_route_table.public.id")},
                                         {"destination_cidr_block", "0.0.0.0/0"},
                                         {"gateway_id", Interp("aws_internet_gateway.main.id")}};
    r["aws_route"]["private_nat"] = {{"route_table_id", Interp("aws_route_table.private.id")},
                                     {"destination_cidr_block", "0.0.0.0/0"},
                                     {"nat_gateway_id", Interp("aws_nat_gateway.main.id")}};

    // Security groups: the world reaches the ALB on 80 and 443 only; tasks take traffic from
    // the ALB and each other; RDS from tasks on 5432. Nothing opens 22, 5432 or 6379 to the world.
    auto sg = [&](const std::string& key, const std::string& what) {
      r["aws_security_group"][key] = {{"name", n + "-" + key},
                                      {"description", what},
                                      {"vpc_id", Interp("aws_vpc.main.id")},
                                      {"tags", {{"Name", n + "-" + key}}}};
    };
    sg("alb", "adhoc " + n + ": the load balancer, open to the world on 80 and 443");
    sg("tasks", "adhoc " + n + ": ECS tasks, reached by the load balancer and each other");
    sg("rds", "adhoc " + n + ": PostgreSQL, reached by ECS tasks only");
    auto rule = [&](const std::string& key, json body) {
      r["aws_security_group_rule"][key] = body;
    };
    for (int port : {80, 443}) {
      rule("alb_in_" + std::to_string(port),
           {{"type", "ingress"},
            {"security_group_id", Interp("aws_security_group.alb.id")},
            {"protocol", "tcp"},
            {"from_port", port},
            {"to_port", port},
            {"cidr_blocks", {"0.0.0.0/0"}},
            {"ipv6_cidr_blocks", {"::/0"}},
            {"description", "HTTP(S) from anywhere"}});
    }
    rule("alb_to_tasks", {{"type", "egress"},
                          {"security_group_id", Interp("aws_security_group.alb.id")},
                          {"protocol", "tcp"},
                          {"from_port", 0},
                          {"to_port", 65535},
                          {"source_security_group_id", Interp("aws_security_group.tasks.id")},
                          {"description", "to the tasks"}});
    rule("tasks_from_alb", {{"type", "ingress"},
                            {"security_group_id", Interp("aws_security_group.tasks.id")},
                            {"protocol", "tcp"},
                            {"from_port", 0},
                            {"to_port", 65535},
                            {"source_security_group_id", Interp("aws_security_group.alb.id")},
                            {"description", "from the load balancer"}});
    rule("tasks_from_tasks", {{"type", "ingress"},
                              {"security_group_id", Interp("aws_security_group.tasks.id")},
                              {"protocol", "-1"},
                              {"from_port", 0},
                              {"to_port", 0},
                              {"self", true},
                              {"description", "between tasks (Redis, Cloud Map names)"}});
    rule("tasks_out", {{"type", "egress"},
                       {"security_group_id", Interp("aws_security_group.tasks.id")},
                       {"protocol", "-1"},
                       {"from_port", 0},
                       {"to_port", 0},
                       {"cidr_blocks", {"0.0.0.0/0"}},
                       {"description", "image pulls, AWS APIs, outgoing calls of the app"}});
    rule("rds_from_tasks", {{"type", "ingress"},
                            {"security_group_id", Interp("aws_security_group.rds.id")},
                            {"protocol", "tcp"},
                            {"from_port", 5432},
                            {"to_port", 5432},
                            {"source_security_group_id", Interp("aws_security_group.tasks.id")},
                            {"description", "PostgreSQL from the tasks"}});

    // The load balancer: HTTP redirects to HTTPS; HTTPS answers 404 unless a rule matches.
    r["aws_lb"]["main"] = {{"name", n + "-alb"},
                           {"load_balancer_type", "application"},
                           {"internal", false},
                           {"security_groups", {Interp("aws_security_group.alb.id")}},
                           {"subnets", Interp("aws_subnet.public[*].id")},
                           {"drop_invalid_header_fields", true}};
    r["aws_lb_listener"]["http"] = {
        {"load_balancer_arn", Interp("aws_lb.main.arn")},
        {"port", 80},
        {"protocol", "HTTP"},
        {"default_action",
         {{{"type", "redirect"},
           {"redirect", {{"port", "443"}, {"protocol", "HTTPS"}, {"status_code", "HTTP_301"}}}}}}};
    r["aws_lb_listener"]["https"] = {
        {"load_balancer_arn", Interp("aws_lb.main.arn")},
        {"port", 443},
        {"protocol", "HTTPS"},
        {"ssl_policy", "ELBSecurityPolicy-TLS13-1-2-2021-06"},
        {"certificate_arn", Interp("var.certificate_arn")},
        {"default_action",
         {{{"type", "fixed-response"},
           {"fixed_response",
            {{"content_type", "text/plain"},
             {"message_body", "No environment answers at this address.\n"},
             {"status_code", "404"}}}}}}};

    // Cloud Map: each environment's Redis gets a private name.
    r["aws_service_discovery_private_dns_namespace"]["main"] = {
        {"name", n + ".internal"},
        {"description", "adhoc " + n + ": private names of environments' processes"},
        {"vpc", Interp("aws_vpc.main.id")}};

    // RDS PostgreSQL: the master password is generated and kept by Secrets Manager.
    if (p_.postgres) {
      r["aws_db_subnet_group"]["main"] = {{"name", n + "-postgres"},
                                          {"subnet_ids", Interp("aws_subnet.private[*].id")}};
      r["aws_db_instance"]["main"] = {
          {"identifier", n + "-postgres"},
          {"engine", "postgres"},
          {"engine_version", aws_.postgres_version},
          {"instance_class", aws_.db_instance_class},
          {"allocated_storage", 20},
          {"storage_encrypted", true},
          {"username", "adhoc_admin"},
          {"manage_master_user_password", true},
          {"db_subnet_group_name", Interp("aws_db_subnet_group.main.name")},
          {"vpc_security_group_ids", {Interp("aws_security_group.rds.id")}},
          {"publicly_accessible", false},
          {"backup_retention_period", 1},
          {"skip_final_snapshot", true},
          {"apply_immediately", true}};
    }

    for (const spec::Image& image : p_.images) {
      r["aws_ecr_repository"][image.name] = {
          {"name", n + "/" + image.name},
          {"image_tag_mutability", "MUTABLE"},
          {"image_scanning_configuration", {{{"scan_on_push", true}}}}};
    }

    json& o = root["output"];
    auto out = [&](const std::string& key, const std::string& expr) {
      o[key] = {{"value", Interp(expr)}};
    };
    out("region", "\"" + aws_.region + "\"");
    out("vpc_id", "aws_vpc.main.id");
    out("public_subnet_ids", "aws_subnet.public[*].id");
    out("private_subnet_ids", "aws_subnet.private[*].id");
    out("alb_security_group_id", "aws_security_group.alb.id");
    out("tasks_security_group_id", "aws_security_group.tasks.id");
    out("alb_dns_name", "aws_lb.main.dns_name");
    out("alb_zone_id", "aws_lb.main.zone_id");
    out("https_listener_arn", "aws_lb_listener.https.arn");
    out("namespace_id", "aws_service_discovery_private_dns_namespace.main.id");
    out("namespace_name", "aws_service_discovery_private_dns_namespace.main.name");
    out("hosted_zone_id", "var.hosted_zone_id");
    if (p_.postgres) {
      out("rds_address", "aws_db_instance.main.address");
      out("rds_port", "aws_db_instance.main.port");
      out("rds_master_secret_arn", "aws_db_instance.main.master_user_secret[0].secret_arn");
    }
    std::string repos = "{";
    for (const spec::Image& image : p_.images)
      repos += (repos.size() > 1 ? ", " : "") + Q(image.name) + " = aws_ecr_repository." +
               image.name + ".repository_url";
    out("ecr_repository_urls", repos + "}");
    return root;
  }

  // ---- environment: one workspace per environment --------------------------------------

  std::string Hostname() const { return Interp("var.env") + "." + aws_.domain; }

  // The nested replace() that renders an env file's value (a placeholder template) in
  // Terraform: env files' [env] reach Terraform as variables, not as code.
  std::string RenderChain(const std::string& value_expr) const {
    std::vector<std::string> keys = {"env",     "hostname", "url",   "host",
                                     "workdir", "taskdir",  "static"};
    for (const spec::Image& i : p_.images) keys.push_back("version." + i.name);
    if (p_.postgres)
      for (const char* k : {"host", "port", "database", "user", "password", "url"})
        keys.push_back(std::string("postgres.") + k);
    if (p_.redis)
      for (const char* k : {"host", "port", "password", "url"})
        keys.push_back(std::string("redis.") + k);
    for (const std::string& r : randoms_) keys.push_back("random." + r);
    for (const std::string& s : secrets_) keys.push_back("secret." + s);
    std::string expr = value_expr;
    // `{{` stands for `{`: hide it from the replacements, then restore it.
    expr = "replace(" + expr + ", \"{{\", \"\\u0001\")";
    for (const std::string& k : keys)
      expr =
          "replace(" + expr + ", \"{" + k + "}\", " + HclString(*AwsValue(k, std::nullopt)) + ")";
    return "replace(" + expr + ", \"\\u0001\", \"{\")";
  }

  Result<json> Environment() {
    json root;
    root["terraform"] = Terraform("environment/terraform.tfstate", true);
    root["provider"] = Provider("environment", true);
    json& v = root["variable"];
    v["env"] = {{"type", "string"},
                {"description", "the environment's name (its env file's name)"},
                {"validation",
                 {{{"condition", Interp("can(regex(\"^[a-z][a-z0-9-]{0,39}$\", var.env))")},
                   {"error_message", "env must be an environment name (a DNS label)."}}}}};
    v["slot"] = {
        {"type", "number"},
        {"description", "the environment's slot: its listener rules' priority block"},
        {"validation",
         {{{"condition", Interp("var.slot >= 1 && var.slot <= " + std::to_string(kMaxSlot))},
           {"error_message", "slot must be between 1 and " + std::to_string(kMaxSlot) + "."}}}}};
    v["versions"] = {{"type", "map(string)"}, {"description", "git ref of each image"}};
    v["image_tags"] = {{"type", "map(string)"}, {"description", "docker tag of each image"}};
    v["env_vars"] = {{"type", "map(string)"},
                     {"default", json::object()},
                     {"description", "the env file's [env] (placeholder templates)"}};
    v["secret_env_vars"] = {{"type", "map(string)"},
                            {"default", json::object()},
                            {"description", "the env file's [env] that hold secret placeholders"}};
    v["target_group_names"] = {{"type", "map(string)"},
                               {"description", "target group name of each routed service"}};
    v["owner"] = {{"type", "string"}, {"default", ""}};
    v["ttl"] = {{"type", "string"}, {"default", ""}};

    root["data"]["terraform_remote_state"]["base"] = {
        {"backend", "s3"},
        {"config",
         {{"bucket", state_bucket_}, {"key", "base/terraform.tfstate"}, {"region", aws_.region}}}};
    if (!secrets_.empty()) {
      std::vector<std::string> names(secrets_.begin(), secrets_.end());
      root["data"]["aws_secretsmanager_secret_version"]["secret"] = {
          {"for_each", Interp("toset(" + HclList(names) + ")")},
          {"secret_id", AwsPrefix(p_.name, Interp("var.env")) + "/secret/" + Interp("each.key")}};
    }
    std::vector<std::string> generated;
    if (p_.postgres) generated.push_back("postgres-password");
    if (p_.redis) generated.push_back("redis-password");
    for (const std::string& r : randoms_) generated.push_back("random-" + r);
    if (!generated.empty())
      root["data"]["aws_secretsmanager_random_password"]["generated"] = {
          {"for_each", Interp("toset(" + HclList(generated) + ")")},
          {"password_length", 40},
          {"exclude_punctuation", true}};

    std::string prefix = AwsPrefix(p_.name, Interp("var.env"));
    json& l = root["locals"];
    l["base"] = Interp("data.terraform_remote_state.base.outputs");
    l["prefix"] = prefix;
    l["hostname"] = Hostname();
    l["redis_host"] = Interp("var.env") + "-redis." + Interp("local.base.namespace_name");
    if (p_.postgres) {
      ADHOC_ASSIGN_OR_RETURN(std::string db, ToTerraform(p_.postgres->database, std::nullopt));
      l["database"] = db;
      l["database_user"] = "env_" + Interp("replace(var.env, \"-\", \"_\")");
    }
    l["file_env"] = Interp("{for k, v in var.env_vars : k => " + RenderChain("v") + "}");
    l["file_secret_env"] =
        Interp("{for k, v in var.secret_env_vars : k => " + RenderChain("v") + "}");
    l["network"] = "awsvpcConfiguration={subnets=[" +
                   Interp("join(\",\", local.base.private_subnet_ids)") + "],securityGroups=[" +
                   Interp("local.base.tasks_security_group_id") + "],assignPublicIp=DISABLED}";

    json& r = root["resource"];
    const std::string cluster = AwsCluster(p_.name, Interp("var.env"));
    r["aws_ecs_cluster"]["main"] = {
        {"name", cluster},
        {"setting", {{{"name", "containerInsights"}, {"value", "disabled"}}}},
        {"lifecycle",
         {{"precondition",
           {{{"condition", Interp("terraform.workspace == var.env")},
             {"error_message",
              "Select the environment's workspace first: terraform workspace select -or-create "
              "<env>."}}}}}}};
    r["aws_ecs_cluster_capacity_providers"]["main"] = {
        {"cluster_name", Interp("aws_ecs_cluster.main.name")},
        {"capacity_providers", {"FARGATE_SPOT", "FARGATE"}},
        {"default_capacity_provider_strategy",
         {{{"capacity_provider", "FARGATE_SPOT"}, {"weight", 100}, {"base", 1}},
          {{"capacity_provider", "FARGATE"}, {"weight", 0}}}}};

    // Secrets: generated once (a Terraform change never rotates them), and one document with
    // every container's secret environment variables.
    if (!generated.empty()) {
      r["aws_secretsmanager_secret"]["generated"] = {
          {"for_each", Interp("toset(" + HclList(generated) + ")")},
          {"name", Interp("local.prefix") + "/generated/" + Interp("each.key")},
          {"recovery_window_in_days", 0}};
      r["aws_secretsmanager_secret_version"]["generated"] = {
          {"for_each", Interp("aws_secretsmanager_secret.generated")},
          {"secret_id", Interp("each.value.id")},
          {"secret_string",
           Interp("data.aws_secretsmanager_random_password.generated[each.key].random_password")},
          {"lifecycle", {{"ignore_changes", {"secret_string"}}}}};
    }
    r["aws_secretsmanager_secret"]["env"] = {{"name", Interp("local.prefix") + "/env"},
                                             {"recovery_window_in_days", 0}};

    // Storage for static and media files.
    r["aws_s3_bucket"]["static"] = {{"bucket_prefix", Interp("format(\"%.36s-\", local.prefix)")},
                                    {"force_destroy", true}};
    r["aws_s3_bucket_public_access_block"]["static"] = PublicAccessBlock("aws_s3_bucket.static.id");

    WriteRoles(root);

    // Processes: services, one-off tasks, Redis, the database's create and drop tasks.
    std::vector<std::string> secret_docs;
    for (const spec::Service& s : p_.services) {
      Process proc{s.name, s.image,     s.command,     s.port,
                   s.cpu,  s.memory,    s.stop_signal, static_cast<int>(s.stop_timeout.count()),
                   &s.env, s.templates, s.health};
      ADHOC_RETURN_IF_ERROR(AddTaskDefinition(root, proc, "task", &secret_docs));
    }
    for (const spec::Task& t : p_.tasks) {
      Process proc{t.name, t.image, t.command, std::nullopt, 1024,        2048,
                   "TERM", 10,      &t.env,    {},           std::nullopt};
      ADHOC_RETURN_IF_ERROR(AddTaskDefinition(root, proc, "task", &secret_docs));
    }
    if (p_.redis) AddRedis(root);
    if (p_.postgres) AddDatabaseTasks(root);
    r["aws_secretsmanager_secret_version"]["env"] = {
        {"secret_id", Interp("aws_secretsmanager_secret.env.id")},
        {"secret_string", secret_docs.empty()
                              ? Interp("jsonencode({})")
                              : Interp("jsonencode(merge(" + Join(secret_docs, ", ") + "))")}};

    // Routing: a target group per routed service, rules in the slot's priority block.
    std::set<std::string> routed;
    for (const RouteRule& rr : rules_) routed.insert(rr.service);
    for (const spec::Service& s : p_.services) {
      if (!routed.count(s.name)) continue;
      json hc = {{"protocol", "HTTP"}, {"port", "traffic-port"}};
      if (s.health && !s.health->path.empty()) {
        hc["path"] = s.health->path;
        hc["matcher"] = s.health->matcher;
        hc["interval"] = s.health->interval.count();
        hc["timeout"] = s.health->timeout.count();
        hc["healthy_threshold"] = s.health->healthy;
        hc["unhealthy_threshold"] = s.health->unhealthy;
      } else {
        hc["path"] = "/";
        hc["matcher"] = "200-499";  // no HTTP health check in adhoc.toml: any answer will do
        hc["interval"] = 7;
        hc["timeout"] = 5;
        hc["healthy_threshold"] = 2;
        hc["unhealthy_threshold"] = 3;
      }
      r["aws_lb_target_group"][s.name] = {
          {"name", Interp("var.target_group_names[\"" + s.name + "\"]")},
          {"port", *s.port},
          {"protocol", "HTTP"},
          {"target_type", "ip"},
          {"vpc_id", Interp("local.base.vpc_id")},
          {"deregistration_delay", 5},
          {"health_check", hc}};
    }
    for (size_t i = 0; i < rules_.size(); ++i) {
      const RouteRule& rr = rules_[i];
      json conditions = json::array({{{"host_header", {{"values", {Hostname()}}}}}});
      if (!rr.paths.empty()) conditions.push_back({{"path_pattern", {{"values", rr.paths}}}});
      r["aws_lb_listener_rule"][RuleName(i)] = {
          {"listener_arn", Interp("local.base.https_listener_arn")},
          {"priority", Interp("var.slot * " + std::to_string(kPrioritiesPerSlot) + " + " +
                              std::to_string(i + 1))},
          {"action",
           {{{"type", "forward"},
             {"target_group_arn", Interp("aws_lb_target_group." + rr.service + ".arn")}}}},
          {"condition", conditions},
          {"tags", {{"Name", Interp("var.env") + "-" + rr.service}}}};
    }
    for (const spec::Service& s : p_.services) AddService(root, s, routed.count(s.name) > 0);

    r["aws_route53_record"]["main"] = {{"zone_id", Interp("local.base.hosted_zone_id")},
                                       {"name", Hostname()},
                                       {"type", "A"},
                                       {"alias",
                                        {{{"name", Interp("local.base.alb_dns_name")},
                                          {"zone_id", Interp("local.base.alb_zone_id")},
                                          {"evaluate_target_health", false}}}}};

    WriteOutputs(root);
    return root;
  }

  static std::string Join(const std::vector<std::string>& items, const std::string& sep) {
    std::string out;
    for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
    return out;
  }

  std::string RuleName(size_t i) const { return rules_[i].service + "_" + std::to_string(i + 1); }

  static json AssumeEcsTasks() {
    return {{"Version", "2012-10-17"},
            {"Statement",
             {{{"Effect", "Allow"},
               {"Principal", {{"Service", "ecs-tasks.amazonaws.com"}}},
               {"Action", "sts:AssumeRole"}}}}};
  }

  void WriteRoles(json& root) const {
    json& r = root["resource"];
    std::string assume = Interp("jsonencode(" + ToHcl(AssumeEcsTasks()) + ")");
    // Execution role: pulls images, writes logs, reads this environment's secrets only.
    r["aws_iam_role"]["execution"] = {
        {"name_prefix", Interp("format(\"%.28s-exec-\", local.prefix)")},
        {"assume_role_policy", assume}};
    r["aws_iam_role_policy_attachment"]["execution"] = {
        {"role", Interp("aws_iam_role.execution.name")}, {"policy_arn", kExecutionPolicy}};
    std::string env_secrets =
        "concat([aws_secretsmanager_secret.env.arn]" +
        std::string(p_.postgres || p_.redis || !randoms_.empty()
                        ? ", [for s in aws_secretsmanager_secret.generated : s.arn]"
                        : "") +
        (secrets_.empty() ? std::string("")
                          : ", [for s in data.aws_secretsmanager_secret_version.secret : "
                            "s.arn]") +
        ")";
    r["aws_iam_role_policy"]["execution_secrets"] = {
        {"name", "environment-secrets"},
        {"role", Interp("aws_iam_role.execution.id")},
        {"policy", Interp("jsonencode(" +
                          ToHcl({{"Version", "2012-10-17"},
                                 {"Statement",
                                  {{{"Effect", "Allow"},
                                    {"Action", {"secretsmanager:GetSecretValue"}},
                                    {"Resource", RawHcl(env_secrets)}}}}}) +
                          ")")}};
    // Task role: the environment's bucket and the ECS Exec channels, nothing else.
    r["aws_iam_role"]["task"] = {{"name_prefix", Interp("format(\"%.28s-task-\", local.prefix)")},
                                 {"assume_role_policy", assume}};
    r["aws_iam_role_policy"]["task"] = {
        {"name", "environment-task"},
        {"role", Interp("aws_iam_role.task.id")},
        {"policy",
         Interp("jsonencode(" +
                ToHcl({{"Version", "2012-10-17"},
                       {"Statement",
                        {{{"Sid", "Bucket"},
                          {"Effect", "Allow"},
                          {"Action", {"s3:ListBucket"}},
                          {"Resource", Interp("aws_s3_bucket.static.arn")}},
                         {{"Sid", "Objects"},
                          {"Effect", "Allow"},
                          {"Action", {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}},
                          {"Resource", Interp("aws_s3_bucket.static.arn") + "/*"}},
                         {{"Sid", "EcsExec"},
                          {"Effect", "Allow"},
                          {"Action",
                           {"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}},
                          {"Resource", "*"}}}}}) +
                ")")}};
    if (p_.postgres) {
      // The database tasks' execution role also reads the RDS master secret.
      r["aws_iam_role"]["database"] = {
          {"name_prefix", Interp("format(\"%.30s-db-\", local.prefix)")},
          {"assume_role_policy", assume}};
      r["aws_iam_role_policy_attachment"]["database"] = {
          {"role", Interp("aws_iam_role.database.name")}, {"policy_arn", kExecutionPolicy}};
      r["aws_iam_role_policy"]["database_secrets"] = {
          {"name", "database-secrets"},
          {"role", Interp("aws_iam_role.database.id")},
          {"policy",
           Interp("jsonencode(" +
                  ToHcl({{"Version", "2012-10-17"},
                         {"Statement",
                          {{{"Effect", "Allow"},
                            {"Action", {"secretsmanager:GetSecretValue"}},
                            {"Resource",
                             {Interp("local.base.rds_master_secret_arn"),
                              Interp("aws_secretsmanager_secret.generated[\"postgres-password\"]"
                                     ".arn")}}}}}}) +
                  ")")}};
    }
  }

  json LogConfiguration(const std::string& process) const {
    return {{"logDriver", "awslogs"},
            {"options",
             {{"awslogs-group", AwsLogGroup(Interp("var.env"), process)},
              {"awslogs-region", aws_.region},
              {"awslogs-stream-prefix", kAwsLogStreamPrefix}}}};
  }

  void AddLogGroup(json& root, const std::string& process) const {
    root["resource"]["aws_cloudwatch_log_group"][process] = {
        {"name", AwsLogGroup(Interp("var.env"), process)}, {"retention_in_days", 7}};
  }

  std::string ImageRef(const std::string& image) const {
    return aws_.registry + "/" + p_.name + "/" + image + ":" +
           Interp("var.image_tags[\"" + image + "\"]");
  }

  // The task definition of a service or one-off task; its secret variables join `secret_docs`.
  Status AddTaskDefinition(json& root, const Process& proc, const std::string& role,
                           std::vector<std::string>* secret_docs) {
    auto size = FargateSize(proc.cpu, proc.memory);
    if (!size)
      return BadInput(p_.where.file + ": '" + proc.name + "' asks for more cpu or memory (" +
                      std::to_string(proc.cpu) + ", " + std::to_string(proc.memory) +
                      " MiB) than a Fargate task has");
    // Layers: [env] of adhoc.toml, then the process's own env (later wins). The env file's
    // [env] comes from variables (local.file_env, local.file_secret_env) and wins over both.
    std::map<std::string, std::string> templates_by_name;
    for (const spec::EnvVar& e : p_.env) templates_by_name[e.name] = e.value;
    if (proc.own_env)
      for (const spec::EnvVar& e : *proc.own_env) templates_by_name[e.name] = e.value;
    json plain = json::object(), secret = json::object();
    for (const auto& [name, value] : templates_by_name) {
      ADHOC_ASSIGN_OR_RETURN(std::string tf, ToTerraform(value, proc.port));
      (HoldsSecret(value) ? secret : plain)[name] = tf;
    }
    plain["S3_BUCKET_NAME"] = Interp("aws_s3_bucket.static.bucket");
    // Templates: rendered now, written into {taskdir} by the command's prelude.
    std::map<std::string, std::string> template_env;
    for (const std::string& t : proc.templates) {
      auto it = in_.templates.find(proc.image + "/" + t);
      if (it == in_.templates.end())
        return BadInput("the text of template '" + t + "' of '" + proc.name + "' is missing");
      std::string out_name = spec::TemplateOutputName(t);
      std::string var = TemplateEnvName(out_name);
      template_env[out_name] = var;
      if (HoldsSecret(it->second))
        return BadInput("template '" + t + "' of '" + proc.name +
                        "' holds a secret placeholder, which AWS task definitions cannot carry "
                        "in plain text; pass it through [env] instead");
      ADHOC_ASSIGN_OR_RETURN(std::string tf, ToTerraform(it->second, proc.port));
      plain[var] = tf;
    }
    ADHOC_ASSIGN_OR_RETURN(std::string command, ToTerraform(proc.command, proc.port));
    std::vector<std::string> argv = ContainerCommand(command, proc.stop_signal, template_env);
    // argv[2] holds Terraform template text: TfLiteral was applied to the user's parts only.

    std::string c = proc.name;
    std::string env_expr =
        "[for k, v in merge({for k, v in " + ToHcl(plain) +
        " : k => v if !contains(keys(var.secret_env_vars), k)}, local.file_env) : {name = k, "
        "value = tostring(v)}]";
    std::string secret_obj =
        "merge({for k, v in " + ToHcl(secret) +
        " : k => v if !contains(keys(var.env_vars), k)}, local.file_secret_env)";
    secret_docs->push_back("{for k, v in " + secret_obj + " : \"" + c + ".${k}\" => v}");
    std::string secrets_expr =
        "[for k in sort(keys(" + secret_obj +
        ")) : {name = k, valueFrom = \"${aws_secretsmanager_secret.env.arn}:" + c + ".${k}::\"}]";

    json container = {{"name", c},
                      {"image", ImageRef(proc.image)},
                      {"essential", true},
                      {"command", {argv[0], argv[1], RawHcl(HclString(argv[2]))}},
                      {"environment", RawHcl(env_expr)},
                      {"secrets", RawHcl(secrets_expr)},
                      {"logConfiguration", LogConfiguration(c)},
                      {"stopTimeout", std::min(proc.stop_timeout, 120)},
                      {"memory", proc.memory},
                      {"linuxParameters", {{"initProcessEnabled", true}}}};
    if (proc.port)
      container["portMappings"] = {{{"containerPort", *proc.port}, {"protocol", "tcp"}}};
    if (proc.health && !proc.health->command.empty()) {
      ADHOC_ASSIGN_OR_RETURN(std::string hc, ToTerraform(proc.health->command, proc.port));
      container["healthCheck"] = {
          {"command", {"CMD-SHELL", RawHcl(HclString(hc))}},
          {"interval", std::max<long>(5, proc.health->interval.count())},
          {"timeout", std::max<long>(2, proc.health->timeout.count())},
          {"retries", proc.health->unhealthy},
          {"startPeriod", std::min<long>(300, proc.health->start_timeout.count())}};
    }
    AddLogGroup(root, c);
    root["resource"]["aws_ecs_task_definition"][c] = {
        {"family", AwsFamily(p_.name, Interp("var.env"), c)},
        {"requires_compatibilities", {"FARGATE"}},
        {"network_mode", "awsvpc"},
        {"cpu", std::to_string(size->first)},
        {"memory", std::to_string(size->second)},
        {"execution_role_arn", Interp("aws_iam_role.execution.arn")},
        {"task_role_arn", Interp("aws_iam_role." + role + ".arn")},
        {"container_definitions", Interp("jsonencode([" + ToHcl(container) + "])")},
        {"depends_on", {"aws_iam_role_policy.execution_secrets"}}};
    return OkStatus();
  }

  void AddRedis(json& root) const {
    json& r = root["resource"];
    r["aws_service_discovery_service"]["redis"] = {
        {"name", Interp("var.env") + "-redis"},
        {"dns_config",
         {{{"namespace_id", Interp("local.base.namespace_id")},
           {"routing_policy", "MULTIVALUE"},
           {"dns_records", {{{"ttl", 10}, {"type", "A"}}}}}}},
        {"health_check_custom_config", {{{"failure_threshold", 1}}}}};
    json container = {
        {"name", "redis"},
        {"image", kRedisImage},
        {"essential", true},
        {"command",
         {"/bin/sh", "-c",
          "exec redis-server --port " + std::to_string(kRedisPort) +
              " --requirepass \"$REDIS_PASSWORD\" --appendonly yes --appendfsync everysec"}},
        {"portMappings", {{{"containerPort", kRedisPort}, {"protocol", "tcp"}}}},
        {"secrets",
         {{{"name", "REDIS_PASSWORD"},
           {"valueFrom", Interp("aws_secretsmanager_secret.generated[\"redis-password\"].arn")}}}},
        {"logConfiguration", LogConfiguration("redis")},
        {"memory", 256}};
    AddLogGroup(root, "redis");
    r["aws_ecs_task_definition"]["redis"] = {
        {"family", AwsFamily(p_.name, Interp("var.env"), "redis")},
        {"requires_compatibilities", {"FARGATE"}},
        {"network_mode", "awsvpc"},
        {"cpu", "256"},
        {"memory", "512"},
        {"execution_role_arn", Interp("aws_iam_role.execution.arn")},
        {"container_definitions", Interp("jsonencode([" + ToHcl(container) + "])")},
        {"depends_on", {"aws_iam_role_policy.execution_secrets"}}};
    r["aws_ecs_service"]["redis"] = {
        {"name", "redis"},
        {"cluster", Interp("aws_ecs_cluster.main.id")},
        {"task_definition", Interp("aws_ecs_task_definition.redis.arn")},
        {"desired_count", 1},
        {"deployment_minimum_healthy_percent", 0},
        {"deployment_maximum_percent", 100},
        {"capacity_provider_strategy", CapacityStrategy()},
        {"network_configuration", Network()},
        {"service_registries",
         {{{"registry_arn", Interp("aws_service_discovery_service.redis.arn")}}}},
        {"depends_on", {"aws_ecs_cluster_capacity_providers.main"}}};
  }

  static json CapacityStrategy() {
    return {{{"capacity_provider", "FARGATE_SPOT"}, {"weight", 100}, {"base", 1}},
            {{"capacity_provider", "FARGATE"}, {"weight", 0}}};
  }

  static json Network() {
    return {{{"subnets", Interp("local.base.private_subnet_ids")},
             {"security_groups", {Interp("local.base.tasks_security_group_id")}},
             {"assign_public_ip", false}}};
  }

  // The one-off tasks that create and drop the environment's database and role in RDS (the
  // seed ran `createdb` over SSH on a bastion, and never dropped anything).
  void AddDatabaseTasks(json& root) const {
    const std::string create_sql =
        "SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS "
        "(SELECT FROM pg_roles WHERE rolname = :'role') \\gexec\n"
        "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'password') \\gexec\n"
        "SELECT format('GRANT %I TO CURRENT_USER', :'role') \\gexec\n"
        "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS "
        "(SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        "SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \\gexec\n";
    const std::string drop_sql =
        "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \\gexec\n"
        "SELECT format('DROP ROLE IF EXISTS %I', :'role') \\gexec\n";
    auto script = [](const std::string& sql) {
      return "set -eu\npsql -v ON_ERROR_STOP=1 -v db=\"$DB_NAME\" -v role=\"$DB_USER\" "
             "-v password=\"$DB_PASSWORD\" <<'SQL'\n" +
             sql + "SQL\n";
    };
    for (const auto& [name, sql] :
         {std::pair<std::string, std::string>{"db-create", create_sql}, {"db-drop", drop_sql}}) {
      json container = {
          {"name", name},
          {"image", "public.ecr.aws/docker/library/postgres:" + aws_.postgres_version + "-alpine"},
          {"essential", true},
          {"command", {"/bin/sh", "-c", RawHcl(HclString(TfLiteral(script(sql))))}},
          {"environment",
           {{{"name", "PGHOST"}, {"value", Interp("local.base.rds_address")}},
            {{"name", "PGPORT"}, {"value", Interp("tostring(local.base.rds_port)")}},
            {{"name", "PGDATABASE"}, {"value", "postgres"}},
            {{"name", "PGSSLMODE"}, {"value", "require"}},
            {{"name", "DB_NAME"}, {"value", Interp("local.database")}},
            {{"name", "DB_USER"}, {"value", Interp("local.database_user")}}}},
          {"secrets",
           {{{"name", "PGUSER"},
             {"valueFrom", Interp("local.base.rds_master_secret_arn") + ":username::"}},
            {{"name", "PGPASSWORD"},
             {"valueFrom", Interp("local.base.rds_master_secret_arn") + ":password::"}},
            {{"name", "DB_PASSWORD"},
             {"valueFrom",
              Interp("aws_secretsmanager_secret.generated[\"postgres-password\"].arn")}}}},
          {"logConfiguration", LogConfiguration(name)},
          {"memory", 512}};
      AddLogGroup(root, name);
      root["resource"]["aws_ecs_task_definition"][name] = {
          {"family", AwsFamily(p_.name, Interp("var.env"), name)},
          {"requires_compatibilities", {"FARGATE"}},
          {"network_mode", "awsvpc"},
          {"cpu", "256"},
          {"memory", "512"},
          {"execution_role_arn", Interp("aws_iam_role.database.arn")},
          {"container_definitions", Interp("jsonencode([" + ToHcl(container) + "])")},
          {"depends_on", {"aws_iam_role_policy.database_secrets"}}};
    }
  }

  void AddService(json& root, const spec::Service& s, bool routed) const {
    // A single task without a port (Celery beat) never runs twice, also during a deploy.
    bool single = !s.port && s.count == 1;
    json svc = {{"name", s.name},
                {"cluster", Interp("aws_ecs_cluster.main.id")},
                {"task_definition", Interp("aws_ecs_task_definition." + s.name + ".arn")},
                {"desired_count", s.count},
                {"deployment_minimum_healthy_percent", single ? 0 : 100},
                {"deployment_maximum_percent", single ? 100 : 200},
                {"enable_execute_command", true},
                {"capacity_provider_strategy", CapacityStrategy()},
                {"network_configuration", Network()},
                {"lifecycle", {{"ignore_changes", {"task_definition", "desired_count"}}}}};
    json depends = {"aws_ecs_cluster_capacity_providers.main"};
    if (p_.redis) depends.push_back("aws_ecs_service.redis");
    if (routed) {
      svc["load_balancer"] = {
          {{"target_group_arn", Interp("aws_lb_target_group." + s.name + ".arn")},
           {"container_name", s.name},
           {"container_port", *s.port}}};
      svc["health_check_grace_period_seconds"] =
          s.health ? std::min<long>(300, s.health->start_timeout.count()) : 60;
      for (size_t i = 0; i < rules_.size(); ++i)
        if (rules_[i].service == s.name) depends.push_back("aws_lb_listener_rule." + RuleName(i));
    }
    svc["depends_on"] = depends;
    root["resource"]["aws_ecs_service"][s.name] = svc;
  }

  // A shell line running one-off task `name` and printing its log: the seed's migrate_command.
  std::string RunTaskCommand(const std::string& name) const {
    std::string cluster = Interp("aws_ecs_cluster.main.name");
    return "TASK=$(aws ecs run-task --cluster " + cluster + " --task-definition " +
           Interp("aws_ecs_task_definition." + name + ".family") +
           " --launch-type FARGATE --network-configuration '" + Interp("local.network") +
           "' --query 'tasks[0].taskArn' --output text) && aws ecs wait tasks-stopped --cluster " +
           cluster + " --tasks \"$TASK\" && aws logs get-log-events --log-group-name " +
           AwsLogGroup(Interp("var.env"), name) + " --log-stream-name \"" + kAwsLogStreamPrefix +
           "/" + name +
           "/$${TASK##*/}\" --query 'events[].message' --output text && "
           "test \"$(aws ecs describe-tasks --cluster " +
           cluster +
           " --tasks \"$TASK\" --query 'tasks[0].containers[0].exitCode' --output text)\" = 0";
  }

  void WriteOutputs(json& root) const {
    json& o = root["output"];
    o["url"] = {{"value", "https://" + Interp("local.hostname") + "/"}};
    o["cluster"] = {{"value", Interp("aws_ecs_cluster.main.name")}};
    std::vector<std::string> before;
    for (const spec::Task& t : p_.tasks)
      if (t.before == spec::Task::Before::kDeploy) before.push_back(RunTaskCommand(t.name));
    o["before_deploy_command"] = {
        {"value", before.empty() ? std::string("true") : Join(before, " && \\\n")},
        {"description", "runs the before-deploy tasks in order, printing their logs"}};
    if (p_.postgres) {
      o["create_database_command"] = {{"value", RunTaskCommand("db-create")}};
      o["drop_database_command"] = {{"value", RunTaskCommand("db-drop")}};
    }
    std::string shell_service;
    for (const spec::Service& s : p_.services)
      if (shell_service.empty() && s.port) shell_service = s.name;
    if (shell_service.empty() && !p_.services.empty()) shell_service = p_.services[0].name;
    if (!shell_service.empty()) {
      std::string cluster = Interp("aws_ecs_cluster.main.name");
      o["ecs_exec_command"] = {
          {"value", "aws ecs execute-command --cluster " + cluster +
                        " --task \"$(aws ecs list-tasks --cluster " + cluster + " --service-name " +
                        shell_service + " --query 'taskArns[0]' --output text)\" --container " +
                        shell_service + " --interactive --command /bin/sh"}};
    }
    o["static_bucket"] = {{"value", Interp("aws_s3_bucket.static.bucket")}};
  }

  Result<json> Tfvars(const AwsEnvironment& e) const {
    const spec::EnvFile& f = *e.env_file;
    json vars = {{"env", f.name}, {"slot", e.slot}, {"owner", f.owner}};
    vars["ttl"] = f.ttl ? spec::FormatDuration(*f.ttl) : "";
    json versions = json::object(), tags = json::object();
    for (const spec::Image& image : p_.images) {
      const std::string* ref = f.FindVersion(image.name);
      if (ref == nullptr)
        return BadInput(f.where.file + ": versions." + image.name +
                        ": missing; AWS runs a pushed image of every image, so pin a git ref");
      if (*ref == spec::kWorktreeRef)
        return BadInput(f.where.file + ": versions." + image.name +
                        ": \"@worktree\" cannot run on AWS (it runs pushed images); pin a git ref");
      versions[image.name] = *ref;
      tags[image.name] = ImageTag(*ref);
    }
    vars["versions"] = versions;
    vars["image_tags"] = tags;
    json env = json::object(), secret_env = json::object();
    for (const spec::EnvVar& v : f.env) (HoldsSecret(v.value) ? secret_env : env)[v.name] = v.value;
    vars["env_vars"] = env;
    vars["secret_env_vars"] = secret_env;
    json names = json::object();
    std::set<std::string> routed;
    for (const RouteRule& rr : rules_) routed.insert(rr.service);
    for (const std::string& s : routed) names[s] = AwsTargetGroupName(f.name, s);
    vars["target_group_names"] = names;
    return vars;
  }

  std::string Readme(const RuleBudget& budget) const {
    std::string out = "# " + p_.name + " on AWS (written by `adhoc render aws`; do not edit)\n\n";
    out += "Terraform in JSON syntax. State: S3 bucket `" + state_bucket_ + "`, lock table `" +
           lock_table_ + "` (region " + aws_.region + ").\n\n";
    out += "```sh\n";
    out +=
        "(cd bootstrap && terraform init && terraform apply)   # once: the state bucket and lock "
        "table\n";
    out += "(cd base && terraform init && terraform apply)        # once: VPC, ALB, RDS, ECR...\n";
    out += "cd environment && terraform init\n";
    out += "terraform workspace select -or-create ENV\n";
    out += "terraform apply -var-file=envs/ENV.tfvars.json\n";
    out += "eval \"$(terraform output -raw create_database_command)\"   # its database and role\n";
    out += "eval \"$(terraform output -raw before_deploy_command)\"     # migrations\n";
    out += "terraform output url\n";
    out += "```\n\n";
    out +=
        "Destroying: `eval \"$(terraform output -raw drop_database_command)\"`, then "
        "`terraform destroy -var-file=envs/ENV.tfvars.json`.\n\n";
    out += fmt::format(
        "Listener rules: {} per environment; the HTTPS listener holds {} (rule_quota), so {} "
        "environments fit ({} rendered now).\n",
        budget.rules_per_environment, budget.quota, budget.environments_that_fit,
        budget.environments);
    return out;
  }

  const AwsInput& in_;
  const spec::Project& p_;
  const spec::AwsTarget& aws_;
  std::string state_bucket_, lock_table_;
  std::set<std::string> randoms_, secrets_;
  std::vector<RouteRule> rules_;
};

}  // namespace

Result<AwsOutput> RenderAws(const AwsInput& input) {
  const spec::Project& p = *input.project;
  if (!p.targets.aws)
    return BadInput(p.where.file +
                    ": no [targets.aws]: add one with `domain` and `registry` to render for AWS");
  const spec::AwsTarget& aws = *p.targets.aws;
  if (aws.domain.empty())
    return BadInput(aws.where.ToString() +
                    ": targets.aws.domain: missing (e.g. \"dev.example.com\")");
  if (aws.registry.empty())
    return BadInput(aws.where.ToString() +
                    ": targets.aws.registry: missing (e.g. \"123456789012.dkr.ecr.us-east-1."
                    "amazonaws.com\")");
  return AwsWriter(input, aws).Write();
}

}  // namespace adhoc::render
