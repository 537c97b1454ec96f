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
  if (e.ttl) out += "ttl = " + TomlString(FormatDuration(*e.ttl)) + "\n";
  if (e.sleep_after) out += "sleep_after = " + TomlString(FormatDuration(*e.sleep_after)) + "\n";
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
    out += "\n[access]\n";
    if (!e.access->basic_auth.empty())
      out += "basic_auth = " + TomlString(e.access->basic_auth) + "\n";
    if (!e.access->allow.empty()) {
      out += "allow = [";
      for (size_t i = 0; i < e.access->allow.size(); ++i)
        out += (i ? ", " : "") + TomlString(e.access->allow[i]);
      out += "]\n";
    }
  }
  if (e.aws && e.aws->slot) out += "\n[targets.aws]\nslot = " + std::to_string(*e.aws->slot) + "\n";
  return out;
}

}  // namespace adhoc::spec
