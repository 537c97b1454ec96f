// The deploy sequence against a fake `aws`: order of calls, and where it stops on a failure.
#include "cloud/aws_deploy.h"

#include <gtest/gtest.h>

#include <deque>
#include <nlohmann/json.hpp>

#include "render/test_support.h"

namespace adhoc::cloud {
namespace {

using nlohmann::json;

// Answers `aws` calls from rules keyed by "service verb"; records every call.
class FakeAws : public CommandRunner {
 public:
  std::vector<std::vector<std::string>> calls;
  std::vector<std::string> verbs;                  // "ecs run-task", in order
  std::map<std::string, std::deque<json>> queued;  // verb -> answers, the last one repeats
  int sleeps = 0;

  Result<CommandResult> Run(const std::vector<std::string>& argv) override {
    calls.push_back(argv);
    std::string verb = argv.at(1) + " " + argv.at(2);
    verbs.push_back(verb);
    if (verb == "ecs describe-task-definition") {
      std::string family = Arg(argv, "--task-definition");
      std::string container = family.substr(std::string("ublog-demo-").size());
      json def = {
          {"taskDefinition",
           {{"family", family},
            {"taskDefinitionArn", "arn:aws:ecs:us-east-1:1:task-definition/" + family + ":1"},
            {"revision", 1},
            {"status", "ACTIVE"},
            {"cpu", "1024"},
            {"containerDefinitions",
             {{{"name", container},
               {"image", "r/ublog/backend:v1.0.0"},
               {"environment", {{{"name", "SOURCE_TAG"}, {"value", "v1.0.0"}}}}}}}}}};
      return Answer(def);
    }
    if (verb == "ecs register-task-definition") {
      std::string file = Arg(argv, "--cli-input-json").substr(7);
      json input = json::parse(render::testing::Slurp(file));
      registered.push_back(input);
      return Answer({{"taskDefinition",
                      {{"taskDefinitionArn", "arn:aws:ecs:us-east-1:1:task-definition/" +
                                                 input["family"].get<std::string>() + ":2"}}}});
    }
    if (verb == "ecs run-task") {
      std::string def = Arg(argv, "--task-definition");
      std::string name = def.substr(def.rfind('-') + 1);
      if (def.find("collectstatic") != std::string::npos) name = "collectstatic";
      if (def.find("migrate") != std::string::npos) name = "migrate";
      last_task = name;
      return Answer(
          {{"tasks", {{{"taskArn", "arn:aws:ecs:us-east-1:1:task/ublog-demo/" + name + "-id"}}}},
           {"failures", json::array()}});
    }
    auto it = queued.find(verb + (verb == "ecs describe-tasks" ? ":" + last_task : ""));
    if (it == queued.end()) it = queued.find(verb);
    if (it != queued.end() && !it->second.empty()) {
      json answer = it->second.front();
      if (it->second.size() > 1) it->second.pop_front();
      return Answer(answer);
    }
    return Answer(json::object());
  }
  void Sleep(std::chrono::milliseconds) override { ++sleeps; }

  static std::string Arg(const std::vector<std::string>& argv, const std::string& flag) {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == flag) return argv[i + 1];
    return "";
  }
  static Result<CommandResult> Answer(const json& j) { return CommandResult{0, j.dump(), ""}; }

