// Test helpers for the router's integration tests (header-only, tests only): a tiny
// threaded HTTP/1.1 upstream on 127.0.0.1 port 0, a blocking raw-socket client, and
// temporary directories. Every blocking read has a bound (SO_RCVTIMEO) so a broken
// router fails a test instead of hanging it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace adhoc::router::testing {

inline void SetRecvTimeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

inline int ConnectTo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SetRecvTimeout(fd, 10);
  return fd;
}

inline bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A buffered reader over a blocking socket (or a TLS session on it).
class Reader {
 public:
  explicit Reader(int fd, std::atomic<size_t>* counter = nullptr, SSL* ssl = nullptr)
      : fd_(fd), counter_(counter), ssl_(ssl) {}
  void set_ssl(SSL* ssl) { ssl_ = ssl; }
  // Reads until `delim`; nullopt on EOF/timeout first.
  std::optional<std::string> Until(std::string_view delim) {
    while (true) {
      size_t pos = buf_.find(delim);
      if (pos != std::string::npos) {
        std::string out = buf_.substr(0, pos + delim.size());
        buf_.erase(0, pos + delim.size());
        return out;
      }
      if (!Fill()) return std::nullopt;
    }
  }
  std::optional<std::string> Exactly(size_t n) {
    while (buf_.size() < n) {
      if (!Fill()) return std::nullopt;
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  std::string Rest() {
    while (Fill()) {
    }
    std::string out;
    out.swap(buf_);
    return out;
  }
  bool Fill() {
    char tmp[65536];
    ssize_t n = ssl_ ? SSL_read(ssl_, tmp, sizeof tmp) : recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    if (counter_) counter_->fetch_add(static_cast<size_t>(n));
    return true;
  }
  std::string& buffer() { return buf_; }

 private:
  int fd_;
  std::atomic<size_t>* counter_;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

struct Message {
  std::string start_line;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string raw_head;
  std::string body;
  bool chunked = false;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  int status() const { return start_line.size() >= 12 ? std::atoi(start_line.c_str() + 9) : 0; }
};

// Reads one message (request or response); bodies by Content-Length or chunked, or
// until close when `until_close_ok` and neither is present.
inline std::optional<Message> ReadMessage(Reader& r, bool is_response_to_head = false,
                                          bool until_close_ok = true) {
  auto head = r.Until("\r\n\r\n");
  if (!head) return std::nullopt;
  Message m;
  m.raw_head = *head;
  size_t eol = head->find("\r\n");
  m.start_line = head->substr(0, eol);
  size_t pos = eol + 2;
  while (pos < head->size() - 2) {
    size_t end = head->find("\r\n", pos);
    std::string line = head->substr(pos, end - pos);
    size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    m.headers[Lower(line.substr(0, colon))] = value;
    pos = end + 2;
  }
  bool is_request = m.start_line.rfind("HTTP/", 0) != 0;
  int status = is_request ? 0 : m.status();
  if (is_response_to_head || status == 204 || status == 304 || (status >= 100 && status < 200)) {
    return m;
  }
  if (Lower(m.header("transfer-encoding")) == "chunked") {
    m.chunked = true;
    while (true) {
      auto line = r.Until("\r\n");
      if (!line) return std::nullopt;
      size_t size = std::strtoul(line->c_str(), nullptr, 16);
      if (size == 0) {
        if (!r.Until("\r\n")) return std::nullopt;
        break;
      }
      auto data = r.Exactly(size + 2);
      if (!data) return std::nullopt;
      m.body += data->substr(0, size);
    }
  } else if (!m.header("content-length").empty()) {
    auto data = r.Exactly(std::strtoull(m.header("content-length").c_str(), nullptr, 10));
    if (!data) return std::nullopt;
    m.body = *data;
  } else if (!is_request && until_close_ok) {
    m.body = r.Rest();
  }
  return m;
}

// A blocking keep-alive client connection.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(ConnectTo(port)), reader_(fd_) {}
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool Send(std::string_view data) { return SendAll(fd_, data); }
  std::optional<Message> Read(bool head = false) { return ReadMessage(reader_, head); }
  std::optional<Message> Get(const std::string& host, const std::string& path,
                             const std::string& extra = "") {
    if (!Send("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n")) {
      return std::nullopt;
    }
    return Read();
  }
  // True when the peer closed (EOF) with nothing more to read.
  bool Closed() {
    if (!reader_.buffer().empty()) return false;
    return !reader_.Fill();
  }
  Reader& reader() { return reader_; }

 private:
  int fd_;
  Reader reader_;
};

// A blocking HTTPS client connection: SNI `server_name`, the certificate verified against
// `ca_file` when given (else not verified), ALPN offered when `alpn` is not empty.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& server_name, const std::string& ca_file = "",
            const std::string& alpn = "http/1.1")
      : fd_(ConnectTo(port)), reader_(fd_) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ca_file.empty()) {
      SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    if (!alpn.empty()) {
      std::string wire(1, static_cast<char>(alpn.size()));
      wire += alpn;
      SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size()));
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());
    if (!ca_file.empty()) SSL_set1_host(ssl_, server_name.c_str());
    ok_ = fd_ >= 0 && SSL_connect(ssl_) == 1;
    if (!ok_) {
      char buf[256] = "";
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      error_ = buf;
      ERR_clear_error();
    }
    reader_.set_ssl(ssl_);
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  SSL* ssl() const { return ssl_; }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  // SHA-256 of the server's certificate, hex.
  std::string peer_fingerprint() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert) return "";
    unsigned char md[32];
    unsigned n = 0;
    X509_digest(cert, EVP_sha256(), md, &n);
    X509_free(cert);
    std::string out;
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }
  bool Send(std::string_view data) {
    return ok_ && SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
                      static_cast<int>(data.size());
  }
  std::optional<Message> Read(bool head = false) { return ReadMessage(reader_, head); }
  std::optional<Message> Get(const std::string& host, const std::string& path,
                             const std::string& extra = "") {
    if (!Send("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n")) {
      return std::nullopt;
    }
    return Read();
  }

 private:
  int fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  std::string error_;
  Reader reader_;
};

