#include "render/github.h"

#include <string>
#include <vector>

#include "render/yaml.h"

namespace adhoc::render {

namespace {

const char kCheckout[] = "actions/checkout@v4";
const char kAwsCredentials[] = "aws-actions/configure-aws-credentials@v4";
const char kSetupTerraform[] = "hashicorp/setup-terraform@v3";
const char kEcrLogin[] = "aws-actions/amazon-ecr-login@v2";

// The shell line that turns a git ref into the image tag `adhoc render aws` uses.
const char kTagOf[] = "tag_of() { printf '%s' \"$1\" | tr -c 'A-Za-z0-9_.-' '-'; }";

ojson EnvInput(const std::string& description) {
  return {{"description", description}, {"required", true}, {"type", "string"}};
}

ojson Step(const std::string& name, const std::string& run) {
  return {{"name", name}, {"run", run}};
}

ojson Uses(const std::string& name, const std::string& action, ojson with = ojson()) {
  ojson step = {{"name", name}, {"uses", action}};
  if (!with.is_null()) step["with"] = with;
  return step;
}

ojson NeedAdhoc() {
  return Step("adhoc on this runner",
              "command -v adhoc >/dev/null || { echo \"::error::adhoc is not on PATH of this "
              "runner (use a self-hosted runner that has it)\"; exit 1; }\nadhoc version\n");
}

// A workflow: name, triggers, top-level env and permissions, jobs.
ojson Workflow(const std::string& name, ojson on, ojson permissions, ojson env, ojson jobs) {
  ojson w = {{"name", name}, {"on", on}, {"permissions", permissions}};
  if (!env.is_null()) w["env"] = env;
  w["jobs"] = jobs;
  return w;
}

ojson MachineEnv() {
  return {{"ADHOC_SERVER", "${{ vars.ADHOC_SERVER }}"},
          {"ADHOC_TOKEN", "${{ secrets.ADHOC_TOKEN }}"}};
}

ojson Job(ojson steps, const std::string& concurrency = "") {
  ojson job = {{"runs-on", "${{ vars.ADHOC_RUNNER || 'ubuntu-latest' }}"}};
  if (!concurrency.empty())
    job["concurrency"] = {{"group", concurrency}, {"cancel-in-progress", false}};
  job["steps"] = steps;
  return job;
}

class GithubWriter {
 public:
  explicit GithubWriter(const spec::Project& p) : p_(p) {}

  RenderedFiles Write() const {
    RenderedFiles files;
    auto add = [&](const std::string& name, const ojson& workflow) {
      files.push_back({".github/workflows/" + name,
                       "# Written by `adhoc ci github` from adhoc.toml; render again rather than "
                       "edit.\n" +
                           ToYaml(workflow)});
    };
    add("adhoc-env.yml", MachineEnvWorkflow());
    add("adhoc-deploy.yml", MachineDeploy());
    add("adhoc-destroy.yml", MachineDestroy());
    add("adhoc-pr.yml", MachinePr());
    if (p_.targets.aws) {
      add("aws-base.yml", AwsBase());
      add("aws-images.yml", AwsImages());
      add("aws-env.yml", AwsEnv());
      for (const spec::Image& image : p_.images)
        add("aws-deploy-" + image.name + ".yml", AwsDeploy(image));
      add("aws-destroy.yml", AwsDestroy());
      add("aws-pr.yml", AwsPr());
    }
    return files;
  }

 private:
  // ---- a team machine running `adhoc serve` ----------------------------------------------
  ojson MachineEnvWorkflow() const {
    ojson on = {
        {"workflow_dispatch", {{"inputs", {{"env", EnvInput("environment (envs/ENV.toml)")}}}}}};
    ojson steps = {Uses("checkout", kCheckout), NeedAdhoc(),
                   Step("create or update", "adhoc up \"$ENV_NAME\"\n")};
    steps[2]["env"] = {{"ENV_NAME", "${{ inputs.env }}"}};
    return Workflow("adhoc: create or update an environment", on, {{"contents", "read"}},
                    MachineEnv(), {{"up", Job(steps, "adhoc-${{ inputs.env }}")}});
  }

