// A problem found in the user's files: an error (the file must change) or a warning
// (accepted, but something is ignored).
//
// Shown one per line as `file:line:column: key: message`, e.g.
//   adhoc.toml:12:1: services.web.port: expected an integer, got a string
// Warnings are shown without the column (`adhoc.toml:40: tasks.migrate.cache: not built
// yet, ignored`); a part that is unknown (line 0, empty key) is left out.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::spec {

struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string file;  // "adhoc.toml", "envs/demo.toml"
  int line = 0;      // 1-based; 0: the whole file
  int column = 0;    // 1-based; 0: unknown
  std::string key;   // dotted: "services.web-ui.routes[1]" (array indexes from 0)
  std::string message;

  bool is_error() const { return severity == Severity::kError; }
  std::string ToString() const;
};

bool HasErrors(const std::vector<Diagnostic>& diagnostics);

// One diagnostic per line, in the order given.
std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics);

// OK without errors; else a BadInput error listing every error (warnings left out).
Status DiagnosticsStatus(const std::vector<Diagnostic>& diagnostics);

}  // namespace adhoc::spec