// WebSocket frames (RFC 6455) for tests: a client's are masked, a server's are not.
inline std::string WebSocketFrame(unsigned char opcode, std::string_view payload, bool masked) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f += static_cast<char>(mask_bit | payload.size());
  } else {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xff);
  }
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  if (masked) f.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f += masked ? static_cast<char>(payload[i] ^ mask[i % 4]) : payload[i];
  }
  return f;
}

struct WebSocketMessage {
  unsigned char opcode = 0;
  std::string payload;
};

// Reads one frame (payloads below 64 KiB), unmasking it if masked.
inline std::optional<WebSocketMessage> ReadWebSocketFrame(Reader& r) {
  auto head = r.Exactly(2);
  if (!head) return std::nullopt;
  WebSocketMessage m;
  m.opcode = static_cast<unsigned char>((*head)[0]) & 0x0f;
  bool masked = static_cast<unsigned char>((*head)[1]) & 0x80;
  size_t len = static_cast<unsigned char>((*head)[1]) & 0x7f;
  if (len == 126) {
    auto ext = r.Exactly(2);
    if (!ext) return std::nullopt;
    len = static_cast<unsigned char>((*ext)[0]) << 8 | static_cast<unsigned char>((*ext)[1]);
  } else if (len == 127) {
    return std::nullopt;
  }
  std::string mask;
  if (masked) {
    auto k = r.Exactly(4);
    if (!k) return std::nullopt;
    mask = *k;
  }
  auto payload = r.Exactly(len);
  if (!payload) return std::nullopt;
  m.payload = *payload;
  if (masked) {
    for (size_t i = 0; i < len; ++i) m.payload[i] ^= mask[i % 4];
  }
  return m;
}

