// `adhoc deploy ENV IMAGE=REF ... --target aws`: the seed's backend/frontend update workflow,
// done through the `aws` client against the stack `adhoc render aws` wrote.
//
// In order, for the images named:
//   1. register a new revision of each affected task definition (the deployed images' services
//      and before-deploy tasks) with the new image tag (and {version.IMAGE} variables updated);
//   2. run each before-deploy task of those images in file order, wait for it to stop, print its
//      CloudWatch log lines; a non-zero exit code, or a stop without one (a stop reason), stops
//      the deploy there: no service is touched, the old version keeps serving;
//   3. update each affected service to its new revision;
//   4. wait until every updated service is stable (one deployment, running = desired).
// Names come from render/aws_names.h. Not thread-safe (one deploy per object at a time).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloud/command_runner.h"
#include "common/result.h"
#include "spec/spec.h"

namespace adhoc::cloud {

struct DeployRequest {
  std::string env;
  std::map<std::string, std::string> versions;  // image -> git ref (ordered by image name)
  std::chrono::milliseconds poll_interval{std::chrono::seconds(6)};
  std::chrono::milliseconds stable_timeout{std::chrono::minutes(15)};
};

// ENV and IMAGE=REF words checked against the project: known images, each once, no
// "@worktree", and a [targets.aws] table. BadInput errors name the word.
Result<DeployRequest> ParseDeployRequest(const spec::Project& project, const std::string& env,
                                         const std::vector<std::string>& words);

struct DeployReport {
  std::map<std::string, std::string> registered;  // process -> new task definition ARN
  std::vector<std::string> tasks_run;             // before-deploy tasks, in order
  std::vector<std::string> services_updated;
  std::string Summary() const;
};
nlohmann::json DeployReportJson(const DeployReport& report);

class AwsDeployer {
 public:
  using Progress = std::function<void(const std::string& line)>;
  AwsDeployer(CommandRunner& runner, Progress progress)
      : runner_(runner), progress_(std::move(progress)) {}

  Result<DeployReport> Deploy(const spec::Project& project, const DeployRequest& request);

 private:
  Result<nlohmann::json> Aws(const std::vector<std::string>& args);

  CommandRunner& runner_;
  Progress progress_;
  std::string region_;
};

}  // namespace adhoc::cloud
