#include "cloud/aws_deploy.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/exec.h"
#include "render/aws_names.h"
#include "render/container.h"
#include "spec/placeholders.h"

namespace adhoc::cloud {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Keys of describe-task-definition's answer that register-task-definition accepts.
const char* const kRegisterKeys[] = {"family",
                                     "taskRoleArn",
                                     "executionRoleArn",
                                     "networkMode",
                                     "containerDefinitions",
                                     "volumes",
                                     "placementConstraints",
                                     "requiresCompatibilities",
                                     "cpu",
                                     "memory",
                                     "pidMode",
                                     "ipcMode",
                                     "proxyConfiguration",
                                     "inferenceAccelerators",
                                     "ephemeralStorage",
                                     "runtimePlatform"};

// The names of the variables of `env` whose template is exactly "{version.IMAGE}".
std::map<std::string, std::string> VersionVariables(const spec::EnvList& env) {
  std::map<std::string, std::string> out;
  for (const spec::EnvVar& v : env) {
    auto found = spec::FindPlaceholders(v.value);
    if (found.size() == 1 && found[0].name == "version" && found[0].length == v.value.size())
      out[v.name] = found[0].part;
  }
  return out;
}

// A temporary file holding `text`, removed when destroyed.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::string pattern = (fs::temp_directory_path() / "adhoc-taskdef-XXXXXX").string();
    int fd = mkstemp(pattern.data());
    if (fd >= 0) close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary) << text;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Result<DeployRequest> ParseDeployRequest(const spec::Project& project, const std::string& env,
                                         const std::vector<std::string>& words) {
  if (!project.targets.aws)
    return BadInput(project.where.file +
                    ": no [targets.aws]: `adhoc render aws` and "
                    "`--target aws` need one");
  DeployRequest request;
  request.env = env;
  for (const std::string& word : words) {
    size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == word.size())
      return BadInput("'" + word + "': expected IMAGE=REF, e.g. backend=v1.1.0");
    std::string image = word.substr(0, eq), ref = word.substr(eq + 1);
    if (!project.FindImage(image))
      return BadInput("'" + word + "': no image '" + image + "' in adhoc.toml");
    if (ref == spec::kWorktreeRef)
      return BadInput("'" + word + "': AWS runs pushed images, not a working tree");
    if (!request.versions.emplace(image, ref).second)
      return BadInput("image '" + image + "' is given twice");
  }
  if (request.versions.empty()) return BadInput("no IMAGE=REF given");
  return request;
}

std::string DeployReport::Summary() const {
  return fmt::format(
      "{} task definitions registered, {} before-deploy tasks run, {} services "
      "updated and stable",
      registered.size(), tasks_run.size(), services_updated.size());
}

json DeployReportJson(const DeployReport& report) {
  return {{"registered", report.registered},
          {"tasks_run", report.tasks_run},
          {"services_updated", report.services_updated}};
}

Result<json> AwsDeployer::Aws(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"aws"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--region", region_, "--output", "json"});
  ADHOC_ASSIGN_OR_RETURN(CommandResult r, runner_.Run(argv));
  std::string shown = "aws " + args[0] + " " + (args.size() > 1 ? args[1] : "");
  if (r.exit_code != 0)
    return Failed(shown + " failed (exit " + std::to_string(r.exit_code) +
                  "): " + LastLines(r.err.empty() ? r.out : r.err, 5));
  if (r.out.find_first_not_of(" \n\r\t") == std::string::npos) return json::object();
  json parsed = json::parse(r.out, nullptr, false);
  if (parsed.is_discarded())
    return Failed(shown + ": the answer is not JSON: " + LastLines(r.out, 3));
  return parsed;
}

