// What a renderer returns: files (a path relative to the output folder, and the whole text),
// and the deterministic text forms they are written in. Writing them to disk is the caller's.
// Thread-safe: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace adhoc::render {

struct RenderedFile {
  std::string path;  // relative, with '/' ("base/main.tf.json")
  std::string text;
};
using RenderedFiles = std::vector<RenderedFile>;

// JSON with sorted keys, two-space indents and a final newline: the same value always gives
// the same bytes (Terraform's *.tf.json, tfvars).
std::string JsonText(const nlohmann::json& value);

// An HCL expression for a JSON value, for Terraform's jsonencode(...) inside *.tf.json
// strings: strings become HCL template strings (so "${...}" interpolates), objects keep sorted
// keys. A string made by RawHcl() is written as the expression it holds.
std::string ToHcl(const nlohmann::json& value);
// Marks an HCL expression to be written as is by ToHcl ("[for k, v in ...]").
std::string RawHcl(const std::string& expression);

// User text made literal inside a Terraform template string: "${" becomes "$${" and "%{"
// becomes "%%{", so a shell's ${HOME} stays text.
std::string TfLiteral(const std::string& text);

// "${expression}": a Terraform interpolation inside a *.tf.json string.
std::string Interp(const std::string& expression);

// The text of a HCL string literal (quotes included), escaping quotes and backslashes;
// "${" stays an interpolation.
std::string HclString(const std::string& text);

}  // namespace adhoc::render