  ojson MachineDeploy() const {
    ojson on = {{"workflow_dispatch",
                 {{"inputs",
                   {{"env", EnvInput("environment")},
                    {"image",
                     {{"description", "image"},
                      {"required", true},
                      {"type", "choice"},
                      {"options", ImageNames()}}},
                    {"version", EnvInput("git ref of the image")}}}}}};
    ojson deploy = Step(
        "deploy", "adhoc deploy \"$ENV_NAME\" \"$IMAGE=$VERSION\"\nadhoc status \"$ENV_NAME\"\n");
    deploy["env"] = {{"ENV_NAME", "${{ inputs.env }}"},
                     {"IMAGE", "${{ inputs.image }}"},
                     {"VERSION", "${{ inputs.version }}"}};
    return Workflow("adhoc: deploy a version", on, {{"contents", "read"}}, MachineEnv(),
                    {{"deploy", Job({Uses("checkout", kCheckout), NeedAdhoc(), deploy},
                                    "adhoc-${{ inputs.env }}")}});
  }

  ojson MachineDestroy() const {
    ojson on = {{"workflow_dispatch", {{"inputs", {{"env", EnvInput("environment")}}}}}};
    ojson destroy = Step("destroy",
                         "adhoc destroy \"$ENV_NAME\"\necho \"$ENV_NAME destroyed: processes, "
                         "routes, database, role and folders\"\n");
    destroy["env"] = {{"ENV_NAME", "${{ inputs.env }}"}};
    return Workflow("adhoc: destroy an environment", on, {{"contents", "read"}}, MachineEnv(),
                    {{"destroy", Job({Uses("checkout", kCheckout), NeedAdhoc(), destroy},
                                     "adhoc-${{ inputs.env }}")}});
  }

  std::string NewPrEnv() const {
    std::string versions;
    for (const spec::Image& image : p_.images) versions += " --version " + image.name + "=\"$SHA\"";
    return "adhoc new \"$ENV_NAME\"" + versions + " --owner \"$OWNER\" --ttl 7d --force\n";
  }

  ojson PrTriggers() const {
    return {{"pull_request", {{"types", {"opened", "synchronize", "reopened", "closed"}}}}};
  }

  ojson PrEnv() const {
    return {{"ENV_NAME", "pr-${{ github.event.pull_request.number }}"},
            {"SHA", "${{ github.event.pull_request.head.sha }}"},
            {"OWNER", "${{ github.event.pull_request.user.login }}"}};
  }

  ojson MachinePr() const {
    ojson up = Step("create or update pr-N", NewPrEnv() + "adhoc up \"$ENV_NAME\"\n");
    up["if"] = "github.event.action != 'closed'";
    up["env"] = PrEnv();
    ojson down = Step("destroy pr-N", "adhoc destroy \"$ENV_NAME\"\n");
    down["if"] = "github.event.action == 'closed'";
    down["env"] = PrEnv();
    ojson checkout =
        Uses("checkout", kCheckout, {{"ref", "${{ github.event.pull_request.head.sha }}"}});
    return Workflow("adhoc: an environment per pull request", PrTriggers(), {{"contents", "read"}},
                    MachineEnv(),
                    {{"pr", Job({checkout, NeedAdhoc(), up, down},
                                "adhoc-pr-${{ github.event.pull_request.number }}")}});
  }

  std::vector<std::string> ImageNames() const {
    std::vector<std::string> out;
    for (const spec::Image& i : p_.images) out.push_back(i.name);
    return out;
  }

  // ---- AWS ---------------------------------------------------------------------------------
  ojson AwsPermissions() const { return {{"id-token", "write"}, {"contents", "read"}}; }

  ojson AwsCredentials() const {
    return Uses(
        "AWS credentials (OIDC, no stored keys)", kAwsCredentials,
        {{"role-to-assume", "${{ vars.AWS_ROLE_ARN }}"}, {"aws-region", p_.targets.aws->region}});
  }

  ojson AwsSetup() const {
    return {Uses("checkout", kCheckout), AwsCredentials(),
            Uses("terraform", kSetupTerraform, {{"terraform_wrapper", false}}), NeedAdhoc()};
  }

  static ojson Steps(ojson head, std::vector<ojson> more) {
    for (ojson& s : more) head.push_back(std::move(s));
    return head;
  }

