// Pieces shared by the offline commands (init, validate, new, plan): the ones that read the
// user's files and the git repository on this machine and need no control plane.
// Thread-safe: no shared state (each call runs git through common/exec.h).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/output.h"
#include "common/git.h"
#include "common/result.h"
#include "spec/diagnostic.h"
#include "spec/loader.h"

namespace adhoc::cli {

// How a file of the project folder is named in messages: "adhoc.toml" when the folder is
// the current one, else "<dir>/adhoc.toml", so the user can open what a message names.
std::string ShownPath(const std::filesystem::path& project_dir, const std::string& relative);

// The workspace of `project_dir` (spec::LoadWorkspace), or a BadInput error when it has no
// adhoc.toml ("... run `adhoc init` to write one").
Result<spec::Loaded<spec::Workspace>> LoadProjectFolder(const std::filesystem::path& project_dir);

// Only the diagnostics of the named files ("adhoc.toml", "envs/demo.toml"), in their order.
std::vector<spec::Diagnostic> DiagnosticsOf(const std::vector<spec::Diagnostic>& all,
                                            const std::vector<std::string>& files);

// When `diagnostics` hold an error, reports the files' problems and returns the exit status
// (2): as text, every diagnostic on stderr then "adhoc: N errors in <what>"; with --json, one
// {"error": {kind, message, diagnostics}} document. nullopt when there is no error; warnings
// are then shown on stderr only if `show_warnings`.
std::optional<int> FailOnFileErrors(const Output& out,
                                    const std::vector<spec::Diagnostic>& diagnostics,
                                    const std::string& what, bool show_warnings);

// {severity, file, line, column, key, message} objects, in the order given.
nlohmann::json DiagnosticsJson(const std::vector<spec::Diagnostic>& diagnostics);

// `ref` of `image` resolved in the git repository holding `project_dir`; the image's path
// is relative to `project_dir` (where adhoc.toml is), which need not be the repository root.
Result<git::ResolvedVersion> ResolveImageVersion(const std::filesystem::path& project_dir,
                                                 const spec::Image& image, const std::string& ref);

// "9c1e2f3" for a commit or tree id, the whole key for a "wt-..." working-tree key.
std::string ShortId(const std::string& id);

// Writes `text` to `file` through a temporary file in the same folder and a rename, so the
// file is either the old one or the whole new one. The folder must exist.
Status WriteFileAtomically(const std::filesystem::path& file, const std::string& text);

}  // namespace adhoc::cli
