// The HTTP+JSON transport of the control plane's API (docs/api.md): a small HTTP/1.1 server on a
// Unix socket. It knows routes and bodies, not environments: handlers are registered by the
// control plane.
//
// Threading: one accept thread; each connection is served on a thread of its own (API traffic
// is a handful of CLI calls, and long operations stream for seconds, so a thread per connection
// keeps handlers plain blocking code). Handlers may run concurrently.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace adhoc::server {

struct ApiRequest {
  std::string method;                         // "GET", "POST"
  std::string path;                           // without the query string
  std::map<std::string, std::string> query;   // decoded ?a=b&c=d
  std::map<std::string, std::string> params;  // from the route pattern: {env} -> "demo"
  nlohmann::json body;                        // null when the request had no body
  bool wants_stream = false;                  // Accept: application/x-ndjson
};

// How a handler answers: exactly one of Reply, Fail or a stream (Event... then the stream ends
// when the handler returns).
class ApiResponder {
 public:
  virtual ~ApiResponder() = default;
  virtual void Reply(int http_status, const nlohmann::json& body) = 0;
  virtual void Fail(const Error& error, const nlohmann::json& extra = nullptr) = 0;
  // Sends one ndjson event; the first call sends the 200 header. Returns false once the client
  // has gone (the handler should carry on with its operation regardless).
  virtual bool Event(const nlohmann::json& event) = 0;
};

using ApiHandler = std::function<void(const ApiRequest&, ApiResponder&)>;

// The error body of docs/api.md and the HTTP status for an error kind.
nlohmann::json ErrorJson(const Error& error, const nlohmann::json& extra = nullptr);
int HttpStatusFor(ErrorKind kind);

class ApiServer {
 public:
  ApiServer() = default;
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Registers a route; `pattern` segments like "{env}" capture into params. Before Start only.
  void Handle(const std::string& method, const std::string& pattern, ApiHandler handler);

  // Binds the socket (replacing a stale file), mode 0660, and starts accepting.
  Status Start(const std::filesystem::path& socket_path);
  // Stops accepting and waits for connections in flight to finish. Idempotent.
  void Stop();

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    ApiHandler handler;
  };
  void AcceptLoop();
  void Serve(int fd);

  std::vector<Route> routes_;
  int listen_fd_ = -1;
  std::filesystem::path socket_path_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::atomic<int> in_flight_{0};
};

}  // namespace adhoc::server
