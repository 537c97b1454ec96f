#include "router/route_table.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace adhoc::router {

const char* EnvStatusName(EnvStatus status) {
  switch (status) {
    case EnvStatus::kRunning:
      return "running";
    case EnvStatus::kStarting:
      return "starting";
    case EnvStatus::kFailed:
      return "failed";
    case EnvStatus::kSleeping:
      return "sleeping";
  }
  return "unknown";
}

Result<EnvStatus> ParseEnvStatus(std::string_view name) {
  if (name == "running") return EnvStatus::kRunning;
  if (name == "starting") return EnvStatus::kStarting;
  if (name == "failed") return EnvStatus::kFailed;
  if (name == "sleeping") return EnvStatus::kSleeping;
  return BadInput("unknown status '" + std::string(name) +
                  "' (running, starting, failed, sleeping)");
}

bool Route::Matches(std::string_view request_path) const {
  return PatternMatches(kind, path, request_path);
}

const Route* Environment::Match(std::string_view path) const {
  for (const Route& route : routes) {
    if (route.Matches(path)) return &route;
  }
  return nullptr;
}

std::shared_ptr<UpstreamState> SharedStateRegistry::Upstream(const std::string& address) {
  std::lock_guard lock(mu_);
  auto& weak = upstreams_[address];
  auto state = weak.lock();
  if (!state) {
    state = std::make_shared<UpstreamState>(address);
    weak = state;
  }
  // Drop entries of addresses nobody holds any more, so the map does not grow forever.
  if (upstreams_.size() > 64 && upstreams_.size() % 64 == 0) {
    std::erase_if(upstreams_, [](const auto& kv) { return kv.second.expired(); });
  }
  return state;
}

std::shared_ptr<EnvStats> SharedStateRegistry::Stats(const std::string& env) {
  std::lock_guard lock(mu_);
  auto& stats = stats_[env];
  if (!stats) stats = std::make_shared<EnvStats>();
  return stats;
}

int SharedStateRegistry::Outstanding(const std::string& address) {
  std::lock_guard lock(mu_);
  auto it = upstreams_.find(address);
  if (it == upstreams_.end()) return 0;
  auto state = it->second.lock();
  return state ? state->outstanding.load() : 0;
}

std::shared_ptr<EnvStats> SharedStateRegistry::ForgetEnv(const std::string& env) {
  std::lock_guard lock(mu_);
  auto it = stats_.find(env);
  if (it == stats_.end()) return nullptr;
  std::shared_ptr<EnvStats> stats = std::move(it->second);
  stats->removed.store(true);
  stats_.erase(it);
  return stats;
}

void RequestMetrics::Record(int status, int64_t micros) {
  int cls = status / 100 - 1;
  if (cls >= 0 && cls < 5) by_class[cls].fetch_add(1, std::memory_order_relaxed);
  size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && micros > kLatencyBuckets[bucket] * 1e6) ++bucket;
  latency[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_sum_us.fetch_add(static_cast<uint64_t>(micros < 0 ? 0 : micros),
                           std::memory_order_relaxed);
}

std::shared_ptr<RequestMetrics> EnvStats::Service(const std::string& label) {
  std::lock_guard lock(mu_);
  for (auto& [name, metrics] : services_) {
    if (name == label) return metrics;
  }
  services_.emplace_back(label, std::make_shared<RequestMetrics>());
  return services_.back().second;
}

std::vector<std::pair<std::string, std::shared_ptr<RequestMetrics>>> EnvStats::Services() const {
  std::lock_guard lock(mu_);
  return services_;
}

Status ParsePattern(Route& route) {
  auto parsed = ParsePathPattern(route.pattern);
  if (!parsed.ok()) return BadInput("route " + parsed.error().message());
  route.kind = parsed->kind;
  route.path = std::move(parsed->path);
  return OkStatus();
}

Status ParseTargetAddress(Target& target) {
  const std::string& a = target.address;
  auto bad = [&](const char* why) {
    return BadInput("target address '" + a + "': " + why + " (want host:port)");
  };
  size_t colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("no port");
  std::string host = a.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return bad("bad IPv6 literal");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad("IPv6 addresses need brackets");
  }
  std::string_view port = std::string_view(a).substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return bad("bad port");
  }
  target.host = host;
  target.port = static_cast<uint16_t>(value);
  return OkStatus();
}

std::string NormalizeHost(std::string_view host) {
  std::string out;
  NormalizeHostInto(host, out);
  return out;
}

