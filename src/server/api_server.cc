#include "server/api_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstring>
#include <sstream>

#include "server/api_auth.h"

namespace adhoc::server {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
// Unix and TCP connections alike.
using Socket = asio::generic::stream_protocol::socket;

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      auto hex = [](char c) {
        return isdigit(static_cast<unsigned char>(c)) ? c - '0' : (tolower(c) - 'a' + 10);
      };
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

const char* KindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput:
      return "bad_input";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kConflict:
      return "conflict";
    case ErrorKind::kFailed:
      return "failed";
  }
  return "failed";
}

class Responder : public ApiResponder {
 public:
  Responder(Socket& socket, bool keep_alive) : socket_(socket), keep_alive_(keep_alive) {}

  void Reply(int http_status, const nlohmann::json& body) override {
    if (answered_) return;
    answered_ = true;
    http::response<http::string_body> res{static_cast<http::status>(http_status), 11};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive_);
    res.body() = body.dump() + "\n";
    res.prepare_payload();
    boost::system::error_code ec;
    http::write(socket_, res, ec);
    if (ec) gone_ = true;
  }

  void ReplyBody(int http_status, const std::string& content_type,
                 const std::string& body) override {
    if (answered_) return;
    answered_ = true;
    http::response<http::string_body> res{static_cast<http::status>(http_status), 11};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    // A page holds only its own inline script and style, talks only to this API, and is
    // never framed (no clickjacking of the dashboard's buttons).
    if (content_type.rfind("text/html", 0) == 0)
      res.set("Content-Security-Policy",
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    res.keep_alive(keep_alive_);
    res.body() = body;
    res.prepare_payload();
    boost::system::error_code ec;
    http::write(socket_, res, ec);
    if (ec) gone_ = true;
  }

  void Fail(const Error& error, const nlohmann::json& extra = nullptr) override {
    if (streaming_) {
      Event({{"type", "result"}, {"ok", false}, {"error", ErrorJson(error, extra)["error"]}});
      return;
    }
    Reply(HttpStatusFor(error.kind()), ErrorJson(error, extra));
  }

  bool Event(const nlohmann::json& event) override {
    if (gone_) return false;
    boost::system::error_code ec;
    if (!streaming_) {
      if (answered_) return false;
      answered_ = streaming_ = true;
      http::response<http::empty_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/x-ndjson");
      res.chunked(true);
      res.keep_alive(false);
      http::response_serializer<http::empty_body> sr{res};
      http::write_header(socket_, sr, ec);
      if (ec) return !(gone_ = true);
    }
    std::string line = event.dump() + "\n";
    asio::write(socket_, http::make_chunk(asio::buffer(line)), ec);
    if (ec) gone_ = true;
    return !gone_;
  }

  void Finish() {
    if (streaming_ && !gone_) {
      boost::system::error_code ec;
      asio::write(socket_, http::make_chunk_last(), ec);
    } else if (!answered_) {
      Reply(500, ErrorJson(Failed("the handler gave no answer")));
    }
  }
  bool streaming() const { return streaming_; }
  bool gone() const { return gone_; }

 private:
  Socket& socket_;
  bool keep_alive_;
  bool answered_ = false;
  bool streaming_ = false;
  bool gone_ = false;
};

}  // namespace

nlohmann::json ErrorJson(const Error& error, const nlohmann::json& extra) {
  nlohmann::json e = {{"kind", KindName(error.kind())}, {"message", error.message()}};
  if (extra.is_object())
    for (auto& [k, v] : extra.items()) e[k] = v;
  return {{"error", e}};
}

int HttpStatusFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kFailed:
      return 500;
  }
  return 500;
}

struct ApiServer::Connection {
  Connection(int fd_in, bool tcp_in)
      : io(),
        socket(io,
               tcp_in ? asio::generic::stream_protocol(AF_INET, IPPROTO_TCP)
                      : asio::generic::stream_protocol(AF_UNIX, 0),
               fd_in),
        tcp(tcp_in) {}
  asio::io_context io;
  Socket socket;
  bool tcp;                          // every request needs the token
  boost::beast::flat_buffer buffer;  // bytes read past the last request (pipelining)
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
  int fd() { return socket.native_handle(); }
};

