// The input of a plan, built one way for `adhoc plan`, `adhoc up` and `adhoc deploy`: the
// user's files (adhoc.toml and this environment's env file only: a mistake in another
// environment's file never blocks this one), the version each image runs and why (the seed's
// ignore_changes: a deployed version stays until the env file's own version changes), each
// version resolved to its folder's git tree, whether its release is built, and what the
// environment runs now (the recorded side). Then the plan itself (plan/plan.h).
//
// `plan` shows exactly the steps `up` executes because both call Prepare() and run
// Prepared::plan. Reads the repository and the state store; changes nothing.
// Thread-safe as its arguments are.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/git.h"
#include "common/result.h"
#include "plan/plan.h"
#include "spec/diagnostic.h"
#include "spec/spec.h"
#include "state/store.h"

namespace adhoc::server {

struct PlanRequest {
  std::string env;
  // up and plan: the user's project folder (where adhoc.toml is). deploy: empty, the files as
  // last applied are used (a deploy changes versions only).
  std::filesystem::path project_dir;
  std::map<std::string, std::string> deploy;  // image -> ref (deploy only)
};

struct Prepared {
  std::string env;
  std::filesystem::path project_dir;  // where adhoc.toml is
  std::filesystem::path repo;         // the git repository holding it
  std::shared_ptr<const spec::Project> project;
  std::shared_ptr<const spec::EnvFile> env_file;
  std::string project_text;  // as read: recorded for restarts and deploys
  std::string env_text;
  std::vector<spec::Diagnostic> warnings;
  std::map<std::string, git::ResolvedVersion> resolved;  // image -> version
  std::optional<plan::Recorded> recorded;                // nullopt: a new environment
  plan::Wanted wanted;                                   // points into project and env_file
  plan::Plan plan;
};

// Errors: BadInput for bad files (naming file, line and key) and unknown images; NotFound for
// a missing env file, a ref or folder git does not know, or (deploy) an unknown environment.
Result<Prepared> Prepare(const PlanRequest& request, state::Store& store,
                         const std::filesystem::path& home);

// {env, create, steps: [{action, target, reason, detail}], versions: [{image, ref, commit,
// tree, source, why, release_cached}], warnings, text (the plan as `adhoc plan` prints it)}.
nlohmann::json PreparedJson(const Prepared& prepared);

}  // namespace adhoc::server
