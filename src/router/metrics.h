// The router's metrics in the Prometheus text format (version 0.0.4), served on the router's
// own listener at `/metrics` for requests addressed to it by IP (docs/router.md "Metrics").
// Per environment: requests by service and status class, latency histograms, bytes both
// ways, upgraded connections, access refusals; per target: health; and process-wide open
// connections and requests that reached no environment.
//
// The counters live in the route table's EnvStats/RequestMetrics (kept across updates) and
// in RouterMetrics; rendering reads them without stopping traffic. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "router/route_table.h"

namespace adhoc::router {

// Process-wide counters (atomics, updated from every worker).
struct RouterMetrics {
  std::atomic<int64_t> open_connections{0};  // client connections, plain and TLS
  std::atomic<int64_t> open_tls_connections{0};
  std::atomic<uint64_t> connections_total{0};            // accepted
  std::atomic<uint64_t> connections_refused_total{0};    // over the connection limit
  std::atomic<uint64_t> unknown_host_requests_total{0};  // no environment has the host
  std::atomic<uint64_t> rejected_requests_total{0};      // malformed: refused before routing
  std::atomic<uint64_t> tls_handshake_failures_total{0};
};

// The whole text page (ends with a newline).
std::string RenderMetrics(const RouteTable& table, const RouterMetrics& router);

// A Prometheus label value with '\', '"' and newlines escaped (quotes not included).
std::string EscapeLabelValue(std::string_view value);

}  // namespace adhoc::router