ApiServer::ApiServer(ApiServerLimits limits) : limits_(limits) {}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Handle(const std::string& method, const std::string& pattern, ApiHandler handler) {
  routes_.push_back({method, SplitPath(pattern), std::move(handler)});
}

Status ApiServer::Start(const std::filesystem::path& socket_path) {
  socket_path_ = socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.string().size() >= sizeof(addr.sun_path))
    return Failed("socket path too long: " + socket_path.string());
  std::strcpy(addr.sun_path, socket_path.c_str());
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return Failed(std::string("socket: ") + strerror(errno));
  if (pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0)
    return Failed("pipe: " + std::string(strerror(errno)));
  unlink(socket_path.c_str());
  // The socket is created with 0660 directly (no window where others could connect).
  mode_t old = umask(0117);
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0 || listen(listen_fd_, 128) != 0) {
    std::string why = strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return Failed("listening on " + socket_path.string() + ": " + why);
  }
  poll_thread_ = std::thread([this] { PollLoop(); });
  return OkStatus();
}

Result<int> ApiServer::ListenTcp(const std::string& address, int port, std::string token) {
  if (token.empty()) return BadInput("the API over TCP needs a token");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1)
    return BadInput("not an IPv4 address: " + address);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Failed(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string why = strerror(errno);
    close(fd);
    return Failed("listening on " + address + ":" + std::to_string(port) + ": " + why);
  }
  tcp_listen_fd_ = fd;
  token_ = std::move(token);
  return static_cast<int>(ntohs(addr.sin_port));
}

void ApiServer::Wake() {
  char b = 1;
  (void)!write(wake_fds_[1], &b, 1);
}

void ApiServer::Stop() {
  if (stopping_.exchange(true)) return;
  Wake();
  if (poll_thread_.joinable()) poll_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (tcp_listen_fd_ >= 0) close(tcp_listen_fd_);
  work_cv_.notify_all();
  // Requests in flight finish their current answer; bounded so Stop cannot hang forever.
  std::vector<std::thread> workers;
  bool all_idle = false;
  {
    std::unique_lock lock(mu_);
    for (int i = 0; i < 300 && busy_workers_ > 0; ++i) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      lock.lock();
    }
    all_idle = busy_workers_ == 0;
    workers.swap(workers_);
    idle_.clear();
    ready_.clear();
  }
  work_cv_.notify_all();
  for (auto& w : workers) {
    // A worker still streaming (logs -f) ends with the process.
    if (all_idle)
      w.join();
    else
      w.detach();
  }
  if (wake_fds_[0] >= 0) close(wake_fds_[0]);
  if (wake_fds_[1] >= 0) close(wake_fds_[1]);
  if (!socket_path_.empty()) unlink(socket_path_.c_str());
}

void ApiServer::PollLoop() {
  while (!stopping_) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({wake_fds_[0], POLLIN, 0});
    fds.push_back({tcp_listen_fd_, POLLIN, 0});  // ignored by poll when -1
    {
      std::lock_guard lock(mu_);
      for (auto& c : idle_) fds.push_back({c->fd(), POLLIN, 0});
    }
    int n = poll(fds.data(), fds.size(), 1000);
    if (stopping_) return;
    if (n < 0) continue;
    if (fds[1].revents) {
      char buf[64];
      while (read(wake_fds_[0], buf, sizeof buf) > 0) {
      }
    }
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      // Readable (a request, or a close) goes to a worker; too long idle is closed.
      std::vector<int> readable;
      for (size_t i = 3; i < fds.size(); ++i)
        if (fds[i].revents) readable.push_back(fds[i].fd);
      for (auto it = idle_.begin(); it != idle_.end();) {
        bool ready = std::find(readable.begin(), readable.end(), (*it)->fd()) != readable.end();
        if (ready) {
          ready_.push_back(std::move(*it));
          it = idle_.erase(it);
        } else if (now - (*it)->idle_since > limits_.idle_timeout) {
          --open_connections_;
          it = idle_.erase(it);  // closes it
        } else {
          ++it;
        }
      }
    }
    if (fds[0].revents) AcceptAll(listen_fd_, false);
    if (fds[2].revents) AcceptAll(tcp_listen_fd_, true);
    std::lock_guard lock(mu_);
    // Enough workers for what waits, up to the bound.
    int idle_workers = static_cast<int>(workers_.size()) - busy_workers_;
    int missing = static_cast<int>(ready_.size()) - idle_workers;
    for (int i = 0; i < missing && static_cast<int>(workers_.size()) < limits_.max_workers; ++i)
      workers_.emplace_back([this] { WorkerLoop(); });
    if (!ready_.empty()) work_cv_.notify_all();
  }
}

