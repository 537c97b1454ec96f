// `adhoc plan ENV`: what `adhoc up ENV` would do, computed on this machine from the user's
// files, the git repository, the release cache and (when there is one) the state store. It
// never creates anything: no home, no state file, no control plane.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/offline.h"
#include "common/paths.h"
#include "plan/plan.h"
#include "plan/recorded.h"
#include "resources/release_cache.h"
#include "spec/names.h"
#include "spec/placeholders.h"
#include "state/store.h"

namespace adhoc::cli {

namespace {

namespace fs = std::filesystem;

constexpr char kDefaultRef[] = "HEAD";

struct ImageVersion {
  std::string image;
  resources::ResolvedVersion resolved;
  bool defaulted = false;  // the env file names no version: HEAD
  bool release_built = false;
};

// The recorded side, read only when a state file exists: a plan must not create one.
Result<std::optional<plan::Recorded>> ReadRecorded(const fs::path& home, const std::string& env) {
  std::error_code ec;
  if (!fs::exists(paths::StateDb(home), ec)) return std::optional<plan::Recorded>();
  ADHOC_ASSIGN_OR_RETURN(std::unique_ptr<state::Store> store,
                         state::Store::Open(paths::StateDb(home)));
  return plan::LoadRecorded(*store, env);
}

std::string VersionLine(const ImageVersion& v) {
  const resources::ResolvedVersion& r = v.resolved;
  std::string commit = r.commit.empty() ? "no commit" : "commit " + ShortId(r.commit);
  std::string notes = v.release_built ? "release cached" : "release to build";
  if (r.dirty) notes += ", uncommitted changes";
  if (v.defaulted) notes += ", no version in the env file";
  return fmt::format("  {:<10} {} -> {}, tree {} ({})", v.image, r.ref, commit, ShortId(r.tree),
                     notes);
}

}  // namespace

int RunPlan(const Args& args, const Output& out) {
  const std::string& env = args.env;
  Status name_ok = spec::ValidateEnvName(env);
  if (!name_ok.ok()) return out.Fail(name_ok.error());

  Result<spec::Loaded<spec::Workspace>> loaded = LoadProjectFolder(args.project);
  if (!loaded.ok()) return out.Fail(loaded.error());
  const spec::Workspace& workspace = loaded->value;
  const std::string relative = "envs/" + env + ".toml";
  const spec::EnvFile* env_file = workspace.FindEnv(env);
  if (env_file == nullptr) {
    std::string message = ShownPath(args.project, relative) + " does not exist";
    if (workspace.envs.empty()) {
      message += "; there are no env files yet: `adhoc new " + env +
                 " --version IMAGE=REF ...` writes one";
    } else {
      std::string names;
      for (const spec::EnvFile& e : workspace.envs) names += (names.empty() ? "" : ", ") + e.name;
      message += "; environments with a file: " + names;
    }
    return out.Fail(BadInput(message));
  }
  // Mistakes in other environments' files do not stop a plan of this one.
  if (std::optional<int> failed = FailOnFileErrors(
          out, DiagnosticsOf(loaded->diagnostics, {"adhoc.toml", relative}),
          ShownPath(args.project, "adhoc.toml") + " or " + ShownPath(args.project, relative),
          /*show_warnings=*/true))
    return *failed;

  // The plan names the database this environment gets, not the template it comes from.
  spec::Project project = workspace.project;
  if (project.postgres) {
    Result<std::string> database =
        spec::RenderPlaceholders(project.postgres->database, {{"env", env}});
    if (!database.ok()) return out.Fail(std::move(database).error().context("[postgres] database"));
    project.postgres->database = *database;
  }

  const fs::path home = paths::HomeDir();
  std::vector<ImageVersion> versions;
  plan::Wanted wanted;
  wanted.project = &project;
  wanted.env_file = env_file;
  for (const spec::Image& image : project.images) {
    const std::string* pinned = env_file->FindVersion(image.name);
    ImageVersion v;
    v.image = image.name;
    v.defaulted = pinned == nullptr;
    Result<resources::ResolvedVersion> resolved =
        ResolveImageVersion(args.project, image, pinned ? *pinned : kDefaultRef);
    if (!resolved.ok()) return out.Fail(std::move(resolved).error().context("plan of " + env));
    v.resolved = *resolved;
    std::error_code ec;
    v.release_built = fs::exists(
        paths::Release(home, image.name, v.resolved.tree) / resources::ReleaseCache::kMarkerFile,
        ec);
    wanted.versions[image.name] = {v.resolved.ref, v.resolved.commit, v.resolved.tree};
    wanted.release_built[image.name] = v.release_built;
    versions.push_back(std::move(v));
  }

  Result<std::optional<plan::Recorded>> recorded = ReadRecorded(home, env);
  if (!recorded.ok())
    return out.Fail(std::move(recorded).error().context("reading what " + env + " runs now"));
  plan::Plan made = plan::MakePlan(wanted, *recorded);

  if (out.json()) {
    nlohmann::json doc = plan::PlanJson(made, env);
    nlohmann::json list = nlohmann::json::array();
    for (const ImageVersion& v : versions)
      list.push_back({{"image", v.image},
                      {"ref", v.resolved.ref},
                      {"commit", v.resolved.commit},
                      {"tree", v.resolved.tree},
                      {"dirty", v.resolved.dirty},
                      {"defaulted", v.defaulted},
                      {"release_cached", v.release_built}});
    doc["versions"] = list;
    out.Document(doc);
    return 0;
  }
  if (!versions.empty()) {
    out.Line("Versions:");
    for (const ImageVersion& v : versions) out.Line(VersionLine(v));
    out.Line("");
  }
  out.Line(plan::FormatPlan(made, env));
  if (!made.empty()) out.Line("`adhoc up " + env + "` does this.");
  return 0;
}

}  // namespace adhoc::cli
