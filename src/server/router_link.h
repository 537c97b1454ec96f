// The control plane's side of the router (DESIGN "Processes": a separate long-lived process,
// started and re-adopted by the control plane, fed over a local socket; restarting the control
// plane never stops routing). The router runs as a runtime task (through a shim) so it
// outlives the control plane; this class starts or adopts it and speaks its feed protocol
// (docs/router.md): one JSON line per message, one JSON line back.
//
// Thread-safe: calls are serialized by an internal mutex.
#pragma once

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "runtime/runtime.h"
#include "server/route_sink.h"

namespace adhoc::server {

struct RouterOptions {
  std::filesystem::path adhoc_binary;  // runs `<binary> router ...`
  std::string listen_address = "127.0.0.1";
  int listen_port = 8080;
  int threads = 0;  // 0: the router's default (cores)
  // HTTPS (docs/router.md "TLS"): off when tls_listen is empty. With tls_cert and tls_key the
  // user's certificate; without, a CA and a *.<tls_domain> certificate adhoc makes and keeps in
  // <home>/router/tls (ca.crt is what a team trusts once).
  std::string tls_listen;  // ADDRESS:PORT
  std::filesystem::path tls_cert, tls_key;
  std::string tls_domain = "localhost";
  bool redirect_http = false;  // plain HTTP answered with a redirect to HTTPS
};

class RouterLink : public RouteSink {
 public:
  RouterLink(std::filesystem::path home, runtime::Runtime& runtime, RouterOptions options);

  // Adopts the running router of this home, or starts one. `started` tells the caller it must
  // send the whole table (a new router starts empty).
  Status EnsureRunning(bool* started = nullptr);
  // Whether the adopted router process is alive.
  bool Running();
  // Stops the router (base down).
  Status Stop();

  Status ReplaceAll(const nlohmann::json& envs) override;
  Status PutEnv(const nlohmann::json& env) override;
  Status RemoveEnv(const std::string& name) override;
  Result<int> InFlight(const std::string& address) override;
  Result<nlohmann::json> Stats();
  // Whether the router's port is free to listen on (nothing else, such as another home's
  // router, holds it). Checked before anything is created for a new environment.
  Status CheckPortFree();

  const RouterOptions& options() const { return options_; }

 private:
  Result<nlohmann::json> Send(const nlohmann::json& message);

  std::filesystem::path home_;
  runtime::Runtime& runtime_;
  RouterOptions options_;
  std::mutex mu_;
  std::optional<runtime::TaskHandle> handle_;
};

}  // namespace adhoc::server