void ApiServer::AcceptAll(int listen_fd, bool tcp) {
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) break;
    std::lock_guard lock(mu_);
    if (open_connections_ >= limits_.max_connections) {
      static const std::string kBody =
          ErrorJson(Failed("too many connections to the control plane")).dump() + "\n";
      static const std::string kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Connection: close\r\nContent-Length: " +
          std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
      (void)!send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    ++open_connections_;
    // Watched until a request arrives: a connection holds a worker only while it is served.
    idle_.push_back(std::make_unique<Connection>(fd, tcp));
  }
}

void ApiServer::Idle(std::unique_ptr<Connection> c) {
  c->idle_since = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(c));
  }
  Wake();
}

void ApiServer::WorkerLoop() {
  for (;;) {
    std::unique_ptr<Connection> c;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      c = std::move(ready_.front());
      ready_.pop_front();
      ++busy_workers_;
    }
    bool keep = false;
    try {
      keep = ServeOne(*c);
    } catch (const std::exception& e) {
      keep = false;  // the answer may be half written: the connection goes
    }
    {
      std::lock_guard lock(mu_);
      --busy_workers_;
      if (!keep) --open_connections_;
    }
    if (keep && !stopping_) Idle(std::move(c));
  }
}

void ApiServer::Dispatch(ApiRequest& request, ApiResponder& responder) {
  std::vector<std::string> segs = SplitPath(request.path);
  const Route* match = nullptr;
  bool path_known = false;
  for (const Route& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const std::string& p = r.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}')
        params[p.substr(1, p.size() - 2)] = PercentDecode(segs[i]);
      else
        ok = p == segs[i];
    }
    if (!ok) continue;
    path_known = true;
    if (r.method != request.method) continue;
    match = &r;
    request.params = std::move(params);
    break;
  }
  if (!match) {
    responder.Fail(path_known ? BadInput(request.method + " is not allowed on " + request.path)
                              : NotFound("no such API path: " + request.path));
    return;
  }
  try {
    match->handler(request, responder);
  } catch (const std::exception& e) {
    responder.Fail(Failed(std::string("internal error: ") + e.what()));
  } catch (...) {
    responder.Fail(Failed("internal error"));
  }
}

namespace {

// Reads one whole request within `timeout` (a slow or stalled client must not hold a worker):
// the socket is non-blocking while reading and each wait is a bounded poll.
void ReadRequest(Socket& socket, boost::beast::flat_buffer& buffer,
                 http::request_parser<http::string_body>& parser, std::chrono::seconds timeout,
                 boost::system::error_code& ec) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  socket.non_blocking(true, ec);
  if (ec) return;
  while (!parser.is_done()) {
    http::read_some(socket, buffer, parser, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      pollfd p{socket.native_handle(), POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) {
        ec = asio::error::timed_out;
        break;
      }
      ec = {};
      continue;
    }
    if (ec) break;
  }
  boost::system::error_code ignored;
  socket.non_blocking(false, ignored);
}

