#include "spec/placeholders.h"

namespace adhoc::spec {

namespace {

bool IsNameStart(char c) { return c >= 'a' && c <= 'z'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '_'; }
bool IsPartChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Matches a placeholder at text[pos] == '{'; nullopt when the brace is literal.
std::optional<Placeholder> MatchAt(std::string_view text, size_t pos) {
  size_t i = pos + 1;
  if (i >= text.size() || !IsNameStart(text[i])) return std::nullopt;
  size_t name_start = i;
  while (i < text.size() && IsNameChar(text[i])) ++i;
  Placeholder p;
  p.name = std::string(text.substr(name_start, i - name_start));
  if (i < text.size() && text[i] == '.') {
    size_t part_start = ++i;
    while (i < text.size() && IsPartChar(text[i])) ++i;
    if (i == part_start) return std::nullopt;
    p.part = std::string(text.substr(part_start, i - part_start));
  }
  if (i >= text.size() || text[i] != '}') return std::nullopt;
  p.offset = pos;
  p.length = i + 1 - pos;
  return p;
}

// Walks `text`, calling on_text for literal runs and on_placeholder for each match.
template <typename OnText, typename OnPlaceholder>
void Scan(std::string_view text, OnText on_text, OnPlaceholder on_placeholder) {
  size_t i = 0;
  size_t literal_start = 0;
  while (i < text.size()) {
    if (text[i] != '{') {
      ++i;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      on_text(text.substr(literal_start, i + 1 - literal_start));  // keeps one '{'
      i += 2;
      literal_start = i;
      continue;
    }
    std::optional<Placeholder> p = MatchAt(text, i);
    if (!p) {
      ++i;
      continue;
    }
    on_text(text.substr(literal_start, i - literal_start));
    i += p->length;
    literal_start = i;
    on_placeholder(*p);
  }
  on_text(text.substr(literal_start));
}

const std::set<std::string>& PartsOf(const std::string& name) {
  static const std::set<std::string> kPostgres = {"host", "port",     "database",
                                                  "user", "password", "url"};
  static const std::set<std::string> kRedis = {"host", "port", "password", "url"};
  static const std::set<std::string> kNone;
  if (name == "postgres") return kPostgres;
  if (name == "redis") return kRedis;
  return kNone;
}

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The message for one placeholder, or empty when it is allowed.
std::string Problem(const Placeholder& p, const PlaceholderScope& scope) {
  const std::string shown = "'{" + p.Key() + "}'";
  const std::string where = scope.where.empty() ? "" : " in " + scope.where;
  static const std::set<std::string> kSimple = {"env",  "hostname", "url",     "host",  "port",
                                                "bind", "workdir",  "taskdir", "static"};
  static const std::set<std::string> kWithPart = {"version", "postgres", "redis", "random",
                                                  "secret"};
  if (kSimple.count(p.name)) {
    if (!p.part.empty()) return "placeholder " + shown + ": '{" + p.name + "}' takes no part";
  } else if (kWithPart.count(p.name)) {
    if (p.part.empty())
      return "placeholder " + shown + " needs a part, e.g. '{" + p.name + "." +
             (p.name == "version"    ? "backend"
              : p.name == "postgres" ? "host"
              : p.name == "redis"    ? "url"
                                     : "name") +
             "}'";
  } else {
    return "unknown placeholder " + shown;
  }

  using C = PlaceholderContext;
  switch (scope.context) {
    case C::kDatabaseName:
      if (p.name != "env")
        return "placeholder " + shown + " is not available" + where + " (only {env} is)";
      return "";
    case C::kAccess: {
      static const std::set<std::string> kAccessNames = {"env", "hostname", "url", "random",
                                                         "secret"};
      if (!kAccessNames.count(p.name))
        return "placeholder " + shown + " is not available" + where +
               " (only {env}, {hostname}, {url}, {random.*} and {secret.*} are)";
      return "";
    }
    case C::kServiceWithoutPort:
    case C::kTask:
      if (p.name == "port" || p.name == "bind")
        return "placeholder " + shown + " needs a port, and there is none" + where;
      break;
    case C::kServiceWithPort:
      break;
  }
  if (p.name == "version" && !scope.images.count(p.part))
    return "placeholder " + shown + " names no image (images: " + Join(scope.images) + ")";
  if (p.name == "postgres" || p.name == "redis") {
    if (p.name == "postgres" && !scope.postgres)
      return "placeholder " + shown + " needs a [postgres] section";
    if (p.name == "redis" && !scope.redis)
      return "placeholder " + shown + " needs a [redis] section";
    if (!PartsOf(p.name).count(p.part))
      return "unknown placeholder " + shown + " (" + p.name + " has " + Join(PartsOf(p.name)) + ")";
  }
  return "";
}

}  // namespace

std::vector<Placeholder> FindPlaceholders(std::string_view text) {
  std::vector<Placeholder> out;
  Scan(
      text, [](std::string_view) {}, [&](const Placeholder& p) { out.push_back(p); });
  return out;
}

std::vector<PlaceholderProblem> CheckPlaceholders(std::string_view text,
                                                  const PlaceholderScope& scope) {
  std::vector<PlaceholderProblem> out;
  for (Placeholder& p : FindPlaceholders(text)) {
    std::string message = Problem(p, scope);
    if (!message.empty()) out.push_back({std::move(p), std::move(message)});
  }
  return out;
}

Result<std::string> RenderPlaceholders(std::string_view text, const PlaceholderLookup& lookup) {
  std::string out;
  std::optional<Placeholder> missing;
  Scan(
      text, [&](std::string_view literal) { out += literal; },
      [&](const Placeholder& p) {
        if (missing) return;
        std::optional<std::string> value = lookup(p);
        if (!value) {
          missing = p;
          return;
        }
        out += *value;
      });
  if (missing)
    return BadInput("no value for placeholder '{" + missing->Key() + "}' (at offset " +
                    std::to_string(missing->offset) + ")");
  return out;
}

Result<std::string> RenderPlaceholders(std::string_view text,
                                       const std::map<std::string, std::string>& values) {
  return RenderPlaceholders(text, [&](const Placeholder& p) -> std::optional<std::string> {
    auto it = values.find(p.Key());
    if (it == values.end()) return std::nullopt;
    return it->second;
  });
}

}  // namespace adhoc::spec