void NormalizeHostInto(std::string_view host, std::string& out) {
  out.clear();
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(0, close == std::string_view::npos ? host.size() : close + 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // "demo.localhost."
  for (char c : host) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
}

namespace {

// Specificity rank without explicit priority: exact, then prefixes (longer first), then /*.
bool Precedes(const Route& a, const Route& b) {
  if (a.priority.has_value() != b.priority.has_value()) return a.priority.has_value();
  if (a.priority && *a.priority != *b.priority) return *a.priority < *b.priority;
  if (a.priority) return false;
  auto rank = [](const Route& r) {
    return r.kind == PatternKind::kExact ? 0 : r.kind == PatternKind::kPrefix ? 1 : 2;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b);
  if (a.kind == PatternKind::kPrefix) return a.path.size() > b.path.size();
  return false;
}

Result<Environment> Prepare(Environment env, SharedStateRegistry& registry) {
  if (env.name.empty()) return BadInput("environment without a name");
  auto ctx = "environment '" + env.name + "'";
  if (env.hosts.empty()) return BadInput("no hosts").context(ctx);
  for (std::string& host : env.hosts) {
    host = NormalizeHost(host);
    if (host.empty()) return BadInput("empty host").context(ctx);
  }
  for (Route& route : env.routes) {
    ADHOC_RETURN_IF_ERROR(std::move(ParsePattern(route)).context(ctx));
    if (route.is_folder() && !route.targets.empty()) {
      return BadInput("route '" + route.pattern + "' has both a folder and targets").context(ctx);
    }
    if (route.is_folder() && route.folder.front() != '/') {
      return BadInput("route '" + route.pattern + "': folder must be an absolute path")
          .context(ctx);
    }
    for (Target& target : route.targets) {
      ADHOC_RETURN_IF_ERROR(std::move(ParseTargetAddress(target))
                                .context("route '" + route.pattern + "'")
                                .context(ctx));
      target.state = registry.Upstream(target.address);
    }
  }
  std::stable_sort(env.routes.begin(), env.routes.end(), Precedes);
  env.stats = registry.Stats(env.name);
  for (Route& route : env.routes) {
    route.metrics = env.stats->Service(!route.service.empty() ? route.service
                                       : route.is_folder()    ? kFolderLabel
                                                              : kRouterLabel);
  }
  env.router_metrics = env.stats->Service(kRouterLabel);
  if (env.access && env.access->empty()) env.access.reset();
  return env;
}

}  // namespace

Result<std::shared_ptr<const RouteTable>> RouteTable::FromMap(EnvMap envs) {
  auto table = std::make_shared<RouteTable>();
  for (const auto& [name, env] : envs) {
    for (const std::string& host : env->hosts) {
      auto [it, inserted] = table->by_host_.emplace(host, env.get());
      if (!inserted && it->second != env.get()) {
        return Conflict("host '" + host + "' belongs to both '" + it->second->name + "' and '" +
                        name + "'");
      }
    }
    for (const Route& route : env->routes) {
      for (const Target& target : route.targets) table->addresses_.insert(target.address);
    }
  }
  table->envs_ = std::move(envs);
  return std::shared_ptr<const RouteTable>(std::move(table));
}

Result<std::shared_ptr<const RouteTable>> RouteTable::Build(std::vector<Environment> envs,
                                                            SharedStateRegistry& registry) {
  EnvMap map;
  for (Environment& env : envs) {
    ADHOC_ASSIGN_OR_RETURN(Environment prepared, Prepare(std::move(env), registry));
    std::string name = prepared.name;
    if (map.count(name)) return BadInput("environment '" + name + "' given twice");
    map.emplace(name, std::make_shared<const Environment>(std::move(prepared)));
  }
  return FromMap(std::move(map));
}

Result<std::shared_ptr<const RouteTable>> RouteTable::WithEnv(Environment env,
                                                              SharedStateRegistry& registry) const {
  ADHOC_ASSIGN_OR_RETURN(Environment prepared, Prepare(std::move(env), registry));
  EnvMap map = envs_;
  std::string name = prepared.name;
  map[name] = std::make_shared<const Environment>(std::move(prepared));
  return FromMap(std::move(map));
}

Result<std::shared_ptr<const RouteTable>> RouteTable::WithoutEnv(const std::string& name) const {
  // Idempotent: a destroy that is finished again after a crash removes nothing twice.
  EnvMap map = envs_;
  map.erase(name);
  return FromMap(std::move(map));
}

const Environment* RouteTable::FindHost(std::string_view normalized_host) const {
  auto it = by_host_.find(normalized_host);
  return it == by_host_.end() ? nullptr : it->second;
}

RouteTableHolder::RouteTableHolder() {
  SharedStateRegistry empty_registry;
  table_.store(*RouteTable::Build({}, empty_registry));
}

void RouteTableHolder::Store(std::shared_ptr<const RouteTable> table) {
  table_.store(std::move(table));
  version_.fetch_add(1, std::memory_order_acq_rel);
}

const std::shared_ptr<const RouteTable>& RouteTableHolder::Reader::Get() {
  uint64_t now = holder_->version();
  if (now != version_ || !table_) {
    table_ = holder_->Load();
    version_ = now;
  }
  return table_;
}

}  // namespace adhoc::router