// Answers a request over TCP that brings no valid token (401/403, closing) or the token link
// (a redirect setting the cookie); true when the request may go on to its handler.
bool Authorized(Socket& socket, const http::request<http::string_body>& req,
                const ApiRequest& request, const std::string& target, const std::string& token) {
  auto view = [](boost::beast::string_view v) { return std::string_view(v.data(), v.size()); };
  auto param = request.query.find(std::string(kApiTokenParam));
  ApiCredentials credentials{
      .method = view(req.method_string()),
      .authorization = view(req[http::field::authorization]),
      .cookie = view(req[http::field::cookie]),
      .has_token_param = param != request.query.end(),
      .token_param = param != request.query.end() ? std::string_view(param->second) : "",
      .dashboard_header =
          view(req[boost::beast::string_view(kDashboardHeader.data(), kDashboardHeader.size())]) ==
          "1"};
  ApiAuthDecision decision = CheckApiAuth(credentials, token);
  if (decision.verdict == ApiAuth::kAllowed) return true;
  boost::system::error_code ec;
  if (decision.verdict == ApiAuth::kTokenLink) {
    size_t q = target.find('?');
    std::string query =
        q == std::string::npos ? "" : QueryWithoutApiToken(std::string_view(target).substr(q + 1));
    http::response<http::string_body> res{http::status::see_other, 11};
    res.set(http::field::location, request.path + (query.empty() ? "" : "?" + query));
    bool https = req["X-Forwarded-Proto"] == "https";
    res.set(http::field::set_cookie, ApiSessionCookie(token, https));
    res.set(http::field::cache_control, "no-store");
    res.set("Referrer-Policy", "no-referrer");
    res.keep_alive(false);
    res.prepare_payload();
    http::write(socket, res, ec);
    return false;
  }
  bool forbidden = decision.verdict == ApiAuth::kForbidden;
  http::response<http::string_body> res{
      forbidden ? http::status::forbidden : http::status::unauthorized, 11};
  res.set(http::field::content_type, "application/json");
  if (!forbidden) res.set(http::field::www_authenticate, "Bearer realm=\"adhoc\"");
  res.keep_alive(false);
  nlohmann::json error = {{"kind", forbidden ? "forbidden" : "unauthorized"},
                          {"message", decision.why}};
  res.body() = nlohmann::json{{"error", error}}.dump() + "\n";
  res.prepare_payload();
  http::write(socket, res, ec);
  return false;
}

}  // namespace

bool ApiServer::ServeOne(Connection& c) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  parser.header_limit(64 * 1024);
  boost::system::error_code ec;
  ReadRequest(c.socket, c.buffer, parser, limits_.request_timeout, ec);
  if (ec) {
    if (ec != http::error::end_of_stream && ec != asio::error::eof &&
        ec != asio::error::connection_reset && ec != asio::error::timed_out) {
      Responder bad(c.socket, false);
      bad.Fail(BadInput("malformed HTTP request: " + ec.message()));
    }
    return false;
  }
  auto& req = parser.get();
  ApiRequest request;
  request.method = std::string(req.method_string());
  std::string target(req.target());
  size_t q = target.find('?');
  request.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::stringstream qs(target.substr(q + 1));
    std::string kv;
    while (std::getline(qs, kv, '&')) {
      size_t eq = kv.find('=');
      request.query[PercentDecode(kv.substr(0, eq))] =
          eq == std::string::npos ? "" : PercentDecode(kv.substr(eq + 1));
    }
  }
  request.wants_stream =
      std::string(req[http::field::accept]).find("application/x-ndjson") != std::string::npos;
  request.over_tcp = c.tcp;
  if (c.tcp && !Authorized(c.socket, req, request, target, token_)) return false;
  Responder responder(c.socket, req.keep_alive());
  if (!req.body().empty()) {
    request.body = nlohmann::json::parse(req.body(), nullptr, false);
    if (request.body.is_discarded()) {
      responder.Fail(BadInput("the request body is not valid JSON"));
      return false;
    }
  }
  Dispatch(request, responder);
  responder.Finish();
  return !responder.streaming() && req.keep_alive() && !responder.gone();
}

}  // namespace adhoc::server
