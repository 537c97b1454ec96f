#include "spec/names.h"

#include <string>

namespace adhoc::spec {

namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Shows a character in a message; control and non-ASCII bytes as \xNN.
std::string Shown(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u < 0x20 || u >= 0x7f) {
    static const char kHex[] = "0123456789abcdef";
    return std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
  }
  return std::string(1, c);
}

Status CheckLabel(std::string_view what, std::string_view name, size_t max_length) {
  std::string prefix = std::string(what) + " name '" + std::string(name) + "': ";
  if (name.empty()) return BadInput(std::string(what) + " name is empty");
  if (name.size() > max_length)
    return BadInput(prefix + "longer than " + std::to_string(max_length) + " characters (" +
                    std::to_string(name.size()) + ")");
  for (char c : name) {
    if (!IsLower(c) && !IsDigit(c) && c != '-')
      return BadInput(prefix + "only lowercase letters, digits and '-' are allowed (found '" +
                      Shown(c) + "')");
  }
  if (!IsLower(name.front())) return BadInput(prefix + "must start with a lowercase letter");
  if (name.back() == '-') return BadInput(prefix + "must not end with '-'");
  return OkStatus();
}

}  // namespace

Status ValidateEnvName(std::string_view name) {
  ADHOC_RETURN_IF_ERROR(CheckLabel("environment", name, kMaxEnvNameLength));
  for (std::string_view reserved : {"adhoc", "www", "api"}) {
    if (name == reserved)
      return BadInput("environment name '" + std::string(name) +
                      "': reserved (adhoc, www and api are taken by the dashboard and the team)");
  }
  return OkStatus();
}

Status ValidateObjectName(std::string_view what, std::string_view name) {
  return CheckLabel(what, name, kMaxObjectNameLength);
}

bool IsValidEnvVarName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = c == '_' || IsLower(c) || (c >= 'A' && c <= 'Z') || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

}  // namespace adhoc::spec