inline std::string WebSocketAccept(const std::string& key) {
  std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < sizeof md; i += 3) {
    uint32_t v = md[i] << 16 | (i + 1 < sizeof md ? md[i + 1] << 8 : 0) |
                 (i + 2 < sizeof md ? md[i + 2] : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < sizeof md ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < sizeof md ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// One-shot: sends `raw` on a fresh connection and reads everything until close.
inline std::string SendRaw(uint16_t port, const std::string& raw) {
  Client c(port);
  c.Send(raw);
  shutdown(c.fd(), SHUT_WR);
  return c.reader().Rest();
}

// A threaded upstream. Paths:
//   /echo          answers with the request body (Content-Length)
//   /slow          waits 3 s (or until Stop) before answering
//   /chunked       answers with a chunked body of 5 chunks "part-0".."part-4"
//   /chunked-wait  sends chunk "first", then waits for Release() before "last"
//   /close         answers without Content-Length and closes (body until close)
//   /headers       answers with the request head it received
//   /ws            a WebSocket echo server (text and binary frames come back; a Close too)
//   /reject-upload answers 413 at once, without reading the body, and closes
//   anything else  "hello from <name>"
class Upstream {
 public:
  explicit Upstream(std::string name = "up") : name_(std::move(name)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 128);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~Upstream() { Stop(); }

  void Stop() {
    if (stopped_.exchange(true)) return;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  int closed_connections() const { return closed_.load(); }
  size_t bytes_received() const { return bytes_.load(); }
  void Release() { released_ = true; }
  int requests() const { return requests_.load(); }
  int open_websockets() const { return websockets_.load(); }
  std::vector<Message> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  void AcceptLoop() {
    while (!stopped_) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopped_) return;
        continue;
      }
      connections_.fetch_add(1);
      std::lock_guard lock(mu_);
      open_fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    SetRecvTimeout(fd, 30);
    Reader r(fd, &bytes_);
    while (!stopped_) {
      auto head = r.Until("\r\n\r\n");
      if (!head) break;
      if (head->find("/reject-upload") != std::string::npos) {
        requests_.fetch_add(1);
        SendAll(fd,
                "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 14\r\n"
                "Connection: close\r\n\r\nbody too large");
        break;
      }
      r.buffer().insert(0, *head);
      auto req = ReadMessage(r, false, false);
      if (!req) break;
      requests_.fetch_add(1);
      {
        std::lock_guard lock(mu_);
        received_.push_back(*req);
      }
      std::string path = req->start_line.substr(req->start_line.find(' ') + 1);
      path = path.substr(0, path.find_first_of(" ?"));
      std::string body = "hello from " + name_;
      if (path == "/slow") {
        for (int i = 0; i < 30 && !stopped_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      } else if (path == "/echo") {
        body = req->body;
      } else if (path == "/headers") {
        body = req->raw_head;
      } else if (path == "/chunked") {
        std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (int i = 0; i < 5; ++i) {
          std::string part = "part-" + std::to_string(i);
          char size[16];
          snprintf(size, sizeof size, "%zx\r\n", part.size());
          out += size + part + "\r\n";
        }
        out += "0\r\n\r\n";
        if (!SendAll(fd, out)) break;
        continue;
      } else if (path == "/chunked-wait") {
        if (!SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"))
          break;
        for (int i = 0; i < 1000 && !released_ && !stopped_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!SendAll(fd, "4\r\nlast\r\n0\r\n\r\n")) break;
        continue;
      } else if (path == "/close") {
        SendAll(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close");
        break;
      } else if (path == "/ws") {
        std::string accept = WebSocketAccept(req->header("sec-websocket-key"));
        if (!SendAll(fd,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                         accept + "\r\n\r\n")) {
          break;
        }
        websockets_.fetch_add(1);
        while (auto frame = ReadWebSocketFrame(r)) {
          if (!SendAll(fd, WebSocketFrame(frame->opcode, frame->payload, false))) break;
          if (frame->opcode == 8) break;
        }
        websockets_.fetch_sub(1);
        break;
      }
      std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: " + name_ +
                        "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (!SendAll(fd, out)) break;
    }
    {
      std::lock_guard lock(mu_);
      std::erase(open_fds_, fd);
    }
    close(fd);
    closed_.fetch_add(1);
  }

  std::string name_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<int> connections_{0}, requests_{0}, closed_{0}, websockets_{0};
  std::atomic<size_t> bytes_{0};
  std::atomic<bool> released_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<int> open_fds_;
  std::vector<Message> received_;
};

// A unique temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "adhoc-router-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A port on 127.0.0.1 where connections are refused: bound but never listening, and
// kept bound for the life of the test process so nothing else can take it.
inline uint16_t RefusingPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace adhoc::router::testing
