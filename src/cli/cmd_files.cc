// `adhoc init`, `adhoc validate` and `adhoc new`: the commands that write or check the user's
// files. They read the project folder and its git repository only; nothing under the home.
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>

#include "cli/commands.h"
#include "cli/offline.h"
#include "spec/duration.h"
#include "spec/env_file_writer.h"
#include "spec/init.h"
#include "spec/loader.h"
#include "spec/names.h"

namespace adhoc::cli {

namespace {

namespace fs = std::filesystem;

constexpr char kDefaultTtl[] = "3d";
constexpr char kDefaultRef[] = "HEAD";

std::string Plural(size_t n, const std::string& word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

template <typename T>
std::vector<std::string> NamesOf(const std::vector<T>& items) {
  std::vector<std::string> names;
  for (const T& item : items) names.push_back(item.name);
  return names;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string Listed(size_t n, const std::string& word, const std::vector<std::string>& names) {
  std::string out = Plural(n, word);
  if (!names.empty()) out += " (" + JoinNames(names) + ")";
  return out;
}

// `adhoc new demo --version backend=HEAD --version frontend=HEAD`.
std::string NewCommandExample(const spec::Project& project, const std::string& env) {
  std::string out = "adhoc new " + env;
  for (const spec::Image& image : project.images) out += " --version " + image.name + "=HEAD";
  return out;
}

}  // namespace

int RunInit(const Args& args, const Output& out) {
  const fs::path& dir = args.project;
  const fs::path file = dir / "adhoc.toml";
  const std::string shown = ShownPath(dir, "adhoc.toml");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return out.Fail(BadInput("'" + dir.string() + "' is not a folder"));
  if (fs::exists(fs::symlink_status(file, ec)) && !args.force)
    return out.Fail(BadInput(shown + " already exists: `adhoc validate` checks it, "
                                     "`adhoc init --force` replaces it"));

  Result<std::string> text = spec::DetectProject(dir);
  if (!text.ok()) {
    const Error& error = text.error();
    if (error.kind() != ErrorKind::kNotFound) return out.Fail(error);
    return out.Fail(Error(error.kind(), error.message() +
                                            "; write adhoc.toml by hand for other apps "
                                            "(docs/files.md describes every key)"));
  }
  // What was detected, from the text itself: the generated file is the single source.
  spec::Loaded<spec::Project> detected = spec::ParseProject(*text, shown);
  if (!detected.ok())
    return out.Fail(Failed("the detected adhoc.toml does not load (a bug in adhoc init):\n" +
                           spec::FormatDiagnostics(detected.diagnostics)));
  Status written = WriteFileAtomically(file, *text);
  if (!written.ok()) return out.Fail(written.error());

  const spec::Project& p = detected.value;
  if (out.json()) {
    nlohmann::json images = nlohmann::json::array();
    for (const spec::Image& image : p.images)
      images.push_back({{"name", image.name}, {"path", image.path}});
    out.Document({{"written", fs::absolute(file).lexically_normal().string()},
                  {"detected",
                   {{"project", p.name},
                    {"images", images},
                    {"services", NamesOf(p.services)},
                    {"tasks", NamesOf(p.tasks)},
                    {"postgres", p.postgres.has_value()},
                    {"redis", p.redis.has_value()},
                    {"static", p.static_files.has_value()}}}});
    return 0;
  }
  std::vector<std::string> image_words;
  for (const spec::Image& image : p.images)
    image_words.push_back(image.name + " from " +
                          (image.path == "." ? "the root" : image.path + "/"));
  out.Line(fmt::format("Detected project '{}': {}.", p.name,
                       Listed(p.images.size(), "image", image_words)));
  out.Line("  " + Listed(p.services.size(), "service", NamesOf(p.services)));
  out.Line("  " + Listed(p.tasks.size(), "task", NamesOf(p.tasks)));
  std::vector<std::string> per_env;
  if (p.postgres) per_env.push_back("a PostgreSQL database");
  if (p.redis) per_env.push_back("a Redis");
  if (p.static_files) per_env.push_back("a static/media folder");
  if (!per_env.empty()) out.Line("  per environment: " + JoinNames(per_env));
  out.Line("Wrote " + shown + ". Next:");
  out.Line("  review it (commands, [env]), then `adhoc validate`");
  out.Line("  " + NewCommandExample(p, "demo"));
  out.Line("  adhoc plan demo");
  out.Line("  adhoc up demo");
  return 0;
}

int RunValidate(const Args& args, const Output& out) {
  Result<spec::Loaded<spec::Workspace>> loaded = LoadProjectFolder(args.project);
  if (!loaded.ok()) return out.Fail(loaded.error());
  const std::vector<spec::Diagnostic>& diagnostics = loaded->diagnostics;
  size_t errors = 0, warnings = 0;
  for (const spec::Diagnostic& d : diagnostics) (d.is_error() ? errors : warnings)++;
  size_t env_files = loaded->value.envs.size();

  if (out.json()) {
    std::vector<std::string> files = {"adhoc.toml"};
    for (const spec::EnvFile& e : loaded->value.envs) files.push_back("envs/" + e.name + ".toml");
    out.Document({{"valid", errors == 0},
                  {"errors", errors},
                  {"warnings", warnings},
                  {"files", files},
                  {"diagnostics", DiagnosticsJson(diagnostics)}});
    return errors == 0 ? 0 : 2;
  }
  for (const spec::Diagnostic& d : diagnostics)
    out.Line((d.is_error() ? "error: " : "warning: ") + d.ToString());
  std::string warned = warnings ? " (" + Plural(warnings, "warning") + ")" : "";
  if (errors > 0)
    return out.Fail(BadInput(Plural(errors, "error") + warned + " in " +
                             ShownPath(args.project, "adhoc.toml") + " and " +
                             Plural(env_files, "env file")));
  if (env_files == 0)
    out.Line("adhoc.toml is valid" + warned + "; no env files yet (`" +
             NewCommandExample(loaded->value.project, "demo") + "` writes one)");
  else
    out.Line("adhoc.toml and " + Plural(env_files, "env file") + (env_files == 1 ? " is" : " are") +
             " valid" + warned);
  return 0;
}

int RunNew(const Args& args, const Output& out) {
  const std::string& env = args.env;
  Status name_ok = spec::ValidateEnvName(env);
  if (!name_ok.ok()) return out.Fail(name_ok.error());

  Result<spec::Loaded<spec::Workspace>> loaded = LoadProjectFolder(args.project);
  if (!loaded.ok()) return out.Fail(loaded.error());
  const spec::Project& project = loaded->value.project;
  // Warnings about adhoc.toml do not concern the env file written here: errors only.
  if (std::optional<int> failed =
          FailOnFileErrors(out, DiagnosticsOf(loaded->diagnostics, {"adhoc.toml"}),
                           ShownPath(args.project, "adhoc.toml"), /*show_warnings=*/false))
    return *failed;

  // --version IMAGE=REF, each naming an image of adhoc.toml once.
  std::map<std::string, std::string> asked;
  std::vector<std::string> image_names = NamesOf(project.images);
  for (const std::string& word : args.versions) {
    size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == word.size())
      return out.Fail(
          BadInput("--version '" + word + "': expected IMAGE=REF, e.g. --version backend=v1.0.0"));
    std::string image = word.substr(0, eq);
    if (!project.FindImage(image))
      return out.Fail(
          BadInput("--version '" + word + "': no image '" + image + "' in adhoc.toml" +
                   (image_names.empty() ? std::string(" (it defines none)")
                                        : " (images: " + JoinNames(image_names) + ")")));
    if (!asked.emplace(image, word.substr(eq + 1)).second)
      return out.Fail(BadInput("--version: image '" + image + "' is given twice"));
  }

  std::string ttl_text = args.ttl.empty() ? kDefaultTtl : args.ttl;
  // "never": kept until destroyed by hand (0s in the env file's struct, spec.h).
  Result<spec::Seconds> ttl =
      ttl_text == "never" ? spec::Seconds(0) : spec::ParseDuration(ttl_text);
  if (!ttl.ok()) return out.Fail(std::move(ttl).error().context("--ttl (or \"never\")"));
  if (ttl->count() == 0 && ttl_text != "never")
    return out.Fail(BadInput("--ttl: must be longer than 0s (or \"never\")"));
  const std::string ttl_shown = ttl->count() == 0 ? "never" : spec::FormatDuration(*ttl);

  std::string owner = args.owner;
  if (owner.empty()) {
    const char* user = std::getenv("USER");
    owner = user && *user ? user : "unknown";
  }

  const std::string relative = "envs/" + env + ".toml";
  const std::string shown = ShownPath(args.project, relative);
  const fs::path file = args.project / "envs" / (env + ".toml");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(file, ec)) && !args.force)
    return out.Fail(BadInput(shown + " already exists: `adhoc plan " + env +
                             "` shows it, `adhoc new " + env + " --force ...` replaces it"));

