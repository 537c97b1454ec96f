#include "cli/offline.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace adhoc::cli {

namespace fs = std::filesystem;

std::string ShownPath(const fs::path& project_dir, const std::string& relative) {
  if (project_dir.empty() || project_dir == ".") return relative;
  return (project_dir / relative).lexically_normal().string();
}

Result<spec::Loaded<spec::Workspace>> LoadProjectFolder(const fs::path& project_dir) {
  std::error_code ec;
  if (!fs::is_directory(project_dir, ec))
    return BadInput("'" + project_dir.string() + "' is not a folder");
  fs::path file = project_dir / "adhoc.toml";
  if (!fs::exists(file, ec))
    return BadInput("no adhoc.toml in " +
                    (project_dir == "." ? std::string("this folder") : project_dir.string()) +
                    ": run `adhoc init` to write one for your app (or use -C DIR)");
  return spec::LoadWorkspace(project_dir);
}

std::vector<spec::Diagnostic> DiagnosticsOf(const std::vector<spec::Diagnostic>& all,
                                            const std::vector<std::string>& files) {
  std::vector<spec::Diagnostic> out;
  for (const spec::Diagnostic& d : all)
    if (std::find(files.begin(), files.end(), d.file) != files.end()) out.push_back(d);
  return out;
}

std::optional<int> FailOnFileErrors(const Output& out,
                                    const std::vector<spec::Diagnostic>& diagnostics,
                                    const std::string& what, bool show_warnings) {
  size_t errors = 0;
  for (const spec::Diagnostic& d : diagnostics) errors += d.is_error() ? 1 : 0;
  for (const spec::Diagnostic& d : diagnostics)
    if (d.is_error() || show_warnings)
      out.Note((d.is_error() ? "error: " : "warning: ") + d.ToString());
  if (errors == 0) return std::nullopt;
  std::string message = fmt::format("{} error{} in {}", errors, errors == 1 ? "" : "s", what);
  if (out.json()) {
    out.Document({{"error",
                   {{"kind", "bad_input"},
                    {"message", message},
                    {"diagnostics", DiagnosticsJson(diagnostics)}}}});
    return 2;
  }
  return out.Fail(BadInput(message + " (listed above; `adhoc validate` checks again)"));
}

nlohmann::json DiagnosticsJson(const std::vector<spec::Diagnostic>& diagnostics) {
  nlohmann::json out = nlohmann::json::array();
  for (const spec::Diagnostic& d : diagnostics)
    out.push_back({{"severity", d.is_error() ? "error" : "warning"},
                   {"file", d.file},
                   {"line", d.line},
                   {"column", d.column},
                   {"key", d.key},
                   {"message", d.message}});
  return out;
}

Result<git::ResolvedVersion> ResolveImageVersion(const fs::path& project_dir,
                                                 const spec::Image& image, const std::string& ref) {
  ADHOC_ASSIGN_OR_RETURN(fs::path root, git::RepoRoot(project_dir));
  // git reports the top folder with symlinks resolved; so must the image folder be.
  std::error_code ec;
  fs::path folder = fs::weakly_canonical(fs::absolute(project_dir) / image.path, ec);
  if (ec) return Failed("image '" + image.name + "': " + ec.message());
  std::string relative = folder.lexically_relative(root).generic_string();
  if (relative == ".") relative = "";
  return git::ResolveVersion(root, relative, ref, image.name);
}

std::string ShortId(const std::string& id) {
  if (id.starts_with(git::kWorktreeTreePrefix)) return id;
  return id.substr(0, 7);
}

Status WriteFileAtomically(const fs::path& file, const std::string& text) {
  fs::path temporary = file;
  temporary += ".tmp-" + std::to_string(getpid());
  {
    std::ofstream stream(temporary, std::ios::binary | std::ios::trunc);
    stream << text;
    stream.flush();
    if (!stream) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      return Failed("writing " + file.string() + ": cannot write " + temporary.string());
    }
  }
  std::error_code ec;
  fs::rename(temporary, file, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    return Failed("writing " + file.string() + ": " + ec.message());
  }
  return OkStatus();
}

}  // namespace adhoc::cli
