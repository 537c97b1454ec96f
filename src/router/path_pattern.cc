#include "router/path_pattern.h"

#include "router/request_path.h"

namespace adhoc::router {

bool PatternMatches(PatternKind kind, std::string_view path, std::string_view request_path) {
  switch (kind) {
    case PatternKind::kExact:
      return request_path == path;
    case PatternKind::kCatchAll:
      return true;
    case PatternKind::kPrefix:
      if (request_path.size() < path.size() || request_path.substr(0, path.size()) != path) {
        return false;
      }
      return request_path.size() == path.size() || request_path[path.size()] == '/';
  }
  return false;
}

bool PathPattern::Matches(std::string_view request_path) const {
  return PatternMatches(kind, path, request_path);
}

Result<PathPattern> ParsePathPattern(std::string_view given) {
  PathPattern out;
  out.pattern = std::string(given);
  const std::string& p = out.pattern;
  auto bad = [&](const std::string& why) {
    return BadInput("pattern '" + p + "': " + why + " (use /x, /x/* or /*)");
  };
  if (p.empty() || p[0] != '/') return bad("must start with '/'");
  for (char c : p) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#') {
      return bad("contains a space, control character, '?' or '#'");
    }
  }
  if (p == "/*") {
    out.kind = PatternKind::kCatchAll;
    return out;
  }
  size_t star = p.find('*');
  if (star == std::string::npos) {
    out.kind = PatternKind::kExact;
    out.path = p;
  } else {
    if (star != p.size() - 1 || p.size() < 3 || p[p.size() - 2] != '/') {
      return bad("'*' is only allowed as a final '/*'");
    }
    out.kind = PatternKind::kPrefix;
    out.path = p.substr(0, p.size() - 2);
  }
  // Requests are matched by their normalized path: a pattern that is not normal would
  // never match what it seems to name.
  std::string normal = out.path;
  PathNormalization n = NormalizeRequestPath(normal);
  if (n.error) return bad(n.error);
  if (n.changed) return bad("not in normal form (write '" + normal + "')");
  return out;
}

}  // namespace adhoc::router
