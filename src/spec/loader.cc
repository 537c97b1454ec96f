#include "spec/loader.h"

#include <arpa/inet.h>
#include <signal.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "spec/duration.h"
#include "spec/http_url.h"
#include "spec/names.h"
#include "spec/placeholders.h"

namespace adhoc::spec {

namespace {

namespace fs = std::filesystem;

enum class FileKind { kProject, kEnvFile };

// Keys accepted with a warning because their feature is not built yet. ONE table:
// removing a row is how a feature goes live. `*` matches one key segment.
struct NotBuiltYet {
  FileKind file;
  const char* key;
  bool unless_empty_string;  // an empty string value means "the default": no warning
};
// Every key is built today; the table stays for the next one.
constexpr std::array<NotBuiltYet, 0> kNotBuiltYet{};

bool KeyMatches(std::string_view pattern, std::string_view key) {
  while (true) {
    size_t p_dot = pattern.find('.');
    size_t k_dot = key.find('.');
    std::string_view p_seg = pattern.substr(0, p_dot);
    std::string_view k_seg = key.substr(0, k_dot);
    if (p_seg != "*" && p_seg != k_seg) return false;
    if (p_dot == std::string_view::npos || k_dot == std::string_view::npos)
      return p_dot == std::string_view::npos && k_dot == std::string_view::npos;
    pattern.remove_prefix(p_dot + 1);
    key.remove_prefix(k_dot + 1);
  }
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest of `candidates` to `word`, or empty when none is close.
std::string Closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 3;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_distance && d * 3 <= std::max(word.size(), c.size())) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

std::string Join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : separator) + s;
  return out;
}

// Entries of a table in file order (toml++ keeps tables sorted by key).
std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (const auto& [k, v] : t) out.emplace_back(&k, &v);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& sa = a.first->source().begin;
    const auto& sb = b.first->source().begin;
    return sa.line != sb.line ? sa.line < sb.line : sa.column < sb.column;
  });
  return out;
}

std::string Dotted(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// Reads one file's TOML into structs, collecting diagnostics.
class Reader {
 public:
  Reader(FileKind kind, std::string file, std::vector<Diagnostic>* out)
      : kind_(kind), file_(std::move(file)), out_(out) {}

  const std::string& file() const { return file_; }

  SourceLocation Where(const toml::source_region& region) const {
    return SourceLocation{file_, static_cast<int>(region.begin.line),
                          static_cast<int>(region.begin.column)};
  }
  SourceLocation Where(const toml::node& node) const { return Where(node.source()); }

  void Report(Diagnostic::Severity severity, const SourceLocation& at, const std::string& key,
              const std::string& message) {
    out_->push_back(Diagnostic{severity, file_, at.line, at.column, key, message});
  }
  void Error(const SourceLocation& at, const std::string& key, const std::string& message) {
    Report(Diagnostic::Severity::kError, at, key, message);
  }
  void Error(const toml::node& node, const std::string& key, const std::string& message) {
    Error(Where(node), key, message);
  }
  void Warn(const SourceLocation& at, const std::string& key, const std::string& message) {
    Report(Diagnostic::Severity::kWarning, at, key, message);
  }

  // Errors for keys of `table` not in `allowed` (with a suggestion), and warnings for
  // keys whose feature is not built yet. `where` names the table in messages.
  void CheckKeys(const toml::table& table, const std::string& prefix,
                 const std::vector<std::string>& allowed, const std::string& where) {
    for (const auto& [key, node] : InFileOrder(table)) {
      std::string name(key->str());
      std::string dotted = Dotted(prefix, name);
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string message = "unknown key '" + name + "' in " + where;
        std::string suggestion = Closest(name, allowed);
        if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
        Error(Where(key->source()), dotted, message);
        continue;
      }
      for (const NotBuiltYet& row : kNotBuiltYet) {
        if (row.file != kind_ || !KeyMatches(row.key, dotted)) continue;
        if (row.unless_empty_string && node->is_string() && node->as_string()->get().empty())
          continue;
        Warn(Where(key->source()), dotted, "not built yet, ignored");
      }
    }
  }

  // A typed member of `table`; nullptr (and an error when `required` or mistyped)
  // when it is absent or of another type.
  template <typename T>
  const toml::value<T>* Value(const toml::table& table, std::string_view key,
                              const std::string& prefix, bool required, const char* expected) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      if (required)
        Error(Where(table), Dotted(prefix, key), std::string("missing, expected ") + expected);
      return nullptr;
    }
    const toml::value<T>* value = node->as<T>();
    if (value == nullptr)
      Error(*node, Dotted(prefix, key),
            std::string("expected ") + expected + ", got " + TypeName(*node));
    return value;
  }

  const toml::value<std::string>* String(const toml::table& t, std::string_view key,
                                         const std::string& prefix, bool required = false) {
    return Value<std::string>(t, key, prefix, required, "a string");
  }

  // Reads an integer into `out` when present and of the right type and in [min, max].
  bool Int(const toml::table& t, std::string_view key, const std::string& prefix, int64_t min,
           int64_t max, const std::string& range_message, int* out) {
    const toml::value<int64_t>* v = Value<int64_t>(t, key, prefix, false, "an integer");
    if (v == nullptr) return false;
    if (v->get() < min || v->get() > max) {
      Error(*v, Dotted(prefix, key), range_message + ", got " + std::to_string(v->get()));
      return false;
    }
    *out = static_cast<int>(v->get());
    return true;
  }

  // `allow_never`: the word "never" is read as 0s (the caller's "off").
  std::optional<Seconds> Duration(const toml::table& t, std::string_view key,
                                  const std::string& prefix, bool allow_zero,
                                  bool allow_never = false) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const toml::value<std::string>* v = node->as_string();
    if (v == nullptr) {
      Error(*node, Dotted(prefix, key),
            "expected a duration string like \"30s\" or \"10m\", got " + TypeName(*node));
      return std::nullopt;
    }
    if (allow_never && v->get() == "never") return Seconds(0);
    Result<Seconds> d = ParseDuration(v->get());
    if (!d.ok()) {
      Error(*v, Dotted(prefix, key), d.error().message() + (allow_never ? " (or \"never\")" : ""));
      return std::nullopt;
    }
    if (!allow_zero && d->count() == 0) {
      Error(*v, Dotted(prefix, key), "must be longer than 0s");
      return std::nullopt;
    }
    return *d;
  }

  const toml::table* Table(const toml::table& t, std::string_view key, const std::string& prefix) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) {
      Error(*node, Dotted(prefix, key), "expected a table, got " + TypeName(*node));
      return nullptr;
    }
    return node->as_table();
  }

  // An array of strings; mistyped elements are reported and skipped. Each kept element
  // comes with its location and dotted key ("x.routes[1]").
  struct Item {
    std::string value;
    SourceLocation where;
    std::string key;
  };
  std::optional<std::vector<Item>> Strings(const toml::table& t, std::string_view key,
                                           const std::string& prefix) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Error(*node, Dotted(prefix, key), "expected an array of strings, got " + TypeName(*node));
      return std::nullopt;
    }
    std::vector<Item> items;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      std::string element_key = Dotted(prefix, key) + "[" + std::to_string(i) + "]";
      if (!element.is_string()) {
        Error(element, element_key, "expected a string, got " + TypeName(element));
        continue;
      }
      items.push_back({element.as_string()->get(), Where(element), element_key});
    }
    return items;
  }

  void CheckPlaceholdersAt(const toml::node& node, const std::string& key, std::string_view text,
                           const PlaceholderScope& scope) {
    for (const PlaceholderProblem& problem : CheckPlaceholders(text, scope)) {
      SourceLocation at = Where(node);
      // Point at the placeholder itself when the string is on one line.
      if (text.find('\n') == std::string_view::npos)
        at.column += 1 + static_cast<int>(problem.placeholder.offset);
      Error(at, key, problem.message);
    }
  }

  // An [env]-style table of NAME = "template".
  EnvList Env(const toml::table& t, const std::string& prefix, const PlaceholderScope& scope) {
    EnvList env;
    for (const auto& [key, node] : InFileOrder(t)) {
      std::string name(key->str());
      std::string dotted = Dotted(prefix, name);
      if (!IsValidEnvVarName(name)) {
        Error(Where(key->source()), dotted,
              "invalid environment variable name '" + name +
                  "' (letters, digits and '_', not starting with a digit)");
        continue;
      }
      if (!node->is_string()) {
        Error(*node, dotted, "expected a string, got " + TypeName(*node));
        continue;
      }
      const std::string& value = node->as_string()->get();
      CheckPlaceholdersAt(*node, dotted, value, scope);
      env.push_back({name, value, Where(key->source())});
    }
    return env;
  }

 private:
  FileKind kind_;
  std::string file_;
  std::vector<Diagnostic>* out_;
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Why a route's path is not in the normal form the router matches requests in (docs/router.md
// "Paths"), or "" when it is. The router refuses a pattern that is not, and with it the whole
// environment's routes, so the file must say so first.
std::string NotNormal(const std::string& path) {
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\') return "a backslash";
    if (path[i] != '%') continue;
    int hi = i + 2 < path.size() ? HexDigit(path[i + 1]) : -1;
    int lo = i + 2 < path.size() ? HexDigit(path[i + 2]) : -1;
    if (hi < 0 || lo < 0) return "a malformed percent-escape";
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '/' || c == '\\' || c == 0) return "an encoded '/', '\\' or NUL";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~')
      return "'" + path.substr(i, 3) + "' (write '" + std::string(1, c) + "')";
    if ((path[i + 1] >= 'a' && path[i + 1] <= 'f') || (path[i + 2] >= 'a' && path[i + 2] <= 'f'))
      return "lower-case hex in '" + path.substr(i, 3) + "' (write it in upper case)";
    i += 2;
  }
  std::stringstream in(path);
  std::string segment;
  while (std::getline(in, segment, '/'))
    if (segment == "." || segment == "..") return "a '" + segment + "' segment";
  return "";
}

