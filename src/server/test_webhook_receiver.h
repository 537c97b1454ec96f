// A webhook receiver for tests (header-only, tests only): listens on 127.0.0.1, port 0, plain
// or TLS (with the server context a test makes), records every request (method, target,
// lower-case headers, body) and answers as told: a status, nothing at all (the connection is
// held open until the receiver goes), or bytes that are not HTTP. One connection at a time, on
// a thread of its own; every read is bounded, so a broken client fails a test, never hangs it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace adhoc::server::testing {

class WebhookReceiver {
 public:
  enum class Mode { kAnswer, kSilent, kGarbage };
  struct Request {
    std::string method, target, body;
    std::map<std::string, std::string> headers;  // lower-case names
  };

  // `tls`: a server context (certificate and key loaded); null for plain HTTP. Not owned.
  explicit WebhookReceiver(SSL_CTX* tls = nullptr) : tls_(tls) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~WebhookReceiver() {
    stop_ = true;
    thread_.join();
    for (int fd : held_) close(fd);
    close(fd_);
  }
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  int port() const { return port_; }
  std::string Url(const std::string& path = "/hook", const std::string& host = "127.0.0.1") const {
    return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + path;
  }

  void AnswerWith(int status) {
    std::lock_guard lock(mu_);
    mode_ = Mode::kAnswer;
    status_ = status;
  }
  void SetMode(Mode mode) {
    std::lock_guard lock(mu_);
    mode_ = mode;
  }

  std::vector<Request> Requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Waits until at least `n` requests came, up to `limit`; whether they did.
  bool WaitForRequests(size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return requests_.size() >= n; });
  }
  // Connections accepted (a TLS client that refuses the certificate makes one, no request).
  int connections() const { return connections_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      timeval tv{3, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = nullptr;
      if (tls_) {
        ssl = SSL_new(tls_);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
          SSL_free(ssl);
          close(fd);
          continue;
        }
      }
      bool hold = Handle(fd, ssl);
      if (ssl) {
        if (!hold) SSL_shutdown(ssl);
        SSL_free(ssl);
      }
      if (hold)
        held_.push_back(fd);
      else
        close(fd);
    }
  }

  // Reads one request and answers it; true when the connection is to be held open.
  bool Handle(int fd, SSL* ssl) {
    auto read_some = [&](char* buf, int n) -> int {
      return ssl ? SSL_read(ssl, buf, n) : static_cast<int>(recv(fd, buf, n, 0));
    };
    auto write_all = [&](const std::string& data) {
      if (ssl)
        SSL_write(ssl, data.data(), static_cast<int>(data.size()));
      else
        (void)send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    };
    std::string data;
    char buf[4096];
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      int n = read_some(buf, sizeof buf);
      if (n <= 0) return false;
      data.append(buf, n);
    }
    Request r;
    std::string head = data.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
    r.method = first.substr(0, sp1);
    r.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        size_t v = line.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = end + 2;
    }
    size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    r.body = data.substr(header_end + 4);
    while (r.body.size() < length) {
      int n = read_some(buf, sizeof buf);
      if (n <= 0) break;
      r.body.append(buf, n);
    }
    Mode mode;
    int status;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(r);
      mode = mode_;
      status = status_;
    }
    cv_.notify_all();
    if (mode == Mode::kSilent) return true;
    if (mode == Mode::kGarbage) {
      write_all("\x01\x02 this is not HTTP at all\r\n\r\n");
      return false;
    }
    write_all("HTTP/1.1 " + std::to_string(status) +
              " Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    return false;
  }

  SSL_CTX* tls_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::vector<int> held_;  // silent mode's connections, closed when the receiver goes
  std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kAnswer;
  int status_ = 200;
  std::vector<Request> requests_;
};

}  // namespace adhoc::server::testing
