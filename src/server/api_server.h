// The HTTP+JSON transport of the control plane's API (docs/api.md): a small HTTP/1.1 server on a
// Unix socket and, optionally, on TCP, where every request needs the home's token (api_auth.h;
// the router serves that listener at adhoc.<domain>). It knows routes and bodies, not
// environments: handlers are registered by the control plane.
//
// Threading: one thread accepts connections and watches the idle ones (poll); a bounded pool
// of worker threads serves requests as they arrive, with plain blocking handlers (long
// operations stream for seconds and hold their worker). Idle keep-alive connections hold no
// thread. Beyond `max_connections` open connections, a new one is answered 503 and closed;
// beyond `max_workers` busy workers, requests wait their turn. A handler that throws is
// answered 500 with its message: nothing escapes to kill the process. Handlers may run
// concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
  bool over_tcp = false;                      // came through the TCP listener (token checked)
};

// How a handler answers: exactly one of Reply, Fail or a stream (Event... then the stream ends
// when the handler returns).
class ApiResponder {
 public:
  virtual ~ApiResponder() = default;
  virtual void Reply(int http_status, const nlohmann::json& body) = 0;
  virtual void Fail(const Error& error, const nlohmann::json& extra = nullptr) = 0;
  // A body that is not JSON (the dashboard's page).
  virtual void ReplyBody(int http_status, const std::string& content_type,
                         const std::string& body) = 0;
  // Sends one ndjson event; the first call sends the 200 header. Returns false once the client
  // has gone (the handler should carry on with its operation regardless).
  virtual bool Event(const nlohmann::json& event) = 0;
};

using ApiHandler = std::function<void(const ApiRequest&, ApiResponder&)>;

// The error body of docs/api.md and the HTTP status for an error kind.
nlohmann::json ErrorJson(const Error& error, const nlohmann::json& extra = nullptr);
int HttpStatusFor(ErrorKind kind);

struct ApiServerLimits {
  int max_connections = 512;
  int max_workers = 64;
  std::chrono::seconds idle_timeout{60};     // a keep-alive connection with no request
  std::chrono::seconds request_timeout{10};  // to send a whole request once it began
};

class ApiServer {
 public:
  explicit ApiServer(ApiServerLimits limits = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Registers a route; `pattern` segments like "{env}" capture into params. Before Start only.
  void Handle(const std::string& method, const std::string& pattern, ApiHandler handler);

  // Binds the socket (replacing a stale file), mode 0660, and starts accepting.
  Status Start(const std::filesystem::path& socket_path);
  // Also listens on TCP at `address` ("127.0.0.1") and `port` (0: any free one), where every
  // request must bring `token` (api_auth.h). Before Start. Returns the port it listens on.
  Result<int> ListenTcp(const std::string& address, int port, std::string token);
  // Stops accepting and waits for connections in flight to finish. Idempotent.
  void Stop();

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    ApiHandler handler;
  };
  struct Connection;
  void PollLoop();
  void AcceptAll(int listen_fd, bool tcp);  // needs the poll thread
  void WorkerLoop();
  // Serves one request of `c`; false when the connection is done (closed or streamed).
  bool ServeOne(Connection& c);
  void Dispatch(ApiRequest& request, ApiResponder& responder);
  void Idle(std::unique_ptr<Connection> c);  // back to the poller
  void Wake();

  ApiServerLimits limits_;
  std::vector<Route> routes_;
  int listen_fd_ = -1;
  int tcp_listen_fd_ = -1;
  std::string token_;  // of the TCP listener
  int wake_fds_[2] = {-1, -1};
  std::filesystem::path socket_path_;
  std::atomic<bool> stopping_{false};
  std::thread poll_thread_;

  std::mutex mu_;  // everything below
  std::condition_variable work_cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // watched by the poller
  std::deque<std::unique_ptr<Connection>> ready_;  // a request is arriving
  std::vector<std::thread> workers_;
  int busy_workers_ = 0;
  int open_connections_ = 0;
};

}  // namespace adhoc::server