// "/exact", "/prefix/*", "/*"; empty message when fine.
std::string ParseRoute(const std::string& pattern, Route* route) {
  route->pattern = pattern;
  if (pattern.empty() || pattern[0] != '/')
    return "route '" + pattern + "' must start with '/' (\"/exact\", \"/prefix/*\" or \"/*\")";
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (c <= 0x20 || c >= 0x7f)
      return "route '" + pattern + "' must not contain spaces or control characters";
    if (c == '?' || c == '#')
      return "route '" + pattern + "' must not contain a query or fragment ('" +
             std::string(1, static_cast<char>(c)) + "')";
    if (c == '*' && i != pattern.size() - 1)
      return "route '" + pattern + "': '*' is only allowed as a final \"/*\"";
  }
  if (pattern == "/*") {
    route->kind = Route::Kind::kCatchAll;
    route->path = "/";
  } else if (pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, "/*") == 0) {
    route->kind = Route::Kind::kPrefix;
    route->path = pattern.substr(0, pattern.size() - 2);
  } else if (pattern.back() == '*') {
    return "route '" + pattern + "': a prefix route ends in \"/*\"";
  } else {
    route->kind = Route::Kind::kExact;
    route->path = pattern;
  }
  if (route->path.find("//") != std::string::npos)
    return "route '" + pattern + "' must not contain '//'";
  if (std::string why = NotNormal(route->path); !why.empty())
    return "route '" + pattern + "' is not in the normal form requests are matched in: " + why;
  return "";
}

// "200-399", "200", "200,302", "200-299,404"; empty message when fine.
std::string ParseMatcher(const std::string& text, std::vector<StatusRange>* ranges) {
  ranges->clear();
  std::string bad =
      "bad matcher '" + text + "': expected HTTP codes and ranges like \"200-399\" or \"200,302\"";
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t dash = item.find('-');
    auto number = [](const std::string& s, int* out) {
      if (s.empty() || s.size() > 3) return false;
      for (char c : s)
        if (c < '0' || c > '9') return false;
      *out = std::stoi(s);
      return *out >= 100 && *out <= 599;
    };
    StatusRange r;
    if (dash == std::string::npos) {
      if (!number(item, &r.low)) return bad;
      r.high = r.low;
    } else if (!number(item.substr(0, dash), &r.low) || !number(item.substr(dash + 1), &r.high) ||
               r.low > r.high) {
      return bad;
    }
    ranges->push_back(r);
  }
  if (ranges->empty() || text.back() == ',') return bad;
  return "";
}

struct SignalName {
  const char* name;
  int number;
};
constexpr SignalName kStopSignals[] = {{"TERM", SIGTERM}, {"INT", SIGINT},    {"QUIT", SIGQUIT},
                                       {"HUP", SIGHUP},   {"KILL", SIGKILL},  {"USR1", SIGUSR1},
                                       {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};

bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  for (const auto& part : fs::path(path))
    if (part == "..") return false;
  return true;
}

// A domain name: dot-separated labels of [a-z0-9-].
bool IsDomain(const std::string& domain) {
  if (domain.empty() || domain.size() > 253) return false;
  std::stringstream in(domain);
  std::string label;
  int labels = 0;
  while (std::getline(in, label, '.')) {
    ++labels;
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return labels > 0 && domain.back() != '.';
}

bool IsCidr(const std::string& text) {
  size_t slash = text.find('/');
  std::string address = text.substr(0, slash);
  unsigned char buffer[16];
  int max_bits;
  if (inet_pton(AF_INET, address.c_str(), buffer) == 1) {
    max_bits = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), buffer) == 1) {
    max_bits = 128;
  } else {
    return false;
  }
  if (slash == std::string::npos) return true;
  std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3) return false;
  for (char c : bits)
    if (c < '0' || c > '9') return false;
  return std::stoi(bits) <= max_bits;
}

