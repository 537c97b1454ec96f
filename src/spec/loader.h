// Loading and validating the user's files: adhoc.toml and envs/*.toml.
//
// Every load returns what could be parsed together with EVERY diagnostic found (not
// only the first): TOML syntax, unknown keys (with a "did you mean"), wrong types,
// missing keys, undefined or unused images, duplicate or malformed routes, routes or
// health paths without a port, bad enum values and limits, bad env var names, versions
// of unknown images, bad environment names, and placeholders that are unknown or not
// available where they are used.
//
// Keys whose feature is not built yet are parsed, validated and kept in the structs,
// with a one-line warning ("not built yet, ignored"); the list of such keys is the one
// table kNotBuiltYet in loader.cc: removing a row is how a feature goes live.
//
// Reads files only; no processes, no git. Thread-safe: no shared state.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "spec/diagnostic.h"
#include "spec/spec.h"

namespace adhoc::spec {

// A parsed value (possibly partial when there are errors) and its diagnostics, in
// file order.
template <typename T>
struct Loaded {
  T value;
  std::vector<Diagnostic> diagnostics;

  bool ok() const { return !HasErrors(diagnostics); }
  Status status() const { return DiagnosticsStatus(diagnostics); }
};

// adhoc.toml from text; `file_name` is what messages show.
Loaded<Project> ParseProject(std::string_view text, const std::string& file_name = "adhoc.toml");
// adhoc.toml from disk; messages show `path` as given.
Loaded<Project> LoadProject(const std::filesystem::path& path);

// An env file from text. `env_name` is the environment's name (the file's name without
// ".toml"), validated too. With `project`, versions and placeholders are checked
// against it (images, [postgres], [redis]); without, only what the file alone shows.
Loaded<EnvFile> ParseEnvFile(std::string_view text, const std::string& env_name,
                             const std::string& file_name, const Project* project = nullptr);
// envs/<name>.toml from disk; the name comes from the file name.
Loaded<EnvFile> LoadEnvFile(const std::filesystem::path& path, const Project* project = nullptr);

// A project folder: adhoc.toml and every envs/*.toml (sorted by name), each env file
// checked against the project. Messages show paths relative to `dir`.
//
// Errors do not cascade: when adhoc.toml cannot be read or parsed, or its [images] table is
// not a table, env files are checked on their own (as without a project), so a syntax error
// in adhoc.toml is reported once instead of with a false "no image" error per env file.
struct Workspace {
  Project project;
  std::vector<EnvFile> envs;

  const EnvFile* FindEnv(const std::string& name) const;
};
Loaded<Workspace> LoadWorkspace(const std::filesystem::path& dir);

// What one environment needs (`up ENV`): adhoc.toml and envs/<env>.toml only, with the
// diagnostics of those two files, so that a broken env file of another environment never
// blocks this one. `envs` holds that one env file; it is empty, without a diagnostic, when
// the file does not exist (the caller says how to write one). A name that is not a valid
// environment name is an error (no file is read for it). Errors do not cascade, as above.
Loaded<Workspace> LoadForEnvironment(const std::filesystem::path& dir, const std::string& env);

}  // namespace adhoc::spec
