// The router's table: which environment owns a hostname, and which destination a
// request path goes to inside it (DESIGN "The router": the seed's ALB listener rules).
//
// A RouteTable is an immutable snapshot built once per feed update; the hot path reads
// it without locks. RouteTableHolder publishes snapshots RCU-style: writers build a new
// table and swap a shared_ptr; readers keep the snapshot they started a request with, so
// live changes never disturb requests in flight.
//
// Route precedence (DESIGN): routes with an explicit priority come first, lower number
// first; then, without priority, exact before longer prefix before shorter prefix before
// the catch-all. Ties keep the order given. Patterns: exact "/x", prefix "/x/*" (matches
// "/x" itself and everything under "/x/"), catch-all "/*".
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "router/access_rules.h"
#include "router/path_pattern.h"

namespace adhoc::router {

enum class EnvStatus { kRunning, kStarting, kFailed, kSleeping };
const char* EnvStatusName(EnvStatus status);
Result<EnvStatus> ParseEnvStatus(std::string_view name);

// Live, shared state of one upstream address (host:port): outstanding requests for
// balancing. One object per address for the router's lifetime of that address, shared by
// every table snapshot that names it; read by every worker. Health is not the router's:
// the control plane checks every task and feeds only healthy targets.
struct UpstreamState {
  explicit UpstreamState(std::string address_in) : address(std::move(address_in)) {}
  const std::string address;
  std::atomic<int> outstanding{0};
};

// Latency histogram buckets (upper bounds, seconds) of the metrics endpoint.
inline constexpr std::array<double, 12> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,   0.25,   0.5,   1,    2.5,   10};

// Requests of one (environment, service) pair for the metrics endpoint: by status class
// and by latency. Lock-free; updated once per request.
struct RequestMetrics {
  std::array<std::atomic<uint64_t>, 5> by_class{};  // 1xx .. 5xx
  // Requests per latency bucket (not cumulative); the last one is above every bound.
  std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> latency{};
  std::atomic<uint64_t> latency_sum_us{0};

  void Record(int status, int64_t micros);
};

// Live counters of one environment, kept across table updates (idle detection uses
// last_request_ms). Thread-safe (atomics; `services` under its mutex, which only table
// builds and metrics reads take).
struct EnvStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes{0};           // response bytes sent to clients
  std::atomic<uint64_t> bytes_received{0};  // request bytes (heads and bodies) from clients
  std::atomic<int64_t> last_request_ms{0};
  std::atomic<uint64_t> errors_5xx{0};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> upgraded{0};             // open upgraded (WebSocket) connections
  std::atomic<uint64_t> upgraded_total{0};      // upgrades ever made
  std::atomic<uint64_t> denied_address{0};      // 403s of the allow list
  std::atomic<uint64_t> denied_credentials{0};  // 401s
  // Set when the environment leaves the table: its upgraded connections close.
  std::atomic<bool> removed{false};

  // The counters of one service label, created on first use (at table build).
  std::shared_ptr<RequestMetrics> Service(const std::string& label);
  // A snapshot of the labels and their counters.
  std::vector<std::pair<std::string, std::shared_ptr<RequestMetrics>>> Services() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::shared_ptr<RequestMetrics>>> services_;
};

// The service label of requests the router answered itself (no route, 401, 503...).
inline constexpr const char* kRouterLabel = "(router)";
// The service label of folder routes without a service name.
inline constexpr const char* kFolderLabel = "(folder)";

struct Target {
  std::string id;       // the control plane's task id, for access logs
  std::string address;  // "host:port" (IPv4 or [IPv6])
  std::string host;
  uint16_t port = 0;
  std::shared_ptr<UpstreamState> state;  // filled in by RouteTable::Build
};

struct Route {
  std::string pattern;  // as given: "/x", "/x/*", "/*"
  std::optional<int> priority;
  std::string service;                      // a service destination, with targets...
  std::vector<Target> targets;              // ...or
  std::string folder;                       // a folder of static files (absolute path)
  std::shared_ptr<RequestMetrics> metrics;  // filled in by RouteTable::Build

  // Derived by ParsePattern.
  PatternKind kind = PatternKind::kExact;
  std::string path;  // exact path, or the prefix without "/*" ("" for the catch-all)

  bool Matches(std::string_view request_path) const;
  bool is_folder() const { return !folder.empty(); }
};