// ---- [access] (adhoc.toml and env files) ---------------------------------------------

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

// The placeholders of an [access] value: those not allowed are errors; {secret.*} is accepted
// by the grammar but not built, so it is a warning that says `up` will refuse it.
void CheckAccessPlaceholders(Reader& r, const toml::node& node, const std::string& key,
                             const std::string& text, const PlaceholderScope& scope) {
  r.CheckPlaceholdersAt(node, key, text, scope);
  for (const Placeholder& p : FindPlaceholders(text))
    if (p.name == "secret" && !p.part.empty())
      r.Warn(r.Where(node), key,
             "'{" + p.Key() + "}': secrets are not built yet, so `adhoc up` refuses this " +
                 "environment; '{random." + p.part +
                 "}' makes a value adhoc keeps and `adhoc status` shows");
}

// One "user:password" of basic_auth; the user is what comes before the first ':'.
void CheckUserPassword(Reader& r, const toml::node& node, const std::string& key,
                       const std::string& value, const PlaceholderScope& scope) {
  size_t colon = value.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.size()) {
    r.Error(node, key, "expected \"user:password\"");
  } else {
    for (char c : value)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        r.Error(node, key, "control characters in the user or password");
        break;
      }
  }
  CheckAccessPlaceholders(r, node, key, value, scope);
}

// `token`: it travels in a URL and a cookie, so a literal must be long enough not to be guessed
// and made of unreserved characters; a template is checked as far as the file tells (its literal
// text, and no {url}, which holds ':' and '/'); what it renders to is checked by `up`.
void CheckToken(Reader& r, const toml::node& node, const std::string& value,
                const PlaceholderScope& scope) {
  std::vector<Placeholder> placeholders = FindPlaceholders(value);
  std::string literal;
  size_t at = 0;
  for (const Placeholder& p : placeholders) {
    literal += value.substr(at, p.offset - at);
    at = p.offset + p.length;
    if (p.name == "url")
      r.Error(node, "access.token", "'{url}' holds ':' and '/', which a token cannot");
  }
  literal += value.substr(at);
  bool bad = false;
  for (char c : literal) bad |= !IsTokenChar(c);
  if (bad)
    r.Error(node, "access.token", "a token may hold only A-Z a-z 0-9 - _ . ~ (and placeholders)");
  else if (placeholders.empty() && value.size() < 16)
    r.Error(node, "access.token",
            "a token needs 16 characters or more (got " + std::to_string(value.size()) +
                "); \"{random.access_token}\" makes one");
  CheckAccessPlaceholders(r, node, "access.token", value, scope);
}

// [access] of adhoc.toml or of an env file, as written (spec.h: Access). `scope` is the file's.
Access ReadAccess(Reader& r, const toml::table& t, const PlaceholderScope& file_scope) {
  r.CheckKeys(t, "access", {"basic_auth", "token", "allow", "public_paths"}, "[access]");
  Access access;
  access.where = r.Where(t);
  PlaceholderScope scope = file_scope;
  scope.context = PlaceholderContext::kAccess;
  if (const toml::node* node = t.get("basic_auth")) {
    access.where_key["basic_auth"] = r.Where(*node);
    scope.where = "basic_auth";
    std::vector<std::string> users;
    if (const toml::value<std::string>* v = node->as_string()) {
      if (!v->get().empty()) {  // "": no users
        CheckUserPassword(r, *v, "access.basic_auth", v->get(), scope);
        users.push_back(v->get());
      }
    } else if (const toml::array* array = node->as_array()) {
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        std::string key = "access.basic_auth[" + std::to_string(i) + "]";
        if (!element.is_string()) {
          r.Error(element, key, "expected a string, got " + TypeName(element));
          continue;
        }
        CheckUserPassword(r, element, key, element.as_string()->get(), scope);
        users.push_back(element.as_string()->get());
      }
    } else {
      r.Error(*node, "access.basic_auth",
              "expected \"user:password\" or an array of them, got " + TypeName(*node));
    }
    access.basic_auth = users;
  }
  if (auto* v = r.String(t, "token", "access")) {
    access.where_key["token"] = r.Where(*v);
    scope.where = "token";
    if (!v->get().empty()) CheckToken(r, *v, v->get(), scope);  // "": no token
    access.token = v->get();
  }
  if (auto items = r.Strings(t, "allow", "access")) {
    access.where_key["allow"] = r.Where(*t.get("allow"));
    access.allow.emplace();
    for (auto& item : *items) {
      if (!IsCidr(item.value))
        r.Error(item.where, item.key,
                "'" + item.value + "' is not an address or CIDR block like \"10.0.0.0/8\"");
      else
        access.allow->push_back(item.value);
    }
  }
  if (auto items = r.Strings(t, "public_paths", "access")) {
    access.where_key["public_paths"] = r.Where(*t.get("public_paths"));
    access.public_paths.emplace();
    for (auto& item : *items) {
      Route route;
      std::string problem = ParseRoute(item.value, &route);
      if (!problem.empty())
        r.Error(item.where, item.key, problem);
      else
        access.public_paths->push_back(item.value);
    }
  }
  return access;
}

bool HasCredentials(const Access& a) {
  return (a.basic_auth && !a.basic_auth->empty()) || (a.token && !a.token->empty());
}

// The router's rule: public paths are public from credentials, so they need some. Reported
// at `at` (in the file being read).
void CheckPublicPaths(Reader& r, const Access& effective, const SourceLocation& at,
                      const std::string& message) {
  if (effective.public_paths && !effective.public_paths->empty() && !HasCredentials(effective))
    r.Error(at, "access.public_paths", message + " (public from what?)");
}

// ---- adhoc.toml -----------------------------------------------------------------

class ProjectReader {
 public:
  ProjectReader(Reader* r, Project* p) : r_(*r), p_(*p) {}

