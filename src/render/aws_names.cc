#include "render/aws_names.h"

#include <fmt/format.h>

#include <cstdint>

namespace adhoc::render {

std::string AwsPrefix(const std::string& project, const std::string& env) {
  return project + "-" + env;
}
std::string AwsCluster(const std::string& project, const std::string& env) {
  return AwsPrefix(project, env);
}
std::string AwsFamily(const std::string& project, const std::string& env,
                      const std::string& process) {
  return AwsPrefix(project, env) + "-" + process;
}
std::string AwsLogGroup(const std::string& env, const std::string& process) {
  return "/ecs/" + env + "/" + process;
}
std::string AwsLogStream(const std::string& container, const std::string& task_arn) {
  size_t slash = task_arn.rfind('/');
  std::string id = slash == std::string::npos ? task_arn : task_arn.substr(slash + 1);
  return std::string(kAwsLogStreamPrefix) + "/" + container + "/" + id;
}

namespace {

uint32_t Fnv1a(const std::string& text) {
  uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string TrimDashes(std::string s) {
  while (!s.empty() && s.back() == '-') s.pop_back();
  while (!s.empty() && s.front() == '-') s.erase(0, 1);
  return s;
}

}  // namespace

std::string AwsTargetGroupName(const std::string& env, const std::string& service) {
  std::string whole = env + "-" + service;
  if (whole.size() <= kMaxTargetGroupName) return whole;
  std::string hash = fmt::format("{:06x}", Fnv1a(whole) & 0xffffff);
  // "<env part>-<service part>-<hash>": the service keeps up to 14 characters, the env the rest.
  std::string service_part = TrimDashes(service.substr(0, std::min<size_t>(service.size(), 14)));
  size_t env_room = kMaxTargetGroupName - hash.size() - service_part.size() - 2;
  std::string env_part = TrimDashes(env.substr(0, std::min(env.size(), env_room)));
  return env_part + "-" + service_part + "-" + hash;
}

}  // namespace adhoc::render
