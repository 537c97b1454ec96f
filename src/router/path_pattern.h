// Path patterns, as route rules and access rules write them (DESIGN "The router"):
// exact "/x"; prefix "/x/*", which matches "/x" itself and everything under "/x/" (but not
// "/xy"); catch-all "/*". No other wildcards. Patterns are matched against the normalized
// request path (request_path.h), so a pattern must itself be in normal form.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace adhoc::router {

enum class PatternKind { kExact, kPrefix, kCatchAll };

struct PathPattern {
  std::string pattern;                     // as given: "/x", "/x/*", "/*"
  PatternKind kind = PatternKind::kExact;  // derived by ParsePathPattern
  std::string path;  // the exact path, or the prefix without "/*" ("" for the catch-all)

  bool Matches(std::string_view request_path) const;
};

// Whether a normalized request path matches a pattern of `kind` with `path` (see above).
bool PatternMatches(PatternKind kind, std::string_view path, std::string_view request_path);

// Parses a pattern; BadInput naming it otherwise ("route pattern '/a*': ...").
Result<PathPattern> ParsePathPattern(std::string_view pattern);

}  // namespace adhoc::router