  void Read(const toml::table& root) {
    p_.where = SourceLocation{r_.file(), 1, 1};
    r_.CheckKeys(root, "",
                 {"name", "domain", "sleep_after", "images", "postgres", "redis", "static", "env",
                  "services", "tasks", "targets", "access", "notify"},
                 "the top level of " + r_.file());
    if (auto* v = r_.String(root, "name", "", true)) {
      p_.name = v->get();
      Status s = ValidateObjectName("project", p_.name);
      if (!s.ok()) r_.Error(*v, "name", s.error().message());
    }
    if (auto* v = r_.String(root, "domain", "")) {
      p_.domain = v->get();
      if (!IsDomain(p_.domain))
        r_.Error(*v, "domain",
                 "'" + p_.domain + "' is not a domain name (lowercase labels separated by dots)");
    }
    p_.sleep_after = r_.Duration(root, "sleep_after", "", false, true);
    if (const toml::table* images = r_.Table(root, "images", "")) ReadImages(*images);
    for (const Image& image : p_.images) scope_images_.insert(image.name);
    if (const toml::table* t = r_.Table(root, "postgres", "")) ReadPostgres(*t);
    if (const toml::table* t = r_.Table(root, "redis", "")) {
      r_.CheckKeys(*t, "redis", {"memory"}, "[redis]");
      p_.redis = Redis{.where = r_.Where(*t)};
      // Under 4 MiB an empty Redis is already near its bound (about 1 MiB of its own).
      r_.Int(*t, "memory", "redis", 4, 1024 * 1024, "must be between 4 and 1048576 (MiB)",
             &p_.redis->memory);
    }
    if (const toml::table* t = r_.Table(root, "static", "")) ReadStatic(*t);
    if (const toml::table* t = r_.Table(root, "env", ""))
      p_.env = r_.Env(*t, "env", Scope(PlaceholderContext::kTask, "[env]"));
    if (const toml::table* t = r_.Table(root, "services", "")) {
      for (const auto& [key, node] : InFileOrder(*t)) {
        std::string prefix = "services." + std::string(key->str());
        if (!node->is_table()) {
          r_.Error(*node, prefix, "expected a table, got " + TypeName(*node));
          continue;
        }
        ReadService(std::string(key->str()), *key, *node->as_table(), prefix);
      }
    }
    if (const toml::table* t = r_.Table(root, "tasks", "")) {
      for (const auto& [key, node] : InFileOrder(*t)) {
        std::string prefix = "tasks." + std::string(key->str());
        if (!node->is_table()) {
          r_.Error(*node, prefix, "expected a table, got " + TypeName(*node));
          continue;
        }
        ReadTask(std::string(key->str()), *key, *node->as_table(), prefix);
      }
    }
    if (const toml::table* t = r_.Table(root, "targets", "")) ReadTargets(*t);
    if (const toml::table* t = r_.Table(root, "access", "")) {
      p_.access = ReadAccess(r_, *t, Scope(PlaceholderContext::kAccess, "[access]"));
      CheckPublicPaths(r_, *p_.access, p_.access->Where("public_paths"),
                       "public_paths needs basic_auth or token");
    }
    if (const toml::table* t = r_.Table(root, "notify", "")) ReadNotify(*t);
    CheckImagesUsed();
    CheckDuplicateRoutes();
  }

 private:
  PlaceholderScope Scope(PlaceholderContext context, std::string where) const {
    PlaceholderScope s;
    s.context = context;
    s.images = scope_images_;
    s.postgres = p_.postgres.has_value();
    s.redis = p_.redis.has_value();
    s.where = std::move(where);
    return s;
  }

  bool CheckName(const char* what, const toml::key& key, const std::string& prefix) {
    Status s = ValidateObjectName(what, key.str());
    if (!s.ok()) r_.Error(r_.Where(key.source()), prefix, s.error().message());
    return s.ok();
  }

  void ReadImages(const toml::table& images) {
    for (const auto& [key, node] : InFileOrder(images)) {
      std::string prefix = "images." + std::string(key->str());
      if (!node->is_table()) {
        r_.Error(*node, prefix, "expected a table, got " + TypeName(*node));
        continue;
      }
      const toml::table& t = *node->as_table();
      CheckName("image", *key, prefix);
      r_.CheckKeys(t, prefix, {"path", "build", "dockerfile", "python", "preload"},
                   "[" + prefix + "]");
      Image image;
      image.name = std::string(key->str());
      image.where = r_.Where(key->source());
      if (auto* v = r_.String(t, "path", prefix, true)) {
        image.path = v->get();
        if (!IsSafeRelativePath(image.path))
          r_.Error(
              *v, prefix + ".path",
              "'" + image.path + "' must be a folder inside the repository (relative, no '..')");
      }
      if (auto items = r_.Strings(t, "build", prefix))
        for (auto& item : *items) image.build.push_back(item.value);
      if (auto* v = r_.String(t, "dockerfile", prefix)) {
        image.dockerfile = v->get();
        if (!IsSafeRelativePath(image.dockerfile))
          r_.Error(*v, prefix + ".dockerfile",
                   "'" + image.dockerfile + "' must be a file inside the repository");
      }
      ReadPython(t, prefix, image);
      p_.images.push_back(std::move(image));
    }
  }

  void ReadPython(const toml::table& t, const std::string& prefix, Image& image) {
    if (auto* v = r_.String(t, "python", prefix)) {
      image.python = v->get();
      if (image.python.empty() || image.python.front() != '/')
        r_.Error(*v, prefix + ".python",
                 "'" + image.python +
                     "' must be the interpreter's absolute path, like "
                     "\"/usr/bin/python3\"");
    }
    if (auto items = r_.Strings(t, "preload", prefix)) {
      if (image.python.empty())
        r_.Error(*t.get("preload"), prefix + ".preload",
                 "needs " + prefix + ".python, the interpreter to import the modules into");
      static const std::regex kModule(R"([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)");
      for (auto& item : *items) {
        if (!std::regex_match(item.value, kModule))
          r_.Error(item.where, item.key,
                   "'" + item.value + "' is not a module name like \"django.db\"");
        else
          image.preload.push_back(item.value);
      }
    }
  }

  void ReadNotify(const toml::table& t) {
    r_.CheckKeys(t, "notify", {"url", "before"}, "[notify]");
    Notify n;
    n.where = r_.Where(t);
    if (auto* v = r_.String(t, "url", "notify", true)) {
      n.url = v->get();
      if (auto url = ParseHttpUrl(n.url); !url.ok())
        r_.Error(*v, "notify.url", url.error().message());
    }
    if (auto d = r_.Duration(t, "before", "notify", false)) n.before = *d;
    p_.notify = std::move(n);
  }

  void ReadPostgres(const toml::table& t) {
    r_.CheckKeys(t, "postgres", {"database"}, "[postgres]");
    Postgres pg;
    pg.where = r_.Where(t);
    if (auto* v = r_.String(t, "database", "postgres")) {
      pg.database = v->get();
      r_.CheckPlaceholdersAt(*v, "postgres.database", pg.database,
                             Scope(PlaceholderContext::kDatabaseName, "[postgres] database"));
      if (pg.database.empty()) r_.Error(*v, "postgres.database", "must not be empty");
    }
    p_.postgres = pg;
  }

  // Reads `routes`; remembers each kept route's dotted key (its index in the file's
  // array, which skipped malformed routes would shift) under `prefix`.
  void ReadRoutes(const toml::table& t, const std::string& prefix, std::vector<Route>* out) {
    auto items = r_.Strings(t, "routes", prefix);
    if (!items) return;
    for (auto& item : *items) {
      Route route;
      std::string problem = ParseRoute(item.value, &route);
      if (!problem.empty()) {
        r_.Error(item.where, item.key, problem);
        continue;
      }
      route.where = item.where;
      route_keys_[{prefix, out->size()}] = item.key;
      out->push_back(route);
    }
  }

