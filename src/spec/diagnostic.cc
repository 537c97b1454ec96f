#include "spec/diagnostic.h"

namespace adhoc::spec {

std::string Diagnostic::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0 && is_error()) out += ":" + std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

bool HasErrors(const std::vector<Diagnostic>& diagnostics) {
  for (const Diagnostic& d : diagnostics)
    if (d.is_error()) return true;
  return false;
}

std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) out += d.ToString() + "\n";
  return out;
}

Status DiagnosticsStatus(const std::vector<Diagnostic>& diagnostics) {
  std::string errors;
  int count = 0;
  for (const Diagnostic& d : diagnostics) {
    if (!d.is_error()) continue;
    errors += (count++ ? "\n" : "") + d.ToString();
  }
  if (count == 0) return OkStatus();
  return BadInput(errors);
}

}  // namespace adhoc::spec
