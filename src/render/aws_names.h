// The names of an environment's AWS resources, in one place: `adhoc render aws` writes them
// into Terraform and `adhoc deploy --target aws` finds the resources by them.
//
// prefix "<project>-<env>": the ECS cluster, task families "<prefix>-<process>", secrets under
// "<prefix>/"; ECS services are named as adhoc's services; log groups "/ecs/<env>/<process>"
// with streams "adhoc/<container>/<task id>"; target groups at most 32 characters.
// Thread-safe: pure functions.
#pragma once

#include <string>

namespace adhoc::render {

inline constexpr char kAwsLogStreamPrefix[] = "adhoc";
inline constexpr size_t kMaxTargetGroupName = 32;

std::string AwsPrefix(const std::string& project, const std::string& env);
std::string AwsCluster(const std::string& project, const std::string& env);
std::string AwsFamily(const std::string& project, const std::string& env,
                      const std::string& process);
std::string AwsLogGroup(const std::string& env, const std::string& process);
// "adhoc/<container>/<task id>" for a task ARN or id.
std::string AwsLogStream(const std::string& container, const std::string& task_arn);

// "<env>-<service>" when it fits in 32 characters; else shortened with a hash of the whole
// name so that two environments never share one. Never starts or ends with '-'.
std::string AwsTargetGroupName(const std::string& env, const std::string& service);

}  // namespace adhoc::render
