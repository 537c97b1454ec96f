// Placeholders in commands, [env] values, basic_auth and template files.
//
// Grammar (DESIGN): `{name}` or `{name.part}`, name [a-z][a-z0-9_]*, part
// [A-Za-z0-9_-]+. Any other brace is literal text, so nginx's `server { ... }`, a regex
// `{1,3}` or a shell `${HOME}` need no escaping. `{{` is a literal `{` (so `{{env}`
// renders as the text `{env}`); `}` is always literal.
//
// Names: env, hostname, url, host, port, bind, workdir, taskdir, static (no part);
// version.IMAGE (a defined image); postgres.host|port|database|user|password|url (only
// with [postgres]); redis.host|port|password|url (only with [redis]); random.NAME and
// secret.NAME (any NAME).
//
// Thread-safe: pure functions.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace adhoc::spec {

struct Placeholder {
  std::string name;   // "postgres"
  std::string part;   // "host"; empty for `{env}`
  size_t offset = 0;  // of the opening brace in the text
  size_t length = 0;  // including both braces

  // "postgres.host" or "env": the key of a lookup map.
  std::string Key() const { return part.empty() ? name : name + "." + part; }
};

// Every placeholder in `text`, in order (escaped `{{` skipped).
std::vector<Placeholder> FindPlaceholders(std::string_view text);

// Where a text is rendered, which decides the names it may use.
enum class PlaceholderContext {
  kServiceWithPort,     // command, env and templates of a service with a port: everything
  kServiceWithoutPort,  // a worker: no {port} or {bind}
  kTask,                // a one-off task, and every [env] section (they reach tasks too)
  kAccess,              // basic_auth: env, hostname, url, random.*, secret.*
  kDatabaseName,        // [postgres] database: env only
};

// What the project defines, for checking version/postgres/redis placeholders.
struct PlaceholderScope {
  PlaceholderContext context = PlaceholderContext::kTask;
  std::set<std::string> images;
  bool postgres = false;
  bool redis = false;
  std::string where;  // for messages: "service 'beat'", "task 'migrate'", "[env]"
};

struct PlaceholderProblem {
  Placeholder placeholder;
  std::string message;  // "unknown placeholder '{nmae}'", "'{port}' needs a port: ..."
};

// The placeholders of `text` not allowed in `scope`, each with a message naming it.
std::vector<PlaceholderProblem> CheckPlaceholders(std::string_view text,
                                                  const PlaceholderScope& scope);

// Value of a placeholder, or nullopt when the caller has none for it.
using PlaceholderLookup = std::function<std::optional<std::string>(const Placeholder&)>;

// Replaces every placeholder with its looked-up value and `{{` with `{`. A BadInput
// error names the first placeholder the lookup has no value for.
Result<std::string> RenderPlaceholders(std::string_view text, const PlaceholderLookup& lookup);

// Same with a map keyed by Placeholder::Key() ("env", "postgres.host").
Result<std::string> RenderPlaceholders(std::string_view text,
                                       const std::map<std::string, std::string>& values);

}  // namespace adhoc::spec