  void ReadStatic(const toml::table& t) {
    r_.CheckKeys(t, "static", {"routes"}, "[static]");
    Static s;
    s.where = r_.Where(t);
    ReadRoutes(t, "static", &s.routes);
    p_.static_files = std::move(s);
  }

  void ReadImageRef(const toml::table& t, const std::string& prefix, std::string* image) {
    auto* v = r_.String(t, "image", prefix, true);
    if (v == nullptr) return;
    *image = v->get();
    if (!scope_images_.count(*image)) {
      std::vector<std::string> names(scope_images_.begin(), scope_images_.end());
      std::string message = "image '" + *image + "' is not defined in [images]";
      std::string suggestion = Closest(*image, names);
      if (!suggestion.empty())
        message += " (did you mean '" + suggestion + "'?)";
      else if (!names.empty())
        message += " (images: " + Join(names) + ")";
      r_.Error(*v, prefix + ".image", message);
    }
    used_images_.insert(*image);
  }

  void ReadHealth(const toml::node& node, const std::string& prefix, Service* s) {
    HealthCheck h;
    h.where = r_.Where(node);
    const toml::node* path_node = nullptr;
    if (node.is_string()) {
      h.path = node.as_string()->get();
      path_node = &node;
    } else if (const toml::table* t = node.as_table()) {
      r_.CheckKeys(*t, prefix,
                   {"path", "command", "interval", "timeout", "healthy", "unhealthy", "matcher",
                    "start_timeout"},
                   "[" + prefix + "]");
      if (auto* v = r_.String(*t, "path", prefix)) {
        h.path = v->get();
        path_node = v;
      }
      if (auto* v = r_.String(*t, "command", prefix)) {
        h.command = v->get();
        r_.CheckPlaceholdersAt(*v, prefix + ".command", h.command, CommandScope(*s));
        if (h.command.empty()) r_.Error(*v, prefix + ".command", "must not be empty");
      }
      if (path_node && !h.command.empty())
        r_.Error(node, prefix, "give either path or command, not both");
      if (!path_node && h.command.empty() && !t->contains("command"))
        r_.Error(node, prefix, "needs a path (HTTP check) or a command");
      if (auto d = r_.Duration(*t, "interval", prefix, false)) h.interval = *d;
      if (auto d = r_.Duration(*t, "timeout", prefix, false)) h.timeout = *d;
      if (auto d = r_.Duration(*t, "start_timeout", prefix, false)) h.start_timeout = *d;
      r_.Int(*t, "healthy", prefix, 1, 100, "must be between 1 and 100", &h.healthy);
      r_.Int(*t, "unhealthy", prefix, 1, 100, "must be between 1 and 100", &h.unhealthy);
      if (auto* v = r_.String(*t, "matcher", prefix)) {
        std::string problem = ParseMatcher(v->get(), &h.matcher_ranges);
        if (problem.empty())
          h.matcher = v->get();
        else
          r_.Error(*v, prefix + ".matcher", problem);
      }
    } else {
      r_.Error(node, prefix, "expected a path string or a table, got " + TypeName(node));
      return;
    }
    if (path_node) {
      std::string key = node.is_string() ? prefix : prefix + ".path";
      if (h.path.empty() || h.path[0] != '/' || h.path.find(' ') != std::string::npos)
        r_.Error(*path_node, key, "health path '" + h.path + "' must start with '/', no spaces");
      else if (!port_declared_)
        r_.Error(*path_node, key,
                 "a health path needs a port: service '" + s->name +
                     "' has none (use a health command instead)");
    }
    s->health = h;
  }

  // A port key that is present but wrong counts as a port: its own error is enough.
  PlaceholderScope CommandScope(const Service& s) const {
    bool port = s.port || port_declared_;
    return Scope(
        port ? PlaceholderContext::kServiceWithPort : PlaceholderContext::kServiceWithoutPort,
        "service '" + s.name + "'" + (port ? "" : " (it has no port)"));
  }

  void ReadService(const std::string& name, const toml::key& key, const toml::table& t,
                   const std::string& prefix) {
    CheckName("service", key, prefix);
    r_.CheckKeys(
        t, prefix,
        {"image", "command", "port", "health", "routes", "priority", "count", "cpu", "memory",
         "stop_signal", "stop_timeout", "templates", "env", "singleton", "drain"},
        "[" + prefix + "]");
    Service s;
    s.name = name;
    s.where = r_.Where(key.source());
    ReadImageRef(t, prefix, &s.image);
    port_declared_ = t.contains("port");
    int port = 0;
    if (r_.Int(t, "port", prefix, 1, 65535, "must be a port between 1 and 65535", &port))
      s.port = port;
    if (auto* v = r_.String(t, "command", prefix, true)) {
      s.command = v->get();
      if (s.command.empty()) r_.Error(*v, prefix + ".command", "must not be empty");
      r_.CheckPlaceholdersAt(*v, prefix + ".command", s.command, CommandScope(s));
    }
    if (const toml::node* h = t.get("health")) ReadHealth(*h, prefix + ".health", &s);
    ReadRoutes(t, prefix, &s.routes);
    if (!s.routes.empty() && !port_declared_)
      r_.Error(s.routes.front().where, route_keys_[{prefix, 0}],
               "routes need a port: service '" + name + "' has none");
    int priority = 0;
    if (r_.Int(t, "priority", prefix, 1, 50000, "must be between 1 and 50000", &priority))
      s.priority = priority;
    r_.Int(t, "count", prefix, 0, 1000, "must be between 0 and 1000", &s.count);
    r_.Int(t, "cpu", prefix, 1, 1024 * 256, "must be more than 0 (1/1024 core units)", &s.cpu);
    r_.Int(t, "memory", prefix, 1, 1024 * 1024, "must be more than 0 (MiB)", &s.memory);
    if (auto* v = r_.String(t, "stop_signal", prefix)) {
      std::string signal = v->get();
      if (signal.rfind("SIG", 0) == 0) signal = signal.substr(3);
      bool known = false;
      std::vector<std::string> names;
      for (const SignalName& sn : kStopSignals) {
        names.push_back(sn.name);
        if (signal == sn.name) {
          known = true;
          s.stop_signal = sn.name;
          s.stop_signal_number = sn.number;
        }
      }
      if (!known)
        r_.Error(*v, prefix + ".stop_signal",
                 "unknown signal '" + v->get() + "' (expected one of " + Join(names) + ")");
    }
    if (auto d = r_.Duration(t, "stop_timeout", prefix, true)) s.stop_timeout = *d;
    if (auto d = r_.Duration(t, "drain", prefix, true)) s.drain = *d;
    if (const toml::node* single = t.get("singleton")) {
      if (const auto* b = single->as_boolean())
        s.singleton = b->get();
      else
        r_.Error(*single, prefix + ".singleton", "must be true or false");
    }
    if (s.singleton && s.count > 1)
      r_.Error(s.where, prefix + ".count",
               "a singleton service runs one task at most (count " + std::to_string(s.count) + ")");
    if (auto items = r_.Strings(t, "templates", prefix)) {
      for (auto& item : *items) {
        const std::string& name_in = item.value;
        if (!IsSafeRelativePath(name_in))
          r_.Error(item.where, item.key,
                   "template '" + name_in + "' must be a file inside the image folder");
        else if (TemplateOutputName(name_in) == name_in)
          r_.Error(item.where, item.key,
                   "template '" + name_in + "' must end in \".in\" (it is rendered without it)");
        else
          s.templates.push_back(name_in);
      }
    }
    if (const toml::table* env = r_.Table(t, "env", prefix))
      s.env = r_.Env(*env, prefix + ".env", CommandScope(s));
    p_.services.push_back(std::move(s));
  }

