// `adhoc plan ENV`: what `adhoc up ENV` would do, and why. The files are checked here first
// (every mistake with file, line and key); the plan itself comes from the control plane, which
// builds it with the very function `up` uses, so the plan shown is the plan `up` runs. A plan
// changes nothing: no environment, release, database or process is made.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/offline.h"
#include "common/paths.h"
#include "server/launcher.h"
#include "spec/names.h"

namespace adhoc::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ShortOf(const std::string& id) { return id.starts_with("wt-") ? id : id.substr(0, 7); }

std::string VersionLine(const json& v) {
  std::string commit =
      v.value("commit", "").empty() ? "no commit" : "commit " + ShortOf(v.value("commit", ""));
  std::string notes = v.value("release_cached", false) ? "release cached" : "release to build";
  if (v.value("dirty", false)) notes += ", uncommitted changes";
  // A version pinned in the env file needs no reason; a default or a kept deploy does.
  std::string why = v.value("why", "");
  if (!why.starts_with("envs/") || v.value("source", "") != "env file") notes += ", " + why;
  return fmt::format("  {:<10} {} -> {}, tree {} ({})", v.value("image", ""), v.value("ref", ""),
                     commit, ShortOf(v.value("tree", "")), notes);
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
  if (workspace.FindEnv(env) == nullptr) {
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

  auto client = server::EnsureControlPlane(paths::HomeDir(), server::SelfBinary());
  if (!client.ok()) return out.Fail(client.error());
  std::error_code ec;
  auto doc = client->Call("POST", "/v1/environments/" + env + "/plan",
                          {{"project", fs::canonical(fs::absolute(args.project), ec).string()}});
  if (!doc.ok()) return out.Fail(std::move(doc).error().context("plan of " + env));
  if (out.json()) {
    json shown = *doc;
    shown.erase("text");
    shown.erase("warnings");
    out.Document(shown);
    return 0;
  }
  if (!(*doc)["versions"].empty()) {
    out.Line("Versions:");
    for (const json& v : (*doc)["versions"]) out.Line(VersionLine(v));
    out.Line("");
  }
  out.Line(doc->value("text", ""));
  if (!(*doc)["steps"].empty()) out.Line("`adhoc up " + env + "` does this.");
  return 0;
}

}  // namespace adhoc::cli