  // Every version must resolve now, so the file never names a ref the repository lacks.
  spec::EnvFile env_file;
  env_file.name = env;
  env_file.owner = owner;
  env_file.ttl = *ttl;
  nlohmann::json versions_json = nlohmann::json::array();
  std::vector<std::string> version_lines;
  for (const spec::Image& image : project.images) {
    auto it = asked.find(image.name);
    bool defaulted = it == asked.end();
    std::string ref = defaulted ? kDefaultRef : it->second;
    Result<git::ResolvedVersion> resolved = ResolveImageVersion(args.project, image, ref);
    if (!resolved.ok())
      return out.Fail(std::move(resolved).error().context(shown + " not written"));
    if (defaulted)
      out.Note("note: no --version for image '" + image.name + "': using " + kDefaultRef +
               " (commit " + ShortId(resolved->commit) + ")");
    env_file.versions.push_back({image.name, ref, {}});
    versions_json.push_back({{"image", image.name},
                             {"ref", ref},
                             {"commit", resolved->commit},
                             {"tree", resolved->tree},
                             {"defaulted", defaulted}});
    std::string commit =
        resolved->commit.empty() ? "no commit" : "commit " + ShortId(resolved->commit);
    version_lines.push_back(fmt::format("  {:<10} {} -> {}, tree {}{}", image.name, ref, commit,
                                        ShortId(resolved->tree),
                                        resolved->dirty ? " (uncommitted changes)" : ""));
  }

  // The file must read back clean before it replaces anything.
  std::string text = spec::RenderEnvFile(env_file);
  spec::Loaded<spec::EnvFile> check = spec::ParseEnvFile(text, env, relative, &project);
  if (!check.ok())
    return out.Fail(BadInput(shown + " not written: it would not load:\n" +
                             spec::FormatDiagnostics(check.diagnostics)));
  fs::create_directories(file.parent_path(), ec);
  if (ec) return out.Fail(Failed("creating " + file.parent_path().string() + ": " + ec.message()));
  Status written = WriteFileAtomically(file, text);
  if (!written.ok()) return out.Fail(written.error());

  if (out.json()) {
    out.Document({{"written", fs::absolute(file).lexically_normal().string()},
                  {"env", env},
                  {"owner", owner},
                  {"ttl", ttl_shown},
                  {"versions", versions_json}});
    return 0;
  }
  out.Line(fmt::format("Wrote {} (owner {}, ttl {}):", shown, owner, ttl_shown));
  for (const std::string& line : version_lines) out.Line(line);
  out.Line("Next: `adhoc plan " + env + "` shows what it would create, `adhoc up " + env +
           "` creates it. Commit the file so the team sees the environment.");
  return 0;
}

}  // namespace adhoc::cli
