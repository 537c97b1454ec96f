#include "render/container.h"

#include <algorithm>
#include <optional>

#include "spec/placeholders.h"

namespace adhoc::render {

bool IsSecretPlaceholder(const std::string& key) {
  return key == "postgres.password" || key == "postgres.url" || key == "redis.password" ||
         key == "redis.url" || key.starts_with("random.") || key.starts_with("secret.");
}

bool HoldsSecret(const std::string& text) {
  for (const spec::Placeholder& p : spec::FindPlaceholders(text))
    if (IsSecretPlaceholder(p.Key())) return true;
  return false;
}

std::string ImageTag(const std::string& ref) {
  std::string tag;
  for (char c : ref) {
    bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-';
    tag += fine ? c : '-';
  }
  if (tag.empty() || tag[0] == '.' || tag[0] == '-') tag = "v" + tag;
  if (tag.size() > 128) tag.resize(128);
  return tag;
}

std::string TemplateEnvName(const std::string& output_name) {
  std::string name = "ADHOC_TEMPLATE_";
  for (char c : output_name) {
    if (c >= 'a' && c <= 'z')
      name += static_cast<char>(c - 'a' + 'A');
    else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      name += c;
    else
      name += '_';
  }
  return name;
}

namespace {

// A command the shell would run as one program: no operators, redirections or expansions
// that `exec` would change the meaning of.
bool IsSimpleCommand(const std::string& command) {
  return command.find_first_of(";&|<>`$()\n") == std::string::npos;
}

}  // namespace

std::vector<std::string> ContainerCommand(const std::string& command,
                                          const std::string& stop_signal,
                                          const std::map<std::string, std::string>& template_env) {
  std::string script = std::string("mkdir -p ") + kCloudTaskdir + " " + kCloudStatic;
  for (const auto& [file, variable] : template_env)
    script += " && printf '%s' \"$" + variable + "\" > " + kCloudTaskdir + "/" + file;
  script += " && cd " + std::string(kCloudWorkdir) + " && ";
  if (stop_signal == "TERM" || stop_signal.empty()) {
    script += IsSimpleCommand(command) ? "exec " + command : command;
  } else {
    // ECS and Kubernetes stop with SIGTERM: relay the service's own signal to its process.
    script += "trap 'kill -" + stop_signal + " $child' TERM; " + command +
              " & child=$!; wait $child; trap - TERM; wait $child";
  }
  return {"/bin/sh", "-c", script};
}

std::vector<RouteRule> OrderedRules(const spec::Project& project, size_t max_paths) {
  struct Entry {
    const spec::Service* service;
    const spec::Route* route;
    size_t order;  // file order, the last tie-breaker
  };
  std::vector<Entry> entries;
  size_t order = 0;
  for (const spec::Service& s : project.services) {
    if (!s.port) continue;
    for (const spec::Route& r : s.routes) entries.push_back({&s, &r, order++});
  }
  auto rank = [](const spec::Route& r) {
    return r.kind == spec::Route::Kind::kExact ? 0 : r.kind == spec::Route::Kind::kPrefix ? 1 : 2;
  };
  std::stable_sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    int pa = a.service->priority.value_or(1 << 30), pb = b.service->priority.value_or(1 << 30);
    if (pa != pb) return pa < pb;
    if (rank(*a.route) != rank(*b.route)) return rank(*a.route) < rank(*b.route);
    if (a.route->path.size() != b.route->path.size())
      return a.route->path.size() > b.route->path.size();
    return a.order < b.order;
  });
  std::vector<RouteRule> rules;
  for (const Entry& e : entries) {
    std::vector<std::string> paths;
    if (e.route->kind == spec::Route::Kind::kExact) {
      paths = {e.route->path};
    } else if (e.route->kind == spec::Route::Kind::kPrefix) {
      paths = {e.route->path, e.route->path + "/*"};
    }
    if (e.route->kind == spec::Route::Kind::kCatchAll) {
      rules.push_back({e.service->name, {}, true});
      continue;
    }
    bool joins = !rules.empty() && rules.back().service == e.service->name &&
                 !rules.back().catch_all && rules.back().paths.size() + paths.size() <= max_paths;
    if (!joins) rules.push_back({e.service->name, {}, false});
    for (std::string& p : paths) rules.back().paths.push_back(std::move(p));
  }
  return rules;
}

}  // namespace adhoc::render