  ojson AwsBase() const {
    ojson on = {{"workflow_dispatch",
                 {{"inputs",
                   {{"action",
                     {{"description", "create or destroy the shared base"},
                      {"required", true},
                      {"type", "choice"},
                      {"options", {"create", "destroy"}}}}}}}}};
    ojson create =
        Step("create or update the base",
             "adhoc render aws -o infra\n"
             "cd infra/base   # the state bucket (infra/bootstrap) is applied once, by hand\n"
             "terraform init -input=false\n"
             "terraform apply -input=false -auto-approve\n"
             "terraform output\n");
    create["if"] = "inputs.action == 'create'";
    ojson destroy = Step("destroy the base",
                         "adhoc render aws -o infra\n"
                         "cd infra/base\n"
                         "terraform init -input=false\n"
                         "terraform destroy -input=false -auto-approve\n"
                         "echo 'base destroyed (the state bucket and lock table are kept)'\n");
    destroy["if"] = "inputs.action == 'destroy'";
    return Workflow("aws: shared base", on, AwsPermissions(), ojson(),
                    {{"base", Job(Steps(AwsSetup(), {create, destroy}), "aws-base")}});
  }

  ojson AwsImages() const {
    ojson on = {{"push", {{"tags", {"*"}}}},
                {"workflow_dispatch", {{"inputs", {{"ref", EnvInput("git ref to build")}}}}}};
    ojson steps = {Uses("checkout", kCheckout, {{"ref", "${{ inputs.ref || github.ref }}"}}),
                   AwsCredentials(), Uses("ECR login", kEcrLogin)};
    for (const spec::Image& image : p_.images) {
      if (image.dockerfile.empty()) continue;
      ojson s = Step("build and push " + image.name, std::string(kTagOf) +
                                                         "\n"
                                                         "tag=$(tag_of \"$REF\")\n"
                                                         "image=\"$REGISTRY/" +
                                                         p_.name + "/" + image.name +
                                                         ":$tag\"\n"
                                                         "docker build -f " +
                                                         image.dockerfile + " -t \"$image\" " +
                                                         image.path +
                                                         "\n"
                                                         "docker push \"$image\"\n"
                                                         "echo \"pushed $image\"\n");
      s["env"] = {{"REF", "${{ inputs.ref || github.ref_name }}"},
                  {"REGISTRY", p_.targets.aws->registry}};
      steps.push_back(s);
    }
    return Workflow("aws: build and push images", on, AwsPermissions(), ojson(),
                    {{"images", Job(steps)}});
  }

  // Apply ENV's stack, create its database, run the before-deploy tasks, print the commands.
  std::string ApplyScript() const {
    return "cd infra/environment\n"
           "terraform init -input=false\n"
           "terraform workspace select -or-create \"$ENV_NAME\"\n"
           "terraform apply -input=false -auto-approve -var-file=\"envs/$ENV_NAME.tfvars.json\"\n"
           "eval \"$(terraform output -raw create_database_command)\"\n"
           "eval \"$(terraform output -raw before_deploy_command)\"\n"
           "echo \"URL:      $(terraform output -raw url)\"\n"
           "echo \"shell:    $(terraform output -raw ecs_exec_command)\"\n"
           "echo \"migrate:  adhoc deploy $ENV_NAME backend=<version> --target aws\"\n";
  }

  ojson AwsEnv() const {
    ojson on = {
        {"workflow_dispatch", {{"inputs", {{"env", EnvInput("environment (envs/ENV.toml)")}}}}}};
    ojson apply =
        Step("create or update", "adhoc render aws \"$ENV_NAME\" -o infra\n" + ApplyScript());
    apply["env"] = {{"ENV_NAME", "${{ inputs.env }}"}};
    return Workflow("aws: create or update an environment", on, AwsPermissions(), ojson(),
                    {{"env", Job(Steps(AwsSetup(), {apply}), "aws-${{ inputs.env }}")}});
  }

  ojson AwsDeploy(const spec::Image& image) const {
    ojson on = {
        {"workflow_dispatch",
         {{"inputs",
           {{"env", EnvInput("environment")},
            {"version", EnvInput("git ref of " + image.name + " (its image must be pushed)")}}}}}};
    ojson deploy = Step("deploy " + image.name, "adhoc deploy \"$ENV_NAME\" \"" + image.name +
                                                    "=$VERSION\" --target aws\n");
    deploy["env"] = {{"ENV_NAME", "${{ inputs.env }}"}, {"VERSION", "${{ inputs.version }}"}};
    ojson steps = {Uses("checkout", kCheckout), AwsCredentials(), NeedAdhoc(), deploy};
    return Workflow("aws: deploy " + image.name, on, AwsPermissions(), ojson(),
                    {{"deploy", Job(steps, "aws-${{ inputs.env }}")}});
  }

