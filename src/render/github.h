// `adhoc ci github`: GitHub Actions workflows for the project, written under
// .github/workflows/ of the output folder. Two targets:
//   a team machine running `adhoc serve` (repository variable ADHOC_SERVER, secret ADHOC_TOKEN):
//     adhoc-env.yml      create or update ENV (workflow_dispatch)
//     adhoc-deploy.yml   deploy IMAGE=VERSION to ENV
//     adhoc-destroy.yml  destroy ENV
//     adhoc-pr.yml       pr-<number>: created on open and on every push, destroyed on close
//   AWS, through `adhoc render aws`, Terraform and `adhoc deploy --target aws`, with
//   short-lived credentials from GitHub's OIDC provider (variable AWS_ROLE_ARN), never stored
//   keys:
//     aws-base.yml       state bucket and base stack: create or destroy
//     aws-images.yml     build and push every image with a dockerfile, tagged by the git ref
//     aws-env.yml        create or update ENV: apply, its database, before-deploy tasks, URL
//     aws-deploy-IMAGE.yml  one per image: new version of IMAGE in ENV (`adhoc deploy`)
//     aws-destroy.yml    drop ENV's database, destroy its stack, delete its workspace
//     aws-pr.yml         pr-<number> on AWS: open/push creates or updates, close destroys
// Every workflow ends by printing the environment's URL and commands (or what it removed).
// The runner needs the `adhoc` binary on PATH (a self-hosted runner, or the team machine).
// Same input, byte-identical output. Thread-safe: a pure function.
#pragma once

#include "common/result.h"
#include "render/files.h"
#include "spec/spec.h"

namespace adhoc::render {

Result<RenderedFiles> RenderGithub(const spec::Project& project);

}  // namespace adhoc::render
