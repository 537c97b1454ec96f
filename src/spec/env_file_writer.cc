#include "spec/env_file_writer.h"

#include <cstdio>

#include "spec/duration.h"

namespace adhoc::spec {

std::string TomlString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", u);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string TomlKey(const std::string& key) {
  if (key.empty()) return "\"\"";
  for (char c : key) {
    bool bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-';
    if (!bare) return TomlString(key);
  }
  return key;
}

std::string RenderEnvFile(const EnvFile& e) {
  std::string out =
      "# The environment '" + e.name + "' (adhoc new). See adhoc.toml for the rest.\n";
  if (!e.owner.empty()) out += "owner = " + TomlString(e.owner) + "\n";
  // 0s is the file's "never" (spec.h).
  auto duration = [](Seconds d) {
    return TomlString(d.count() == 0 ? "never" : FormatDuration(d));
  };
  if (e.ttl) out += "ttl = " + duration(*e.ttl) + "\n";
  if (e.sleep_after) out += "sleep_after = " + duration(*e.sleep_after) + "\n";
  if (e.data.kind != DataSource::Kind::kEmpty)
    out += "data = " + TomlString(e.data.ToString()) + "\n";
  if (!e.versions.empty()) {
    out += "\n[versions]\n";
    for (const VersionPin& v : e.versions)
      out += TomlKey(v.image) + " = " + TomlString(v.ref) + "\n";
  }
  if (!e.env.empty()) {
    out += "\n[env]\n";
    for (const EnvVar& var : e.env) out += TomlKey(var.name) + " = " + TomlString(var.value) + "\n";
  }
  if (e.access) {
    // Only the keys given: an absent key takes adhoc.toml's, an empty one turns it off.
    auto array = [](const std::vector<std::string>& items) {
      std::string out = "[";
      for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + TomlString(items[i]);
      return out + "]";
    };
    const Access& a = *e.access;
    out += "\n[access]\n";
    if (a.basic_auth)
      out +=
          "basic_auth = " +
          (a.basic_auth->size() == 1 ? TomlString(a.basic_auth->front()) : array(*a.basic_auth)) +
          "\n";
    if (a.token) out += "token = " + TomlString(*a.token) + "\n";
    if (a.allow) out += "allow = " + array(*a.allow) + "\n";
    if (a.public_paths) out += "public_paths = " + array(*a.public_paths) + "\n";
  }
  if (e.aws && e.aws->slot) out += "\n[targets.aws]\nslot = " + std::to_string(*e.aws->slot) + "\n";
  return out;
}

namespace {

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// The key of a `key = value` line ("" for anything else); quotes of a quoted key removed.
std::string LineKey(const std::string& line) {
  std::string t = Trim(line);
  if (t.empty() || t[0] == '#' || t[0] == '[') return "";
  size_t eq = t.find('=');
  if (eq == std::string::npos) return "";
  std::string key = Trim(t.substr(0, eq));
  if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') && key.back() == key.front())
    key = key.substr(1, key.size() - 2);
  return key;
}

}  // namespace

std::string SetEnvFileVersions(const std::string& text,
                               const std::map<std::string, std::string>& refs) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  std::map<std::string, std::string> left = refs;
  int versions_end = -1;  // the index after the last line of [versions]
  bool in_versions = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string t = Trim(lines[i]);
    if (!t.empty() && t[0] == '[') {
      in_versions = t.rfind("[versions]", 0) == 0;
      if (in_versions) versions_end = static_cast<int>(i) + 1;
      continue;
    }
    if (!in_versions) continue;
    std::string key = LineKey(lines[i]);
    if (!key.empty()) versions_end = static_cast<int>(i) + 1;
    auto it = left.find(key);
    if (key.empty() || it == left.end()) continue;
    lines[i] = TomlKey(key) + " = " + TomlString(it->second);
    left.erase(it);
  }
  std::vector<std::string> added;
  for (const auto& [image, ref] : left) added.push_back(TomlKey(image) + " = " + TomlString(ref));
  if (!added.empty()) {
    if (versions_end < 0) {
      if (!lines.empty() && !Trim(lines.back()).empty()) lines.push_back("");
      lines.push_back("[versions]");
      versions_end = static_cast<int>(lines.size());
    }
    lines.insert(lines.begin() + versions_end, added.begin(), added.end());
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace adhoc::spec
