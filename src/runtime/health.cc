#include "runtime/health.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/exec.h"

namespace adhoc::runtime {
namespace {

using SteadyClock = std::chrono::steady_clock;

int MillisLeft(SteadyClock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

Result<StatusMatcher> StatusMatcher::Parse(const std::string& text) {
  StatusMatcher m;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    int lo = 0, hi = 0;
    char extra = 0;
    if (sscanf(part.c_str(), " %d - %d %c", &lo, &hi, &extra) == 2 ||
        (sscanf(part.c_str(), " %d %c", &lo, &extra) == 1 && (hi = lo))) {
      if (lo < 100 || hi > 599 || lo > hi)
        return BadInput("bad HTTP status range '" + part + "' in matcher '" + text + "'");
      m.ranges_.push_back({lo, hi});
    } else {
      return BadInput("bad matcher '" + text + "': expected e.g. 200-399 or 200,204");
    }
  }
  if (m.ranges_.empty()) return BadInput("empty matcher");
  return m;
}

bool StatusMatcher::Matches(int status) const {
  for (auto [lo, hi] : ranges_)
    if (status >= lo && status <= hi) return true;
  return false;
}

ProbeResult HttpProber::Probe(std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  std::string where = address_ + ":" + std::to_string(port_);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port_));
  if (inet_pton(AF_INET, address_.c_str(), &sa.sin_addr) != 1)
    return {false, "not an IPv4 address: " + address_};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return {false, std::string("socket: ") + strerror(errno)};
  auto fail = [&](const std::string& what) {
    close(fd);
    return ProbeResult{false, what};
  };
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS) return fail("connect " + where + ": " + strerror(errno));
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, MillisLeft(deadline)) <= 0) return fail("connect " + where + ": timed out");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail("connect " + where + ": " + strerror(err));
  }
  std::string request = "GET " + path_ + " HTTP/1.1\r\nHost: " + host_header_ +
                        "\r\nUser-Agent: adhoc-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, MillisLeft(deadline)) <= 0) return fail("sending to " + where + ": timed out");
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return fail("sending to " + where + ": " + strerror(errno));
    if (n > 0) sent += n;
  }
  std::string response;
  while (response.find("\r\n") == std::string::npos && response.size() < 8192) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, MillisLeft(deadline)) <= 0) return fail("no response from " + where);
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail("reading from " + where + ": " + strerror(errno));
    }
    response.append(buf, n);
  }
  close(fd);
  int status = 0;
  char minor = 0;
  if (sscanf(response.c_str(), "HTTP/1.%c %3d", &minor, &status) != 2)
    return {false, "not an HTTP response from " + where};
  return {matcher_.Matches(status), "HTTP " + std::to_string(status)};
}

ProbeResult CommandProber::Probe(std::chrono::milliseconds timeout) {
  ExecOptions options;
  options.env = env_;
  options.cwd = cwd_;
  options.timeout = timeout;
  auto r = Exec({"/bin/sh", "-c", command_}, options);
  if (!r.ok()) return {false, r.error().message()};
  if (r->timed_out) return {false, "health command timed out"};
  std::string tail = LastLines(r->output, 1);
  return {r->exit_code == 0,
          "exit " + std::to_string(r->exit_code) + (tail.empty() ? "" : ": " + tail)};
}

HealthTracker::HealthTracker(HealthSettings settings, const Clock& clock)
    : settings_(settings), clock_(clock), started_(clock.Now()), next_probe_(started_) {}

bool HealthTracker::Due() const {
  return state_ != State::kStartFailed && clock_.Now() >= next_probe_;
}

HealthTracker::State HealthTracker::CheckStartTimeout() {
  if (state_ == State::kStarting && clock_.Now() - started_ >= settings_.start_timeout)
    state_ = State::kStartFailed;
  return state_;
}

HealthTracker::State HealthTracker::Tick(Prober& prober) {
  if (CheckStartTimeout() == State::kStartFailed || !Due()) return state_;
  auto timeout = settings_.timeout;
  if (state_ == State::kStarting) {
    // Never probe past the start deadline.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(settings_.start_timeout -
                                                                      (clock_.Now() - started_));
    timeout = std::min(timeout, left);
  }
  return Record(prober.Probe(timeout));
}

HealthTracker::State HealthTracker::Record(const ProbeResult& result) {
  if (state_ == State::kStartFailed) return state_;
  last_detail_ = result.detail;
  auto now = clock_.Now();
  if (state_ == State::kStarting) {
    if (result.healthy) {
      state_ = State::kHealthy;
      successes_ = 1;
      failures_ = 0;
      next_probe_ = now + settings_.interval;
      return state_;
    }
    next_probe_ = now + settings_.start_interval;
    return CheckStartTimeout();
  }
  next_probe_ = now + settings_.interval;
  if (result.healthy) {
    ++successes_;
    failures_ = 0;
    if (state_ == State::kUnhealthy && successes_ >= settings_.healthy_threshold)
      state_ = State::kHealthy;
  } else {
    ++failures_;
    successes_ = 0;
    if (failures_ >= settings_.unhealthy_threshold) state_ = State::kUnhealthy;
  }
  return state_;
}

const char* ToString(HealthTracker::State state) {
  switch (state) {
    case HealthTracker::State::kStarting:
      return "starting";
    case HealthTracker::State::kHealthy:
      return "healthy";
    case HealthTracker::State::kUnhealthy:
      return "unhealthy";
    case HealthTracker::State::kStartFailed:
      return "start failed";
  }
  return "?";
}

}  // namespace adhoc::runtime
