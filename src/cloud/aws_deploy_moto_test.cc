// `adhoc deploy --target aws`'s sequence through the real `aws` client against moto (found
// through AWS_ENDPOINT_URL, as the client does): task definitions registered, services
// updated and waited for, log lines read from CloudWatch Logs. moto runs no containers, and
// its run-task fails for Fargate tasks, so the one-off tasks' outcome is a recorded answer.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "cloud/aws_deploy.h"
#include "cloud/command_runner.h"
#include "common/exec.h"
#include "render/aws_names.h"
#include "render/test_support.h"
#include "render/tool_test_support.h"

namespace adhoc::cloud {
namespace {

using nlohmann::json;

// The real runner, except for the two calls moto 5.2 cannot answer for Fargate tasks (its
// run-task fails on awsvpc networking: "NetworkInterface has no attribute private_dns_name"):
// run-task and describe-tasks get recorded answers, and the task's log lines are written to
// moto's CloudWatch Logs as the container would. The task named `fail` exits with code 1.
class MotoRunner : public CommandRunner {
 public:
  std::string fail;
  std::vector<std::string> started;
  Result<CommandResult> Run(const std::vector<std::string>& argv) override {
    std::string verb = argv.size() > 2 ? argv[1] + " " + argv[2] : "";
    if (verb == "ecs run-task") {
      std::string family = Arg(argv, "--task-definition");
      std::string name = family.substr(family.find("demo-") + 5);
      name = name.substr(0, name.find(':'));
      started.push_back(name);
      std::string arn = "arn:aws:ecs:us-east-1:123456789012:task/ublog-demo/" + name + "0001";
      std::string group = render::AwsLogGroup("demo", name);
      std::string stream = render::AwsLogStream(name, arn);
      Aws({"logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", stream});
      Aws({"logs", "put-log-events", "--log-group-name", group, "--log-stream-name", stream,
           "--log-events",
           "timestamp=" +
               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()) +
               ",message=" + name + " says hello"});
      return CommandResult{
          0, json({{"tasks", {{{"taskArn", arn}}}}, {"failures", json::array()}}).dump(), ""};
    }
    if (verb == "ecs describe-tasks") {
      std::string name = started.back();
      json task = {{"lastStatus", "STOPPED"},
                   {"stoppedReason", "Essential container in task exited"},
                   {"containers", {{{"name", name}, {"exitCode", name == fail ? 1 : 0}}}}};
      return CommandResult{0, json({{"tasks", {task}}}).dump(), ""};
    }
    return real_.Run(argv);
  }
  void Sleep(std::chrono::milliseconds d) override { real_.Sleep(d); }

  static std::string Arg(const std::vector<std::string>& argv, const std::string& flag) {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == flag) return argv[i + 1];
    return "";
  }

  json Aws(std::vector<std::string> args) {
    args.insert(args.begin(), "aws");
    args.insert(args.end(), {"--output", "json"});
    auto r = real_.Run(args);
    EXPECT_TRUE(r.ok() && r->exit_code == 0)
        << args[1] << " " << args[2] << ": " << (r.ok() ? r->err : r.error().message());
    if (!r.ok() || r->out.empty()) return json::object();
    return json::parse(r->out, nullptr, false);
  }

 private:
  SystemRunner real_;
};

class AwsDeployMotoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!render::testing::OnPath("moto_server"))
      GTEST_SKIP() << "moto_server (moto) is not installed";
    if (!render::testing::OnPath("aws")) GTEST_SKIP() << "the aws client is not installed";
    moto_ = std::make_unique<render::testing::MotoServer>();
    ASSERT_TRUE(moto_->ready()) << "moto_server did not start";
    // The client finds moto through AWS_ENDPOINT_URL, as a user's shell would set it.
    for (const auto& [k, v] : moto_->Env())
      if (k.starts_with("AWS_")) setenv(k.c_str(), v.c_str(), 1);
    unsetenv("AWS_PROFILE");

    // What `adhoc render aws` + terraform apply would have made, the parts deploy uses.
    std::string vpc =
        runner_.Aws({"ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"})["Vpc"]["VpcId"];
    std::string subnet = runner_.Aws({"ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block",
                                      "10.0.1.0/24"})["Subnet"]["SubnetId"];
    std::string sg = runner_.Aws({"ec2", "create-security-group", "--group-name", "tasks",
                                  "--description", "tasks", "--vpc-id", vpc})["GroupId"];
    runner_.Aws({"ecs", "create-cluster", "--cluster-name", "ublog-demo"});
    json network = {
        {"awsvpcConfiguration",
         {{"subnets", {subnet}}, {"securityGroups", {sg}}, {"assignPublicIp", "DISABLED"}}}};
    for (const char* process :
         {"migrate", "collectstatic", "gunicorn", "default", "beat", "web-ui"}) {
      std::string image = std::string(process) == "web-ui" ? "frontend:v2.0.0" : "backend:v1.0.0";
      json container = {{"name", process},
                        {"image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/ublog/" + image},
                        {"essential", true},
                        {"cpu", 256},
                        {"memory", 512},
                        {"environment", {{{"name", "SOURCE_TAG"}, {"value", "v1.0.0"}}}}};
      runner_.Aws({"ecs", "register-task-definition", "--family",
                   render::AwsFamily("ublog", "demo", process), "--network-mode", "awsvpc",
                   "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
                   "--container-definitions", json::array({container}).dump()});
      runner_.Aws(
          {"logs", "create-log-group", "--log-group-name", render::AwsLogGroup("demo", process)});
      if (std::string(process) == "migrate" || std::string(process) == "collectstatic") continue;
      runner_.Aws({"ecs", "create-service", "--cluster", "ublog-demo", "--service-name", process,
                   "--task-definition", render::AwsFamily("ublog", "demo", process),
                   "--desired-count", "1", "--launch-type", "FARGATE", "--network-configuration",
                   network.dump()});
    }
  }

  Result<DeployReport> Deploy(const std::string& word) {
    auto request = ParseDeployRequest(ws_.project, "demo", {word});
    EXPECT_TRUE(request.ok());
    request->poll_interval = std::chrono::milliseconds(50);
    request->stable_timeout = std::chrono::seconds(30);
    AwsDeployer deployer(runner_, [this](const std::string& line) { progress_.push_back(line); });
    return deployer.Deploy(ws_.project, *request);
  }

  std::string ServiceDefinition(const std::string& service) {
    json d =
        runner_.Aws({"ecs", "describe-services", "--cluster", "ublog-demo", "--services", service});
    return d["services"][0]["taskDefinition"];
  }

  spec::Workspace ws_ = render::testing::LoadUblog();
  std::unique_ptr<render::testing::MotoServer> moto_;
  MotoRunner runner_;
  std::vector<std::string> progress_;
};

TEST_F(AwsDeployMotoTest, BackendDeployRunsTasksThenUpdatesServices) {
  auto report = Deploy("backend=v1.1.0");
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(runner_.started, std::vector<std::string>({"migrate", "collectstatic"}));
  for (const char* s : {"gunicorn", "default", "beat"})
    EXPECT_TRUE(ServiceDefinition(s).ends_with(render::AwsFamily("ublog", "demo", s) + ":2")) << s;
  EXPECT_TRUE(ServiceDefinition("web-ui").ends_with(":1"));  // not this image
  json def =
      runner_.Aws({"ecs", "describe-task-definition", "--task-definition", "ublog-demo-gunicorn"});
  EXPECT_EQ(def["taskDefinition"]["containerDefinitions"][0]["image"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/ublog/backend:v1.1.0");
  EXPECT_EQ(def["taskDefinition"]["containerDefinitions"][0]["environment"][0]["value"], "v1.1.0");
  bool logged = false;
  for (const std::string& line : progress_) logged |= line == "  migrate | migrate says hello";
  EXPECT_TRUE(logged);
}

TEST_F(AwsDeployMotoTest, FrontendDeployWithoutTasksIsAllReal) {
  auto report = Deploy("frontend=v2.1.0");
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_TRUE(runner_.started.empty());
  EXPECT_TRUE(ServiceDefinition("web-ui").ends_with("ublog-demo-web-ui:2"));
  EXPECT_TRUE(ServiceDefinition("gunicorn").ends_with(":1"));
  json def =
      runner_.Aws({"ecs", "describe-task-definition", "--task-definition", "ublog-demo-web-ui"});
  EXPECT_EQ(def["taskDefinition"]["containerDefinitions"][0]["image"],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/ublog/frontend:v2.1.0");
}

TEST_F(AwsDeployMotoTest, AFailedMigrationStopsTheDeploy) {
  runner_.fail = "migrate";
  auto report = Deploy("backend=v1.1.0");
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message().find("before-deploy task 'migrate' failed (exit code 1)"),
            std::string::npos)
      << report.error().message();
  EXPECT_NE(report.error().message().find("migrate says hello"), std::string::npos);
  EXPECT_EQ(runner_.started, std::vector<std::string>({"migrate"}));
  for (const char* s : {"gunicorn", "default", "beat"})
    EXPECT_TRUE(ServiceDefinition(s).ends_with(":1")) << s << " was updated";
}

}  // namespace
}  // namespace adhoc::cloud
