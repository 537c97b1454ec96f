#include "router/metrics.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace adhoc::router {

namespace {

void Line(std::string& out, std::string_view name, std::string_view labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  char buf[48];
  if (value == static_cast<double>(static_cast<int64_t>(value))) {
    std::snprintf(buf, sizeof buf, " %lld\n", static_cast<long long>(value));
  } else {
    std::snprintf(buf, sizeof buf, " %.6f\n", value);
  }
  out += buf;
}

void HelpAndType(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::string Label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + EscapeLabelValue(value) + "\"";
}

std::string Bound(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", b);
  return buf;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderMetrics(const RouteTable& table, const RouterMetrics& router) {
  // Environments in name order, so the page is stable between scrapes.
  std::map<std::string, const Environment*> envs;
  for (const auto& [name, env] : table.envs()) envs.emplace(name, env.get());
  struct ServiceRows {
    std::string env_label;
    std::vector<std::pair<std::string, std::shared_ptr<RequestMetrics>>> services;
  };
  std::vector<ServiceRows> rows;
  rows.reserve(envs.size());
  for (const auto& [name, env] : envs) {
    rows.push_back({Label("env", name), env->stats->Services()});
  }
  std::string out;
  out.reserve(256 + envs.size() * 2048);

  HelpAndType(out, "adhoc_router_requests_total", "counter",
              "Requests by environment, service and status class (service \"(router)\": answered "
              "by the router itself).");
  static constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  for (const ServiceRows& r : rows) {
    for (const auto& [service, m] : r.services) {
      std::string base = r.env_label + "," + Label("service", service) + ",class=\"";
      for (size_t c = 0; c < 5; ++c) {
        uint64_t v = m->by_class[c].load(std::memory_order_relaxed);
        if (v == 0 && c != 1) continue;  // 2xx always, others once seen
        Line(out, "adhoc_router_requests_total", base + kClasses[c] + "\"", static_cast<double>(v));
      }
    }
  }

  HelpAndType(out, "adhoc_router_request_duration_seconds", "histogram",
              "Time from a request's head to the end of its response.");
  for (const ServiceRows& r : rows) {
    for (const auto& [service, m] : r.services) {
      std::string base = r.env_label + "," + Label("service", service);
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
        cumulative += m->latency[b].load(std::memory_order_relaxed);
        std::string le = b < kLatencyBuckets.size() ? Bound(kLatencyBuckets[b]) : "+Inf";
        Line(out, "adhoc_router_request_duration_seconds_bucket", base + ",le=\"" + le + "\"",
             static_cast<double>(cumulative));
      }
      Line(out, "adhoc_router_request_duration_seconds_sum", base,
           static_cast<double>(m->latency_sum_us.load(std::memory_order_relaxed)) / 1e6);
      Line(out, "adhoc_router_request_duration_seconds_count", base,
           static_cast<double>(cumulative));
    }
  }

  auto per_env = [&](const char* name, const char* type, const char* help, auto value) {
    HelpAndType(out, name, type, help);
    for (const auto& [env_name, env] : envs) {
      Line(out, name, Label("env", env_name), static_cast<double>(value(*env->stats)));
    }
  };
  per_env("adhoc_router_response_bytes_total", "counter", "Response bytes sent to clients.",
          [](const EnvStats& s) { return s.bytes.load(); });
  per_env("adhoc_router_request_bytes_total", "counter",
          "Request bytes (heads and bodies) received from clients.",
          [](const EnvStats& s) { return s.bytes_received.load(); });
  per_env("adhoc_router_in_flight_requests", "gauge", "Requests being answered.",
          [](const EnvStats& s) { return s.in_flight.load(); });
  per_env("adhoc_router_upgraded_connections", "gauge", "Open upgraded (WebSocket) connections.",
          [](const EnvStats& s) { return s.upgraded.load(); });
  per_env("adhoc_router_upgrades_total", "counter", "Connections upgraded (WebSocket).",
          [](const EnvStats& s) { return s.upgraded_total.load(); });

  HelpAndType(
      out, "adhoc_router_access_denied_total", "counter",
      "Requests refused by access rules: reason \"address\" (403) or \"credentials\" (401).");
  for (const auto& [name, env] : envs) {
    std::string l = Label("env", name);
    Line(out, "adhoc_router_access_denied_total", l + ",reason=\"address\"",
         static_cast<double>(env->stats->denied_address.load()));
    Line(out, "adhoc_router_access_denied_total", l + ",reason=\"credentials\"",
         static_cast<double>(env->stats->denied_credentials.load()));
  }

  // The control plane health-checks every task and feeds only healthy ones: the targets a
  // service has are its healthy targets (0: the service answers 503).
  HelpAndType(out, "adhoc_router_healthy_targets", "gauge",
              "Healthy targets of a service (the control plane feeds only healthy tasks).");
  for (const auto& [name, env] : envs) {
    std::map<std::string, size_t> per_service;
    for (const Route& route : env->routes)
      if (!route.service.empty())
        per_service[route.service] = std::max(per_service[route.service], route.targets.size());
    for (const auto& [service, count] : per_service)
      Line(out, "adhoc_router_healthy_targets",
           Label("env", name) + "," + Label("service", service), static_cast<double>(count));
  }
  HelpAndType(out, "adhoc_router_upstream_outstanding_requests", "gauge",
              "Requests in flight to a target address.");
  std::map<std::string, int> outstanding;
  for (const auto& [name, env] : envs) {
    for (const Route& route : env->routes) {
      for (const Target& t : route.targets) {
        outstanding[t.address] = t.state->outstanding.load();
      }
    }
  }
  for (const auto& [address, n] : outstanding) {
    Line(out, "adhoc_router_upstream_outstanding_requests", Label("address", address), n);
  }

  auto global = [&](const char* name, const char* type, const char* help, double v) {
    HelpAndType(out, name, type, help);
    Line(out, name, "", v);
  };
  global("adhoc_router_open_connections", "gauge", "Open client connections (plain and TLS).",
         static_cast<double>(router.open_connections.load()));
  global("adhoc_router_open_tls_connections", "gauge", "Open client connections over TLS.",
         static_cast<double>(router.open_tls_connections.load()));
  global("adhoc_router_connections_total", "counter", "Client connections accepted.",
         static_cast<double>(router.connections_total.load()));
  global("adhoc_router_connections_refused_total", "counter",
         "Client connections closed at accept: over the connection limit.",
         static_cast<double>(router.connections_refused_total.load()));
  global("adhoc_router_unknown_host_requests_total", "counter",
         "Requests for a host no environment has (404).",
         static_cast<double>(router.unknown_host_requests_total.load()));
  global("adhoc_router_rejected_requests_total", "counter",
         "Malformed requests refused before routing (400, 408, 413, 414, 417, 431).",
         static_cast<double>(router.rejected_requests_total.load()));
  global("adhoc_router_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
         static_cast<double>(router.tls_handshake_failures_total.load()));
  return out;
}

}  // namespace adhoc::router
