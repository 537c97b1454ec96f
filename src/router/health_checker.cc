#include "router/health_checker.h"

#include <boost/asio.hpp>
#include <thread>

#include "router/http_parser.h"

namespace adhoc::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

struct HealthChecker::Impl {
  explicit Impl(RouteTableHolder& h) : holder(h) {}

  // One probe: true if the target answered with a matching status in time.
  static awaitable<bool> ProbeOnce(asio::io_context& io, Target target, HealthCheck check,
                                   std::string host) {
    error_code ec;
    auto address =
        asio::ip::make_address(target.host == "localhost" ? "127.0.0.1" : target.host, ec);
    if (ec) co_return false;
    auto socket = std::make_shared<tcp::socket>(io);
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer timer(io);
    timer.expires_after(check.timeout);
    timer.async_wait([socket, timed_out](error_code e) {
      if (e) return;
      *timed_out = true;
      error_code ignored;
      socket->close(ignored);
    });
    co_await socket->async_connect(tcp::endpoint(address, target.port),
                                   asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    std::string request = "GET " + check.path + " HTTP/1.1\r\nHost: " + host +
                          "\r\nUser-Agent: adhoc-router-health\r\nConnection: close\r\n\r\n";
    co_await asio::async_write(*socket, asio::buffer(request),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    std::string buffer;
    while (buffer.find("\r\n\r\n") == std::string::npos && buffer.size() < 65536) {
      char chunk[4096];
      size_t n = co_await socket->async_read_some(asio::buffer(chunk),
                                                  asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      buffer.append(chunk, n);
    }
    timer.cancel();
    size_t end = FindHeadEnd(buffer);
    if (end == std::string::npos) co_return false;
    ResponseHead head;
    if (ParseResponseHead(std::string_view(buffer).substr(0, end), "GET", head)) co_return false;
    co_return head.status >= check.matcher_low&& head.status <= check.matcher_high;
  }

  static awaitable<void> Probe(asio::io_context& io, Target target, HealthCheck check,
                               std::string host) {
    bool ok = co_await ProbeOnce(io, target, check, host);
    UpstreamState& s = *target.state;
    s.probing = false;
    s.next_probe = Clock::now() + check.interval;
    if (ok) {
      s.probe_failures = 0;
      if (++s.probe_successes >= check.healthy_threshold) s.healthy = true;
    } else {
      s.probe_successes = 0;
      if (++s.probe_failures >= check.unhealthy_threshold) s.healthy = false;
    }
  }

  void Tick() {
    auto table = holder.Load();
    auto now = Clock::now();
    for (const auto& [name, env] : table->envs()) {
      for (const Route& route : env->routes) {
        if (!route.health) continue;
        for (const Target& target : route.targets) {
          UpstreamState& s = *target.state;
          if (s.probing || s.next_probe > now) continue;
          s.probing = true;
          asio::co_spawn(io, Probe(io, target, *route.health, env->hosts.front()), asio::detached);
        }
      }
    }
    timer.expires_after(std::chrono::milliseconds(50));
    timer.async_wait([this](error_code ec) {
      if (!ec) Tick();
    });
  }

  RouteTableHolder& holder;
  asio::io_context io;
  asio::steady_timer timer{io};
  std::thread thread;
};

HealthChecker::HealthChecker(RouteTableHolder& holder) : impl_(std::make_unique<Impl>(holder)) {}
HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Start() {
  impl_->Tick();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

void HealthChecker::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace adhoc::router
