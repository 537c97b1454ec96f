// The router: a multi-threaded, event-driven HTTP/1.1 reverse proxy on Boost.Asio
// (DESIGN "The router", the seed's shared ALB). One io_context per worker thread;
// connections are spread over workers at accept time and stay on theirs, so each
// connection and each worker's upstream keep-alive pool is single-threaded.
//
// The route table is fed over a Unix socket (feed.h) or HandleFeedMessage(), published
// as immutable snapshots (route_table.h): changes apply live, nothing is dropped.
// Bodies are streamed both ways (never buffered whole); heads are parsed strictly
// (http_parser.h) and anything ambiguous is answered 400 and closed, never forwarded.
// Paths are normalized once (request_path.h) for routing, access rules (access_rules.h)
// and forwarding. Upgrades (WebSocket) become byte tunnels; an optional HTTPS listener
// serves the same table (tls.h); /metrics (metrics.h) answers requests addressed to the
// router by IP. docs/router.md is the user-facing contract.
//
// Thread-safety: Start/Stop from one thread; HandleFeedMessage, ReloadTls and Metrics
// from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/http_parser.h"
#include "router/route_table.h"
#include "router/tls.h"

namespace adhoc::router {

struct RouterOptions {
  // The adhoc home: feed socket paths::RouterSocket, pid file paths::RouterPid, access
  // logs paths::AccessLog. Empty: no feed socket, pid file or access logs (tests).
  std::filesystem::path home;
  std::string listen = "127.0.0.1:8080";  // "host:port"; port 0 picks a free one
  int threads = 0;                        // 0: one per core
  bool feed_socket = true;                // listen on paths::RouterSocket(home)
  bool write_pid = false;                 // write paths::RouterPid(home) (the real process)
  ParseLimits limits;                     // 431 / 414 / 413
  std::chrono::milliseconds header_timeout{10000};    // whole request head, else 408
  std::chrono::milliseconds idle_timeout{75000};      // keep-alive wait between requests
  std::chrono::milliseconds body_timeout{60000};      // between reads/writes of a body
  std::chrono::milliseconds connect_timeout{5000};    // upstream connect, else 502
  std::chrono::milliseconds upstream_timeout{60000};  // upstream response head, else 504
  int max_connections = 20000;                        // client connections; above: closed at accept
  size_t max_idle_per_target = 64;                    // pooled upstream connections, per worker
  std::chrono::milliseconds upgraded_idle_timeout{600000};  // a tunnel with no byte either way
  int max_upgraded_per_env = 10000;  // open upgraded connections per environment; above: 503
  // After answering a request whose body was not read (an early answer, a refusal), the
  // router reads and drops what the client still sends, up to this long, before closing, so
  // the client reads the answer instead of a reset.
  std::chrono::milliseconds linger_timeout{5000};
  // A request for a `sleeping` environment is held while the control plane wakes it (the
  // router asks for that: wake_signal.h), then forwarded once its routes say `running`; after
  // `hold_timeout` it is answered 503 with Retry-After. A browser's GET (Accept: text/html)
  // held `holding_page_after` gets a 503 page that reloads itself instead.
  std::chrono::milliseconds hold_timeout{30000};
  std::chrono::milliseconds holding_page_after{2000};
  // Delivers "wake ENV"; empty: to the control plane's API socket of `home` (none without one).
  std::function<void(const std::string& env)> wake;
  TlsOptions tls;  // the optional HTTPS listener
  // Clients allowed to read /metrics (requests addressed to the router by IP address).
  std::vector<std::string> metrics_allow = {"127.0.0.0/8", "::1/128"};
};

class Router {
 public:
  explicit Router(RouterOptions options);
  ~Router();  // Stop()
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Binds, starts the workers (and the feed socket). Returns once accepting.
  Status Start();
  // Closes the listener and every connection, joins the threads. Idempotent.
  void Stop();
  // The bound port (after Start).
  uint16_t port() const;
  // The HTTPS listener's bound port (0 without one).
  uint16_t tls_port() const;
  // Makes a new TLS context from the certificate files (or regenerates one that expires):
  // new connections use it; open ones keep theirs. Failed/BadInput leaves the old one.
  Status ReloadTls();
  // The SHA-256 fingerprint of the certificate new TLS connections get ("" without TLS).
  std::string TlsFingerprint() const;
  // The Prometheus text of /metrics.
  std::string Metrics();

  // Applies one feed message (one JSON object, as on the feed socket) and returns the
  // one-line JSON answer. See docs/router.md.
  std::string HandleFeedMessage(std::string_view line);

  RouteTableHolder& table();
  // Blocks until access log lines queued so far are on disk.
  void FlushAccessLogs();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adhoc::router