struct Environment {
  std::string name;
  std::vector<std::string> hosts;  // lower-case hostnames without port
  EnvStatus status = EnvStatus::kRunning;
  std::vector<Route> routes;  // sorted by precedence in RouteTable::Build
  // Access rules; null when everyone may enter (the hot path then checks nothing).
  std::shared_ptr<const AccessRules> access;
  std::shared_ptr<EnvStats> stats;
  std::shared_ptr<RequestMetrics> router_metrics;  // requests the router answered itself

  // The first route (by precedence) matching `path`, or nullptr.
  const Route* Match(std::string_view path) const;
};

// Keeps one UpstreamState per address and one EnvStats per environment name so that
// counters survive table updates (ForgetEnv marks an environment's stats removed). Thread-safe (a
// mutex, taken only when tables are built or stats read, never on the hot path).
class SharedStateRegistry {
 public:
  std::shared_ptr<UpstreamState> Upstream(const std::string& address);
  std::shared_ptr<EnvStats> Stats(const std::string& env);
  // Marks the environment's stats removed and drops them; returns them (null if unknown).
  std::shared_ptr<EnvStats> ForgetEnv(const std::string& env);
  // Requests outstanding at `address`, also after its target left the table (in-flight
  // requests still hold its state): what a drain waits for. 0 for an unknown address.
  int Outstanding(const std::string& address);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<UpstreamState>> upstreams_;
  std::unordered_map<std::string, std::shared_ptr<EnvStats>> stats_;
};

// Parses "/x", "/x/*" or "/*" into route.kind/route.path; BadInput otherwise.
Status ParsePattern(Route& route);
// Parses "host:port" / "[v6]:port" into target.host/target.port.
Status ParseTargetAddress(Target& target);
// Lower-cases a Host header value and strips its port ("Demo.localhost:8080" -> "demo.localhost").
std::string NormalizeHost(std::string_view host);
// The same into `out` (reusing its capacity: the hot path's form).
void NormalizeHostInto(std::string_view host, std::string& out);

// Immutable after Build. Thread-safe for concurrent readers.
class RouteTable {
 public:
  using EnvMap = std::unordered_map<std::string, std::shared_ptr<const Environment>>;

  // Validates every environment (patterns, addresses, unique names and hosts), sorts
  // routes by precedence, indexes hosts, and attaches shared state from `registry`.
  static Result<std::shared_ptr<const RouteTable>> Build(std::vector<Environment> envs,
                                                         SharedStateRegistry& registry);
  // A copy of this table with `env` added or replaced (by name).
  Result<std::shared_ptr<const RouteTable>> WithEnv(Environment env,
                                                    SharedStateRegistry& registry) const;
  // A copy without the environment named `name` (NotFound if absent).
  Result<std::shared_ptr<const RouteTable>> WithoutEnv(const std::string& name) const;

  // The environment owning `host` (already normalized), or nullptr. O(1) in the number
  // of environments.
  const Environment* FindHost(std::string_view normalized_host) const;
  const EnvMap& envs() const { return envs_; }
  // Whether any route of any environment names this upstream address (for draining).
  bool HasAddress(const std::string& address) const { return addresses_.count(address) > 0; }

 private:
  static Result<std::shared_ptr<const RouteTable>> FromMap(EnvMap envs);

  EnvMap envs_;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, const Environment*, StringHash, std::equal_to<>> by_host_;
  std::unordered_set<std::string> addresses_;
};

// Publishes the current table. Readers call Load() (an atomic shared_ptr load) or keep a
// Reader that reloads only when the version changed (no shared refcount traffic per
// request). Thread-safe.
class RouteTableHolder {
 public:
  RouteTableHolder();
  std::shared_ptr<const RouteTable> Load() const { return table_.load(); }
  void Store(std::shared_ptr<const RouteTable> table);
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // A per-thread cache of the current snapshot. Not thread-safe: one per thread.
  class Reader {
   public:
    explicit Reader(const RouteTableHolder& holder) : holder_(&holder) {}
    const std::shared_ptr<const RouteTable>& Get();

   private:
    const RouteTableHolder* holder_;
    uint64_t version_ = ~uint64_t{0};
    std::shared_ptr<const RouteTable> table_;
  };

 private:
  std::atomic<std::shared_ptr<const RouteTable>> table_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace adhoc::router