  void ReadTask(const std::string& name, const toml::key& key, const toml::table& t,
                const std::string& prefix) {
    CheckName("task", key, prefix);
    if (p_.FindService(name))
      r_.Error(r_.Where(key.source()), prefix,
               "a service is named '" + name + "' too (`adhoc logs` could not tell them apart)");
    r_.CheckKeys(t, prefix, {"image", "command", "before", "after", "cache", "timeout", "env"},
                 "[" + prefix + "]");
    Task task;
    task.name = name;
    task.where = r_.Where(key.source());
    PlaceholderScope scope = Scope(PlaceholderContext::kTask, "task '" + name + "'");
    ReadImageRef(t, prefix, &task.image);
    if (auto* v = r_.String(t, "command", prefix, true)) {
      task.command = v->get();
      if (task.command.empty()) r_.Error(*v, prefix + ".command", "must not be empty");
      r_.CheckPlaceholdersAt(*v, prefix + ".command", task.command, scope);
    }
    auto one_of = [&](const char* key_name, const char* only) -> bool {
      auto* v = r_.String(t, key_name, prefix);
      if (v == nullptr) return false;
      if (v->get() != only) {
        r_.Error(*v, prefix + "." + key_name,
                 "unknown value '" + v->get() + "' (the only value is \"" + only + "\")");
        return false;
      }
      return true;
    };
    if (one_of("before", "deploy")) task.before = Task::Before::kDeploy;
    if (one_of("after", "create")) task.after = Task::After::kCreate;
    if (auto* v = r_.String(t, "cache", prefix)) {
      if (v->get() == "database") {
        task.cache = Task::Cache::kDatabase;
      } else if (v->get() == "static") {
        task.cache = Task::Cache::kStatic;
      } else {
        r_.Error(*v, prefix + ".cache",
                 "unknown value '" + v->get() + "' (\"database\" or \"static\")");
      }
      if (task.cache != Task::Cache::kNone && task.before != Task::Before::kDeploy)
        r_.Error(*v, prefix + ".cache", "only a before = \"deploy\" task can be cached");
    }
    if (auto d = r_.Duration(t, "timeout", prefix, false)) task.timeout = *d;
    if (const toml::table* env = r_.Table(t, "env", prefix))
      task.env = r_.Env(*env, prefix + ".env", scope);
    p_.tasks.push_back(std::move(task));
  }

  void ReadTargets(const toml::table& t) {
    for (const auto& [key, node] : InFileOrder(t)) {
      std::string name(key->str());
      std::string prefix = "targets." + name;
      if (name != "aws" && name != "kubernetes") {
        std::string message = "unknown target '" + name + "' (known: aws, kubernetes)";
        std::string suggestion = Closest(name, {"aws", "kubernetes"});
        if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
        r_.Error(r_.Where(key->source()), prefix, message);
        continue;
      }
      if (!node->is_table()) {
        r_.Error(*node, prefix, "expected a table, got " + TypeName(*node));
        continue;
      }
      const toml::table& tt = *node->as_table();
      auto str = [&](const char* k, std::string* out) {
        if (auto* v = r_.String(tt, k, prefix)) *out = v->get();
      };
      if (name == "aws") {
        r_.CheckKeys(
            tt, prefix,
            {"domain", "registry", "region", "certificate_arn", "hosted_zone_id", "state_bucket",
             "lock_table", "postgres_version", "db_instance_class", "rule_quota"},
            "[" + prefix + "]");
        AwsTarget aws;
        aws.where = r_.Where(key->source());
        str("domain", &aws.domain);
        str("registry", &aws.registry);
        str("region", &aws.region);
        str("certificate_arn", &aws.certificate_arn);
        str("hosted_zone_id", &aws.hosted_zone_id);
        str("state_bucket", &aws.state_bucket);
        str("lock_table", &aws.lock_table);
        str("postgres_version", &aws.postgres_version);
        str("db_instance_class", &aws.db_instance_class);
        r_.Int(tt, "rule_quota", prefix, 1, 10000, "must be between 1 and 10000", &aws.rule_quota);
        if (!aws.domain.empty() && !IsDomain(aws.domain))
          r_.Error(*tt.get("domain"), prefix + ".domain",
                   "'" + aws.domain + "' is not a domain name");
        if (!aws.certificate_arn.empty() && !aws.certificate_arn.starts_with("arn:"))
          r_.Error(*tt.get("certificate_arn"), prefix + ".certificate_arn",
                   "'" + aws.certificate_arn + "' is not an ARN (arn:aws:acm:...)");
        for (const char* k : {"region", "state_bucket", "lock_table", "hosted_zone_id"}) {
          const toml::node* n = tt.get(k);
          if (n == nullptr || !n->is_string()) continue;
          const std::string& v = n->as_string()->get();
          bool fine = !v.empty() || std::string_view(k) != "region";
          for (char c : v)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_'))
              fine = false;
          if (!fine)
            r_.Error(*n, prefix + "." + k,
                     "'" + v + "' is not a valid AWS name (letters, digits, '-', '.', '_')");
        }
        p_.targets.aws = aws;
      } else {
        r_.CheckKeys(tt, prefix,
                     {"namespace_prefix", "ingress_class", "registry", "domain", "postgres",
                      "postgres_host"},
                     "[" + prefix + "]");
        KubernetesTarget k8s;
        k8s.where = r_.Where(key->source());
        str("namespace_prefix", &k8s.namespace_prefix);
        str("ingress_class", &k8s.ingress_class);
        str("registry", &k8s.registry);
        str("domain", &k8s.domain);
        str("postgres_host", &k8s.postgres_host);
        if (!k8s.domain.empty() && !IsDomain(k8s.domain))
          r_.Error(*tt.get("domain"), prefix + ".domain",
                   "'" + k8s.domain + "' is not a domain name");
        if (auto* v = r_.String(tt, "postgres", prefix)) {
          if (v->get() == "statefulset")
            k8s.postgres = KubernetesTarget::Postgres::kStatefulSet;
          else if (v->get() != "external")
            r_.Error(*v, prefix + ".postgres",
                     "unknown value '" + v->get() + "' (\"external\" or \"statefulset\")");
        }
        p_.targets.kubernetes = k8s;
      }
    }
  }

