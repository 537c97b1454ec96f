#include "server/planning.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "common/paths.h"
#include "plan/recorded.h"
#include "resources/release_cache.h"
#include "spec/loader.h"
#include "spec/names.h"
#include "spec/placeholders.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Result<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path.string() + ": no such file");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Status FileErrors(const std::vector<spec::Diagnostic>& diagnostics, const std::string& what) {
  if (!spec::HasErrors(diagnostics)) return OkStatus();
  std::string text;
  int errors = 0;
  for (const auto& d : diagnostics)
    if (d.is_error()) {
      ++errors;
      text += "\n  " + d.ToString();
    }
  return BadInput(fmt::format("{} error{} in {}:{}", errors, errors == 1 ? "" : "s", what, text));
}

const char* SourceName(plan::VersionSource s) {
  switch (s) {
    case plan::VersionSource::kEnvFile:
      return "env file";
    case plan::VersionSource::kDeploy:
      return "deploy";
    case plan::VersionSource::kKept:
      return "kept";
  }
  return "?";
}

}  // namespace

Result<Prepared> Prepare(const PlanRequest& request, state::Store& store, const fs::path& home) {
  const std::string& env = request.env;
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  Prepared p;
  p.env = env;
  ADHOC_ASSIGN_OR_RETURN(auto recorded, plan::LoadRecorded(store, env));
  p.recorded = std::move(recorded);
  const std::string env_file_name = "envs/" + env + ".toml";

  if (request.project_dir.empty()) {
    // deploy: the files as they were last applied.
    ADHOC_ASSIGN_OR_RETURN(auto found, store.FindEnvironment(env));
    if (!found)
      return NotFound("no environment '" + env + "'; create it with `adhoc up " + env + "`");
    auto j = json::parse(found->spec_json, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("project_toml"))
      return Failed("'" + env + "' has no applied files recorded; run `adhoc up " + env + "`");
    p.project_text = j.value("project_toml", "");
    p.env_text = j.value("env_toml", "");
    p.project_dir = j.value("project_dir", "");
  } else {
    p.project_dir = fs::absolute(request.project_dir);
    ADHOC_ASSIGN_OR_RETURN(p.project_text, ReadText(p.project_dir / "adhoc.toml"));
    auto env_text = ReadText(p.project_dir / env_file_name);
    if (!env_text.ok())
      return BadInput(fmt::format("{}: no such file; write it with `adhoc new {}`",
                                  (p.project_dir / env_file_name).string(), env));
    p.env_text = *env_text;
  }

  // Only these two files: another environment's broken file is not this one's problem. A
  // broken adhoc.toml is reported alone (its env file would only add echoes of it).
  auto project = spec::ParseProject(p.project_text, "adhoc.toml");
  ADHOC_RETURN_IF_ERROR(FileErrors(project.diagnostics, "adhoc.toml"));
  auto env_file = spec::ParseEnvFile(p.env_text, env, env_file_name, &project.value);
  ADHOC_RETURN_IF_ERROR(FileErrors(env_file.diagnostics, env_file_name));
  for (const auto& d : project.diagnostics) p.warnings.push_back(d);
  for (const auto& d : env_file.diagnostics) p.warnings.push_back(d);
  auto owned_project = std::make_shared<spec::Project>(std::move(project.value));
  p.env_file = std::make_shared<const spec::EnvFile>(std::move(env_file.value));

  for (const auto& [image, ref] : request.deploy)
    if (!owned_project->FindImage(image)) {
      std::string names;
      for (const auto& i : owned_project->images) names += (names.empty() ? "" : ", ") + i.name;
      return BadInput(fmt::format("no image '{}' in adhoc.toml (images: {})", image, names));
    }

  // The plan names the database this environment gets.
  if (owned_project->postgres) {
    ADHOC_ASSIGN_OR_RETURN(
        p.wanted.database_name,
        spec::RenderPlaceholders(owned_project->postgres->database,
                                 std::map<std::string, std::string>{{"env", env}}));
  }
  p.project = owned_project;
  p.wanted.project = p.project.get();
  p.wanted.env_file = p.env_file.get();
  p.wanted.choices =
      plan::ChooseVersions(*p.project, *p.env_file, p.recorded, request.deploy, env_file_name);

  ADHOC_ASSIGN_OR_RETURN(p.repo, git::RepoRoot(p.project_dir));
  std::error_code ec;
  fs::path repo_canonical = fs::weakly_canonical(p.repo, ec);
  for (const auto& image : p.project->images) {
    const plan::VersionChoice& choice = p.wanted.choices.at(image.name);
    fs::path folder_abs = fs::weakly_canonical(p.project_dir / image.path, ec);
    std::string folder = folder_abs.lexically_relative(repo_canonical).string();
    if (folder == ".") folder = "";
    git::ResolvedVersion v;
    if (choice.source == plan::VersionSource::kKept) {
      const plan::Version& running = p.recorded->versions.at(image.name);
      v.ref = running.ref;
      v.folder = folder;
      v.commit = running.commit;
      v.tree = running.tree;
    } else {
      ADHOC_ASSIGN_OR_RETURN(v, git::ResolveVersion(p.repo, folder, choice.ref, image.name));
    }
    p.resolved[image.name] = v;
    // The build commands are inputs of the release too: a changed one rebuilds and rolls.
    std::string key = resources::ReleaseKey(v.tree, image.build);
    p.wanted.versions[image.name] = {v.ref, v.commit, v.tree, key.substr(v.tree.size())};
    p.wanted.release_built[image.name] =
        resources::ReleaseCache(home).IsCached(image.name, v.tree, image.build);
  }
  p.plan = plan::MakePlan(p.wanted, p.recorded);
  return p;
}

json PreparedJson(const Prepared& p) {
  json doc = plan::PlanJson(p.plan, p.env);
  json versions = json::array();
  for (const auto& image : p.project->images) {
    const auto& v = p.resolved.at(image.name);
    const auto& c = p.wanted.choices.at(image.name);
    versions.push_back({{"image", image.name},
                        {"ref", v.ref},
                        {"commit", v.commit},
                        {"tree", v.tree},
                        {"dirty", v.dirty},
                        {"source", SourceName(c.source)},
                        {"why", c.why},
                        {"release_cached", p.wanted.release_built.at(image.name)}});
  }
  doc["versions"] = versions;
  json warnings = json::array();
  for (const auto& w : p.warnings) warnings.push_back(w.ToString());
  doc["warnings"] = warnings;
  doc["text"] = plan::FormatPlan(p.plan, p.env);
  return doc;
}

}  // namespace adhoc::server