  std::string DestroyScript() const {
    return "cd infra/environment\n"
           "terraform init -input=false\n"
           "terraform workspace select \"$ENV_NAME\"\n"
           "eval \"$(terraform output -raw drop_database_command)\"\n"
           "terraform destroy -input=false -auto-approve -var-file=\"envs/$ENV_NAME.tfvars.json\"\n"
           "terraform workspace select default\n"
           "terraform workspace delete \"$ENV_NAME\"\n"
           "echo \"$ENV_NAME destroyed: its services, database, role, bucket and rules are "
           "gone\"\n";
  }

  ojson AwsDestroy() const {
    ojson on = {{"workflow_dispatch", {{"inputs", {{"env", EnvInput("environment")}}}}}};
    ojson destroy = Step("destroy", "adhoc render aws \"$ENV_NAME\" -o infra\n" + DestroyScript());
    destroy["env"] = {{"ENV_NAME", "${{ inputs.env }}"}};
    return Workflow("aws: destroy an environment", on, AwsPermissions(), ojson(),
                    {{"destroy", Job(Steps(AwsSetup(), {destroy}), "aws-${{ inputs.env }}")}});
  }

  ojson AwsPr() const {
    // pr-N takes the lowest slot that no env file and no rule of the shared listener holds.
    std::string pick_slot =
        "listener=$(cd infra/base && terraform init -input=false >/dev/null && terraform output "
        "-raw https_listener_arn)\n"
        "used=$(aws elbv2 describe-rules --listener-arn \"$listener\" --query 'Rules[].Priority' "
        "--output text "
        "| tr '\\t' '\\n' | grep -E '^[0-9]+$' | awk '{print int($1/100)}' | sort -un)\n"
        "slot=1\n"
        "while echo \"$used\" | grep -qx \"$slot\" || grep -qsx \"slot = $slot.*\" envs/*.toml; do "
        "slot=$((slot+1)); done\n"
        "printf '\\n[targets.aws]\\nslot = %s\\n' \"$slot\" >> \"envs/$ENV_NAME.toml\"\n";
    ojson up = Step("create or update pr-N",
                    NewPrEnv() + "adhoc render aws -o infra\n" + pick_slot +
                        "adhoc render aws \"$ENV_NAME\" -o infra\n" + ApplyScript());
    up["if"] = "github.event.action != 'closed'";
    up["env"] = PrEnv();
    ojson down = Step("destroy pr-N",
                      NewPrEnv() + "adhoc render aws \"$ENV_NAME\" -o infra\n" + DestroyScript());
    down["if"] = "github.event.action == 'closed'";
    down["env"] = PrEnv();
    ojson images =
        Step("images of this commit",
             "echo 'aws-images.yml builds images on tags; for pull requests build them here or "
             "point the versions at pushed tags'\n");
    ojson steps = {
        Uses("checkout", kCheckout, {{"ref", "${{ github.event.pull_request.head.sha }}"}}),
        AwsCredentials(), Uses("terraform", kSetupTerraform, {{"terraform_wrapper", false}}),
        NeedAdhoc(), Uses("ECR login", kEcrLogin)};
    for (const spec::Image& image : p_.images) {
      if (image.dockerfile.empty()) continue;
      ojson s = Step("build and push " + image.name + " at the pull request's commit",
                     "image=\"$REGISTRY/" + p_.name + "/" + image.name +
                         ":$SHA\"\n"
                         "docker build -f " +
                         image.dockerfile + " -t \"$image\" " + image.path +
                         "\n"
                         "docker push \"$image\"\n");
      s["if"] = "github.event.action != 'closed'";
      s["env"] = {{"SHA", "${{ github.event.pull_request.head.sha }}"},
                  {"REGISTRY", p_.targets.aws->registry}};
      steps.push_back(s);
    }
    steps.push_back(up);
    steps.push_back(down);
    return Workflow("aws: an environment per pull request", PrTriggers(), AwsPermissions(), ojson(),
                    {{"pr", Job(steps, "aws-pr-${{ github.event.pull_request.number }}")}});
  }

  const spec::Project& p_;
};

}  // namespace

Result<RenderedFiles> RenderGithub(const spec::Project& project) {
  return GithubWriter(project).Write();
}

}  // namespace adhoc::render