  void CheckImagesUsed() {
    for (const Image& image : p_.images) {
      if (!used_images_.count(image.name))
        r_.Error(image.where, "images." + image.name,
                 "image '" + image.name + "' is used by no service and no task");
    }
  }

  void CheckDuplicateRoutes() {
    struct Seen {
      const Route* route;
      std::string key;
      std::optional<int> priority;
      std::string owner;
    };
    std::vector<Seen> all;
    if (p_.static_files) {
      for (size_t i = 0; i < p_.static_files->routes.size(); ++i)
        all.push_back(
            {&p_.static_files->routes[i], route_keys_[{"static", i}], std::nullopt, "[static]"});
    }
    for (const Service& s : p_.services) {
      for (size_t i = 0; i < s.routes.size(); ++i)
        all.push_back({&s.routes[i], route_keys_[{"services." + s.name, i}], s.priority,
                       "service '" + s.name + "'"});
    }
    std::stable_sort(all.begin(), all.end(), [](const Seen& a, const Seen& b) {
      return a.route->where.line != b.route->where.line
                 ? a.route->where.line < b.route->where.line
                 : a.route->where.column < b.route->where.column;
    });
    for (size_t i = 0; i < all.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (all[i].route->pattern != all[j].route->pattern) continue;
        if (all[i].priority && all[j].priority && *all[i].priority != *all[j].priority) continue;
        r_.Error(all[i].route->where, all[i].key,
                 "duplicate route '" + all[i].route->pattern + "': also " + all[j].key + " (line " +
                     std::to_string(all[j].route->where.line) +
                     "); drop one, or give the services different priorities");
        break;
      }
    }
  }

  Reader& r_;
  Project& p_;
  std::set<std::string> scope_images_;
  std::set<std::string> used_images_;
  bool port_declared_ = false;                                        // of the service being read
  std::map<std::pair<std::string, size_t>, std::string> route_keys_;  // (owner, index) -> key
};

// ---- envs/<name>.toml -------------------------------------------------------------

// Largest slot: priorities are slot * 100 + rule, and ALB priorities stop at 50000.
constexpr int kMaxAwsSlot = 499;

// [targets.aws] of an env file: `slot`, written by `adhoc render aws` on first render.
void ReadEnvTargets(Reader& r, const toml::table& t, EnvFile* e) {
  r.CheckKeys(t, "targets", {"aws"}, "[targets]");
  const toml::table* aws = r.Table(t, "aws", "targets");
  if (aws == nullptr) return;
  r.CheckKeys(*aws, "targets.aws", {"slot"}, "[targets.aws]");
  EnvAwsTarget target;
  target.where = r.Where(*aws);
  int slot = 0;
  if (r.Int(*aws, "slot", "targets.aws", 1, kMaxAwsSlot,
            "must be between 1 and " + std::to_string(kMaxAwsSlot), &slot)) {
    target.slot = slot;
    target.where = r.Where(*aws->get("slot"));
  }
  e->aws = target;
}

void ReadEnvFile(Reader& r, const toml::table& root, const Project* project, EnvFile* e) {
  r.CheckKeys(root, "",
              {"owner", "ttl", "sleep_after", "data", "versions", "env", "access", "targets"},
              r.file());
  PlaceholderScope scope;
  scope.context = PlaceholderContext::kTask;
  scope.where = "[env] of " + r.file();
  if (project) {
    for (const Image& image : project->images) scope.images.insert(image.name);
    scope.postgres = project->postgres.has_value();
    scope.redis = project->redis.has_value();
  } else {
    // Without the project, only what the file alone shows can be checked: accept
    // every version/postgres/redis placeholder by pretending they are all defined.
    scope.postgres = scope.redis = true;
  }
  if (auto* v = r.String(root, "owner", "")) e->owner = v->get();
  e->ttl = r.Duration(root, "ttl", "", false, true);
  e->sleep_after = r.Duration(root, "sleep_after", "", false, true);
  if (auto* v = r.String(root, "data", "")) {
    const std::string& text = v->get();
    size_t colon = text.find(':');
    std::string kind = text.substr(0, colon);
    std::string argument = colon == std::string::npos ? "" : text.substr(colon + 1);
    if (text.empty()) {
      e->data = DataSource{};
    } else if (colon == std::string::npos || argument.empty() ||
               (kind != "snapshot" && kind != "env" && kind != "file")) {
      r.Error(*v, "data",
              "bad data source '" + text +
                  "' (expected \"snapshot:NAME\", \"env:NAME\", \"file:PATH\" or \"\")");
    } else {
      e->data.argument = argument;
      if (kind == "snapshot") {
        e->data.kind = DataSource::Kind::kSnapshot;
        Status s = ValidateObjectName("snapshot", argument);
        if (!s.ok()) r.Error(*v, "data", s.error().message());
      } else if (kind == "env") {
        e->data.kind = DataSource::Kind::kEnv;
        Status s = ValidateEnvName(argument);
        if (!s.ok()) r.Error(*v, "data", s.error().message());
      } else {
        e->data.kind = DataSource::Kind::kFile;
      }
    }
  }
  if (const toml::table* t = r.Table(root, "versions", "")) {
    for (const auto& [key, node] : InFileOrder(*t)) {
      std::string image(key->str());
      std::string dotted = "versions." + image;
      if (!node->is_string()) {
        r.Error(*node, dotted, "expected a git ref string, got " + TypeName(*node));
        continue;
      }
      std::string ref = node->as_string()->get();
      if (project && !project->FindImage(image)) {
        std::vector<std::string> names;
        for (const Image& i : project->images) names.push_back(i.name);
        std::string message = "no image '" + image + "' in adhoc.toml";
        std::string suggestion = Closest(image, names);
        if (!suggestion.empty())
          message += " (did you mean '" + suggestion + "'?)";
        else if (!names.empty())
          message += " (images: " + Join(names) + ")";
        r.Error(r.Where(key->source()), dotted, message);
      }
      bool bad_char = false;
      for (char c : ref)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) bad_char = true;
      if (ref.empty() || bad_char)
        r.Error(*node, dotted, "'" + ref + "' is not a git ref (empty or with spaces)");
      else if (ref[0] == '@' && ref != kWorktreeRef)
        r.Error(*node, dotted, "'" + ref + "': the only special ref is \"@worktree\"");
      e->versions.push_back({image, ref, r.Where(key->source())});
    }
  }
  if (const toml::table* t = r.Table(root, "env", "")) e->env = r.Env(*t, "env", scope);
  if (const toml::table* t = r.Table(root, "access", "")) {
    e->access = ReadAccess(r, *t, scope);
    // Against the project's default when it is known (it may hold the credentials), and only
    // when this file changes what the rule is about (else adhoc.toml's own error says it).
    const Access& mine = *e->access;
    if (project && (mine.public_paths || mine.basic_auth || mine.token)) {
      bool own = mine.public_paths.has_value();
      CheckPublicPaths(r, *EffectiveAccess(*project, *e),
                       own ? mine.Where("public_paths") : mine.where,
                       std::string(own ? "public_paths" : "public_paths (of adhoc.toml)") +
                           " needs basic_auth or token, here or in adhoc.toml's [access]");
    }
  }
  if (const toml::table* t = r.Table(root, "targets", "")) ReadEnvTargets(r, *t, e);
}

