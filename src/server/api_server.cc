#include "server/api_server.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstring>
#include <sstream>

namespace adhoc::server {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Socket = asio::local::stream_protocol::socket;

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
    if (s[i] == '%' && i + 2 < s.size() && isxdigit(s[i + 1]) && isxdigit(s[i + 2])) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
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
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Failed(std::string("socket: ") + strerror(errno));
  unlink(socket_path.c_str());
  // The socket is created with 0660 directly (no window where others could connect).
  mode_t old = umask(0117);
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0 || listen(listen_fd_, 64) != 0) {
    std::string why = strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return Failed("listening on " + socket_path.string() + ": " + why);
  }
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return OkStatus();
}

void ApiServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  // Connections in flight finish their current answer; bounded so Stop cannot hang forever.
  for (int i = 0; i < 300 && in_flight_.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!socket_path_.empty()) unlink(socket_path_.c_str());
}

void ApiServer::AcceptLoop() {
  while (!stopping_) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_ || errno == EBADF || errno == EINVAL) return;
      continue;
    }
    ++in_flight_;
    std::thread([this, fd] {
      Serve(fd);
      --in_flight_;
    }).detach();
  }
}

void ApiServer::Serve(int fd) {
  // An idle keep-alive client is dropped after a minute so Stop() never waits on it for long.
  timeval idle{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
  asio::io_context io;
  Socket socket(io, asio::local::stream_protocol(), fd);
  boost::beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    boost::system::error_code ec;
    http::read(socket, buffer, parser, ec);
    if (ec) return;
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
    Responder responder(socket, req.keep_alive());
    if (!req.body().empty()) {
      request.body = nlohmann::json::parse(req.body(), nullptr, false);
      if (request.body.is_discarded()) {
        responder.Fail(BadInput("the request body is not valid JSON"));
        return;
      }
    }
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
    } else {
      match->handler(request, responder);
    }
    responder.Finish();
    if (responder.streaming() || !req.keep_alive()) return;
  }
}

}  // namespace adhoc::server