Result<DeployReport> AwsDeployer::Deploy(const spec::Project& project,
                                         const DeployRequest& request) {
  const spec::AwsTarget& aws = *project.targets.aws;
  region_ = aws.region;
  const std::string cluster = render::AwsCluster(project.name, request.env);
  DeployReport report;

  // What the named images touch: their before-deploy tasks and their services.
  std::vector<const spec::Task*> tasks;
  for (const spec::Task& t : project.tasks)
    if (t.before == spec::Task::Before::kDeploy && request.versions.count(t.image))
      tasks.push_back(&t);
  std::vector<const spec::Service*> services;
  for (const spec::Service& s : project.services)
    if (request.versions.count(s.image)) services.push_back(&s);
  if (services.empty() && tasks.empty())
    return BadInput("no service or before-deploy task uses the images given");

  // 1. New task definition revisions.
  auto register_new = [&](const std::string& process, const std::string& image,
                          const spec::EnvList& own) -> Status {
    std::string family = render::AwsFamily(project.name, request.env, process);
    ADHOC_ASSIGN_OR_RETURN(json described,
                           Aws({"ecs", "describe-task-definition", "--task-definition", family}));
    const json& current = described["taskDefinition"];
    json input = json::object();
    for (const char* key : kRegisterKeys)
      if (current.contains(key)) input[key] = current[key];
    const std::string& ref = request.versions.at(image);
    std::string image_ref =
        aws.registry + "/" + project.name + "/" + image + ":" + render::ImageTag(ref);
    std::map<std::string, std::string> version_vars = VersionVariables(project.env);
    for (const auto& [k, v] : VersionVariables(own)) version_vars[k] = v;
    bool found = false;
    for (json& c : input["containerDefinitions"]) {
      if (c.value("name", "") != process) continue;
      found = true;
      c["image"] = image_ref;
      if (c.contains("environment"))
        for (json& e : c["environment"]) {
          auto it = version_vars.find(e.value("name", ""));
          if (it != version_vars.end() && request.versions.count(it->second))
            e["value"] = request.versions.at(it->second);
        }
    }
    if (!found)
      return Failed("task definition " + family + " has no container '" + process +
                    "' (was it rendered by `adhoc render aws`?)");
    TempFile file(input.dump());
    ADHOC_ASSIGN_OR_RETURN(json registered, Aws({"ecs", "register-task-definition",
                                                 "--cli-input-json", "file://" + file.path()}));
    std::string arn = registered["taskDefinition"].value("taskDefinitionArn", "");
    if (arn.empty()) return Failed("register-task-definition of " + family + " gave no ARN");
    report.registered[process] = arn;
    progress_("registered " + arn + " (" + image_ref + ")");
    return OkStatus();
  };
  for (const spec::Task* t : tasks) ADHOC_RETURN_IF_ERROR(register_new(t->name, t->image, t->env));
  for (const spec::Service* s : services)
    ADHOC_RETURN_IF_ERROR(register_new(s->name, s->image, s->env));

  // 2. Before-deploy tasks, in file order, with the services' network.
  if (!tasks.empty()) {
    std::string network_service =
        services.empty() ? project.services.front().name : services.front()->name;
    ADHOC_ASSIGN_OR_RETURN(json described, Aws({"ecs", "describe-services", "--cluster", cluster,
                                                "--services", network_service}));
    if (described["services"].empty())
      return Failed("no service '" + network_service + "' in cluster " + cluster +
                    " (apply the environment's stack first)");
    json network = described["services"][0].value("networkConfiguration", json::object());
    for (const spec::Task* t : tasks) {
      progress_("running " + t->name + " ...");
      ADHOC_ASSIGN_OR_RETURN(json run, Aws({"ecs", "run-task", "--cluster", cluster,
                                            "--task-definition", report.registered.at(t->name),
                                            "--launch-type", "FARGATE", "--network-configuration",
                                            network.dump(), "--started-by", "adhoc-deploy"}));
      if (!run["failures"].empty() || run["tasks"].empty())
        return Failed("before-deploy task '" + t->name +
                      "' could not start: " + run["failures"].dump() +
                      "; no service was updated, the old version keeps serving");
      std::string task_arn = run["tasks"][0].value("taskArn", "");
      // Wait for it to stop, within the task's timeout.
      auto deadline = std::chrono::steady_clock::now() + t->timeout;
      json stopped;
      while (true) {
        ADHOC_ASSIGN_OR_RETURN(
            json d, Aws({"ecs", "describe-tasks", "--cluster", cluster, "--tasks", task_arn}));
        if (!d["tasks"].empty() && d["tasks"][0].value("lastStatus", "") == "STOPPED") {
          stopped = d["tasks"][0];
          break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          (void)Aws({"ecs", "stop-task", "--cluster", cluster, "--task", task_arn, "--reason",
                     "adhoc deploy: past the task's timeout"});
          return Failed("before-deploy task '" + t->name + "' ran past its timeout (" +
                        std::to_string(t->timeout.count()) + "s) and was stopped; no service " +
                        "was updated, the old version keeps serving");
        }
        runner_.Sleep(request.poll_interval);
      }
      // Its log lines, as the seed's workflow printed them.
      std::string group = render::AwsLogGroup(request.env, t->name);
      std::string stream = render::AwsLogStream(t->name, task_arn);
      auto events = Aws({"logs", "get-log-events", "--log-group-name", group, "--log-stream-name",
                         stream, "--start-from-head"});
      std::vector<std::string> lines;
      if (events.ok())
        for (const json& e : (*events)["events"]) lines.push_back(e.value("message", ""));
      if (!events.ok()) progress_("  (no log lines: " + events.error().message() + ")");
      for (const std::string& line : lines) progress_("  " + t->name + " | " + line);

      std::optional<int> exit_code;
      for (const json& c : stopped["containers"])
        if (c.value("name", "") == t->name && c.contains("exitCode") && c["exitCode"].is_number())
          exit_code = c["exitCode"].get<int>();
      // A container that exited by itself stops its task with this reason (and stop code);
      // any other reason (stopped by someone, out of memory, an image that cannot be pulled,
      // a Spot interruption) is a failure even where an exit code is reported.
      std::string reason = stopped.value("stoppedReason", "");
      std::string stop_code = stopped.value("stopCode", "");
      bool exited = (reason.empty() || reason.starts_with("Essential container in task exited")) &&
                    (stop_code.empty() || stop_code == "EssentialContainerExited");
      if (!exit_code || *exit_code != 0 || !exited) {
        std::string why =
            exit_code && *exit_code != 0 ? "exit code " + std::to_string(*exit_code)
            : exit_code                  ? "stopped: " + reason
                        : "stopped without an exit code" + (reason.empty() ? "" : ": " + reason);
        std::string tail;
        size_t from = lines.size() > 10 ? lines.size() - 10 : 0;
        for (size_t i = from; i < lines.size(); ++i) tail += "\n  " + lines[i];
        return Failed("before-deploy task '" + t->name + "' failed (" + why +
                      "); no service was updated, the old version keeps serving" +
                      (tail.empty() ? "" : "; its last log lines:" + tail));
      }
      progress_(t->name + " succeeded");
      report.tasks_run.push_back(t->name);
    }
  }

  // 3. Services to their new revisions.
  for (const spec::Service* s : services) {
    ADHOC_ASSIGN_OR_RETURN(json updated,
                           Aws({"ecs", "update-service", "--cluster", cluster, "--service", s->name,
                                "--task-definition", report.registered.at(s->name)}));
    (void)updated;
    progress_("updated service " + s->name);
    report.services_updated.push_back(s->name);
  }

  // 4. Stable: one deployment each, running what it wants.
  if (!services.empty()) {
    std::vector<std::string> args = {"ecs", "describe-services", "--cluster", cluster,
                                     "--services"};
    for (const spec::Service* s : services) args.push_back(s->name);
    auto deadline = std::chrono::steady_clock::now() + request.stable_timeout;
    while (true) {
      ADHOC_ASSIGN_OR_RETURN(json d, Aws(args));
      std::vector<std::string> unstable;
      for (const json& s : d["services"]) {
        bool stable = s["deployments"].size() == 1 &&
                      s.value("runningCount", -1) == s.value("desiredCount", -2);
        if (!stable) unstable.push_back(s.value("serviceName", "?"));
      }
      if (unstable.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        std::string names;
        for (const std::string& n : unstable) names += (names.empty() ? "" : ", ") + n;
        return Failed("services not stable in time: " + names +
                      " (ECS keeps rolling; `aws ecs describe-services` shows why)");
      }
      runner_.Sleep(request.poll_interval);
    }
    progress_("services stable");
  }
  return report;
}

}  // namespace adhoc::cloud