  std::vector<json> registered;
  std::string last_task;
};

json Stopped(const std::string& container, std::optional<int> exit_code,
             const std::string& reason = "") {
  json c = {{"name", container}};
  if (exit_code) c["exitCode"] = *exit_code;
  return {{"tasks", {{{"lastStatus", "STOPPED"}, {"stoppedReason", reason}, {"containers", {c}}}}}};
}

json Running() { return {{"tasks", {{{"lastStatus", "RUNNING"}}}}}; }

json Services(int deployments) {
  json list = json::array();
  for (const char* s : {"gunicorn", "default", "beat"}) {
    json d = json::array();
    for (int i = 0; i < deployments; ++i) d.push_back({{"status", i ? "ACTIVE" : "PRIMARY"}});
    list.push_back(
        {{"serviceName", s},
         {"deployments", d},
         {"runningCount", 1},
         {"desiredCount", 1},
         {"networkConfiguration", {{"awsvpcConfiguration", {{"subnets", {"subnet-1"}}}}}}});
  }
  return {{"services", list}};
}

struct Fixture {
  spec::Workspace ws = render::testing::LoadUblog();
  FakeAws aws;
  std::vector<std::string> progress;
  Result<DeployReport> Deploy(const std::vector<std::string>& words) {
    auto request = ParseDeployRequest(ws.project, "demo", words);
    EXPECT_TRUE(request.ok());
    AwsDeployer deployer(aws, [this](const std::string& line) { progress.push_back(line); });
    return deployer.Deploy(ws.project, *request);
  }
};

TEST(AwsDeployTest, BackendInTheSeedsOrder) {
  Fixture f;
  f.aws.queued["ecs describe-tasks:migrate"] = {Running(), Stopped("migrate", 0)};
  f.aws.queued["ecs describe-tasks:collectstatic"] = {Stopped("collectstatic", 0)};
  f.aws.queued["logs get-log-events"] = {{{"events", {{{"message", "Applying blog.0002... OK"}}}}}};
  f.aws.queued["ecs describe-services"] = {Services(1), Services(2), Services(1)};
  auto report = f.Deploy({"backend=v1.1.0"});
  ASSERT_TRUE(report.ok()) << report.error().message();

  std::vector<std::string> expected = {"ecs describe-task-definition",
                                       "ecs register-task-definition",  // migrate
                                       "ecs describe-task-definition",
                                       "ecs register-task-definition",  // collectstatic
                                       "ecs describe-task-definition",
                                       "ecs register-task-definition",  // gunicorn
                                       "ecs describe-task-definition",
                                       "ecs register-task-definition",  // default
                                       "ecs describe-task-definition",
                                       "ecs register-task-definition",  // beat
                                       "ecs describe-services",         // the network
                                       "ecs run-task",
                                       "ecs describe-tasks",
                                       "ecs describe-tasks",
                                       "logs get-log-events",
                                       "ecs run-task",
                                       "ecs describe-tasks",
                                       "logs get-log-events",
                                       "ecs update-service",
                                       "ecs update-service",
                                       "ecs update-service",
                                       "ecs describe-services",
                                       "ecs describe-services"};
  EXPECT_EQ(f.aws.verbs, expected);
  EXPECT_EQ(report->tasks_run, std::vector<std::string>({"migrate", "collectstatic"}));
  EXPECT_EQ(report->services_updated, std::vector<std::string>({"gunicorn", "default", "beat"}));
  // The new image and the {version.backend} variable; read-only keys not sent back.
  const json& gunicorn = f.aws.registered[2];
  EXPECT_EQ(gunicorn["containerDefinitions"][0]["image"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/ublog/backend:v1.1.0");
  EXPECT_EQ(gunicorn["containerDefinitions"][0]["environment"][0]["value"], "v1.1.0");
  EXPECT_FALSE(gunicorn.contains("revision"));
  EXPECT_FALSE(gunicorn.contains("taskDefinitionArn"));
  // Log lines printed, stream named as render writes it.
  EXPECT_EQ(FakeAws::Arg(f.aws.calls[14], "--log-stream-name"), "adhoc/migrate/migrate-id");
  bool printed = false;
  for (const std::string& line : f.progress)
    printed |= line.find("migrate | Applying blog") != std::string::npos;
  EXPECT_TRUE(printed);
  // Every call names the stack's region.
  for (const auto& call : f.aws.calls) EXPECT_EQ(FakeAws::Arg(call, "--region"), "us-east-1");
  // The services were updated to the registered revisions.
  EXPECT_EQ(FakeAws::Arg(f.aws.calls[18], "--task-definition"),
            "arn:aws:ecs:us-east-1:1:task-definition/ublog-demo-gunicorn:2");
}

TEST(AwsDeployTest, AFailedMigrationStopsBeforeAnyService) {
  Fixture f;
  f.aws.queued["ecs describe-tasks:migrate"] = {Stopped("migrate", 1)};
  f.aws.queued["logs get-log-events"] = {
      {{"events", {{{"message", "django.db.utils.ProgrammingError"}}}}}};
  f.aws.queued["ecs describe-services"] = {Services(1)};
  auto report = f.Deploy({"backend=v1.1.0"});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().kind(), ErrorKind::kFailed);
  const std::string& message = report.error().message();
  EXPECT_NE(message.find("before-deploy task 'migrate' failed (exit code 1)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("no service was updated"), std::string::npos);
  EXPECT_NE(message.find("ProgrammingError"), std::string::npos);
  for (const std::string& verb : f.aws.verbs) EXPECT_NE(verb, "ecs update-service");
  int runs = 0;
  for (const std::string& verb : f.aws.verbs) runs += verb == "ecs run-task";
  EXPECT_EQ(runs, 1);  // collectstatic never started
}

TEST(AwsDeployTest, AStopReasonWithoutExitCodeIsAFailure) {
  Fixture f;
  f.aws.queued["ecs describe-tasks:migrate"] = {
      Stopped("migrate", std::nullopt, "CannotPullContainerError: manifest unknown")};
  f.aws.queued["ecs describe-services"] = {Services(1)};
  auto report = f.Deploy({"backend=v1.1.0"});
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message().find("stopped without an exit code: CannotPullContainerError"),
            std::string::npos)
      << report.error().message();
}

TEST(AwsDeployTest, FrontendOnlyTouchesItsService) {
  Fixture f;
  f.aws.queued["ecs describe-services"] = {Services(1)};
  auto report = f.Deploy({"frontend=v2.1.0"});
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(f.aws.verbs, std::vector<std::string>({"ecs describe-task-definition",
                                                   "ecs register-task-definition",
                                                   "ecs update-service", "ecs describe-services"}));
  EXPECT_EQ(FakeAws::Arg(f.aws.calls[2], "--service"), "web-ui");
  EXPECT_TRUE(report->tasks_run.empty());
}

TEST(AwsDeployTest, BadWordsAreNamed) {
  spec::Workspace ws = render::testing::LoadUblog();
  EXPECT_EQ(ParseDeployRequest(ws.project, "demo", {"backend"}).error().message(),
            "'backend': expected IMAGE=REF, e.g. backend=v1.1.0");
  EXPECT_EQ(ParseDeployRequest(ws.project, "demo", {"api=v1"}).error().message(),
            "'api=v1': no image 'api' in adhoc.toml");
  EXPECT_EQ(ParseDeployRequest(ws.project, "demo", {"backend=v1", "backend=v2"}).error().message(),
            "image 'backend' is given twice");
  EXPECT_EQ(ParseDeployRequest(ws.project, "demo", {"backend=@worktree"}).error().kind(),
            ErrorKind::kBadInput);
}

}  // namespace
}  // namespace adhoc::cloud

namespace adhoc::cloud {
namespace {

TEST(AwsDeployTest, AStopByReasonFailsEvenWithExitCodeZero) {
  Fixture f;
  f.aws.queued["ecs describe-tasks:migrate"] = {Stopped("migrate", 0, "Task stopped by user")};
  f.aws.queued["ecs describe-services"] = {Services(1)};
  auto report = f.Deploy({"backend=v1.1.0"});
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message().find("failed (stopped: Task stopped by user)"),
            std::string::npos)
      << report.error().message();
}

}  // namespace
}  // namespace adhoc::cloud
