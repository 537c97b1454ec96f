// `adhoc render aws`: the project as Terraform in JSON syntax (*.tf.json) for AWS ECS.
//
// Files, relative to the output folder:
//   bootstrap/main.tf.json      the S3 bucket and DynamoDB table that hold Terraform's state
//                               (applied once, with local state)
//   base/main.tf.json           what every environment shares: VPC (public and private subnets,
//                               one NAT gateway), security groups, the ALB and its listeners,
//                               RDS PostgreSQL (password generated and kept by Secrets Manager),
//                               the Cloud Map namespace, ECR repositories
//   environment/main.tf.json    one environment: ECS cluster, services, task definitions,
//                               Redis, target groups, listener rules, DNS record, S3 bucket,
//                               secrets, IAM roles, log groups; a Terraform workspace each
//   environment/envs/ENV.tfvars.json   each env file's variables (the seed's <name>.tfvars)
//   README.md                   the commands to apply them, and the listener's rule budget
//
// Placeholders on AWS (container.h lists the container-local ones): {env}, {hostname}
// (<env>.<[targets.aws] domain>), {url} (https://{hostname}), {version.IMAGE} (the env file's
// ref), {postgres.host|port|database|user} (the RDS instance; database and role of the
// environment's own), {redis.host|port} (the environment's Redis in Cloud Map); the secret ones
// ({postgres.password|url}, {redis.password|url}, {random.NAME}, {secret.NAME}) reach containers
// only through Secrets Manager (`secrets` of the task definition), never in plain text.
// Same input, byte-identical output. Thread-safe: a pure function.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "render/container.h"
#include "render/files.h"
#include "spec/spec.h"

namespace adhoc::render {

// Rule values an ALB rule may hold in all (the host takes one, paths the rest).
inline constexpr size_t kAlbConditionValues = 5;

struct AwsEnvironment {
  const spec::EnvFile* env_file = nullptr;
  int slot = 0;  // from AssignSlots (aws_slots.h)
};

struct AwsInput {
  const spec::Project* project = nullptr;
  std::vector<AwsEnvironment> environments;  // each gets a tfvars file
  TemplateTexts templates;                   // every service's `templates`, by "IMAGE/FILE"
};

// How many environments the shared HTTPS listener can hold.
struct RuleBudget {
  int rules_per_environment = 0;
  int quota = 0;                  // [targets.aws] rule_quota
  int environments_that_fit = 0;  // quota / rules_per_environment
  int environments = 0;           // environments rendered now
};

struct AwsOutput {
  RenderedFiles files;
  RuleBudget budget;
};

// A BadInput error when the project lacks [targets.aws] domain or registry, when an
// environment pins "@worktree" (AWS runs images, not working trees), when a service holds more
// rules than a slot has priorities, or when a template's text is missing.
Result<AwsOutput> RenderAws(const AwsInput& input);

}  // namespace adhoc::render