// Parses TOML text; a syntax error becomes a diagnostic and nullopt.
std::optional<toml::table> ParseToml(std::string_view text, const std::string& file_name,
                                     std::vector<Diagnostic>* out) {
  try {
    return toml::parse(text, std::string_view(file_name));
  } catch (const toml::parse_error& e) {
    out->push_back(Diagnostic{Diagnostic::Severity::kError, file_name,
                              static_cast<int>(e.source().begin.line),
                              static_cast<int>(e.source().begin.column), "",
                              "TOML syntax: " + std::string(e.description())});
    return std::nullopt;
  }
}

std::optional<std::string> ReadFile(const fs::path& path, const std::string& shown,
                                    std::vector<Diagnostic>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out->push_back(
        Diagnostic{Diagnostic::Severity::kError, shown, 0, 0, "", "cannot be read (missing?)"});
    return std::nullopt;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Loaded<Project> LoadProjectAs(const fs::path& path, const std::string& shown) {
  Loaded<Project> loaded;
  std::optional<std::string> text = ReadFile(path, shown, &loaded.diagnostics);
  if (!text) return loaded;
  return ParseProject(*text, shown);
}

Loaded<EnvFile> LoadEnvFileAs(const fs::path& path, const std::string& shown,
                              const Project* project) {
  Loaded<EnvFile> loaded;
  std::optional<std::string> text = ReadFile(path, shown, &loaded.diagnostics);
  if (!text) return loaded;
  return ParseEnvFile(*text, path.stem().string(), shown, project);
}

// File order: what a reader fixing the file top to bottom wants.
void SortByPosition(std::vector<Diagnostic>* diagnostics) {
  std::stable_sort(diagnostics->begin(), diagnostics->end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return a.line != b.line ? a.line < b.line : a.column < b.column;
                   });
}

}  // namespace

Loaded<Project> ParseProject(std::string_view text, const std::string& file_name) {
  Loaded<Project> loaded;
  std::optional<toml::table> root = ParseToml(text, file_name, &loaded.diagnostics);
  if (!root) return loaded;
  Reader reader(FileKind::kProject, file_name, &loaded.diagnostics);
  ProjectReader(&reader, &loaded.value).Read(*root);
  SortByPosition(&loaded.diagnostics);
  return loaded;
}

Loaded<Project> LoadProject(const fs::path& path) { return LoadProjectAs(path, path.string()); }

Loaded<EnvFile> ParseEnvFile(std::string_view text, const std::string& env_name,
                             const std::string& file_name, const Project* project) {
  Loaded<EnvFile> loaded;
  loaded.value.name = env_name;
  loaded.value.where = SourceLocation{file_name, 1, 1};
  Status name_ok = ValidateEnvName(env_name);
  if (!name_ok.ok())
    loaded.diagnostics.push_back(
        Diagnostic{Diagnostic::Severity::kError, file_name, 0, 0, "",
                   "the file name must be a valid environment name: " + name_ok.error().message()});
  std::optional<toml::table> root = ParseToml(text, file_name, &loaded.diagnostics);
  if (!root) return loaded;
  Reader reader(FileKind::kEnvFile, file_name, &loaded.diagnostics);
  ReadEnvFile(reader, *root, project, &loaded.value);
  SortByPosition(&loaded.diagnostics);
  return loaded;
}

Loaded<EnvFile> LoadEnvFile(const fs::path& path, const Project* project) {
  return LoadEnvFileAs(path, path.string(), project);
}

const EnvFile* Workspace::FindEnv(const std::string& name) const {
  for (const EnvFile& e : envs)
    if (e.name == name) return &e;
  return nullptr;
}

namespace {

// The project env files are checked against, or nullptr when it could not be read well enough
// to tell (its file unreadable or not TOML, or [images] not a table): then every version would
// look like an unknown image.
const Project* ProjectForEnvFiles(const Loaded<Project>& project) {
  for (const Diagnostic& d : project.diagnostics) {
    if (!d.is_error()) continue;
    if (d.key.empty()) return nullptr;  // the whole file: unreadable, or a TOML syntax error
    bool images_entry = d.key == "images" ||
                        (d.key.starts_with("images.") && d.key.find('.', 7) == std::string::npos &&
                         d.message.starts_with("expected a table"));
    if (images_entry) return nullptr;
  }
  return &project.value;
}

}  // namespace

Loaded<Workspace> LoadWorkspace(const fs::path& dir) {
  Loaded<Workspace> loaded;
  Loaded<Project> project = LoadProjectAs(dir / "adhoc.toml", "adhoc.toml");
  const Project* check_against = ProjectForEnvFiles(project);
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(dir / "envs", ec)) {
    for (const auto& entry : fs::directory_iterator(dir / "envs", ec))
      if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  loaded.diagnostics = project.diagnostics;
  for (const fs::path& file : files) {
    Loaded<EnvFile> env = LoadEnvFileAs(file, "envs/" + file.filename().string(), check_against);
    loaded.value.envs.push_back(std::move(env.value));
    for (Diagnostic& d : env.diagnostics) loaded.diagnostics.push_back(std::move(d));
  }
  loaded.value.project = std::move(project.value);
  return loaded;
}

Loaded<Workspace> LoadForEnvironment(const fs::path& dir, const std::string& env) {
  Loaded<Workspace> loaded;
  Loaded<Project> project = LoadProjectAs(dir / "adhoc.toml", "adhoc.toml");
  loaded.diagnostics = project.diagnostics;
  const std::string shown = "envs/" + env + ".toml";
  if (Status name = ValidateEnvName(env); !name.ok()) {
    loaded.diagnostics.push_back(Diagnostic{Diagnostic::Severity::kError, shown, 0, 0, "",
                                            "not an environment name: " + name.error().message()});
  } else {
    std::error_code ec;
    const fs::path file = dir / "envs" / (env + ".toml");
    if (fs::exists(file, ec)) {
      Loaded<EnvFile> env_file = LoadEnvFileAs(file, shown, ProjectForEnvFiles(project));
      loaded.value.envs.push_back(std::move(env_file.value));
      for (Diagnostic& d : env_file.diagnostics) loaded.diagnostics.push_back(std::move(d));
    }
  }
  loaded.value.project = std::move(project.value);
  return loaded;
}

}  // namespace adhoc::spec
