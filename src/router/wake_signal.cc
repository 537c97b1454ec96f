#include "router/wake_signal.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace adhoc::router {

namespace fs = std::filesystem;

bool SendWake(const fs::path& socket_path, const std::string& env,
              std::chrono::milliseconds timeout) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.native().size() >= sizeof(addr.sun_path)) {
    close(fd);
    return false;
  }
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return false;
  }
  const std::string body = R"({"background":true})";
  const std::string request = "POST /v1/environments/" + env +
                              "/wake HTTP/1.1\r\nHost: adhoc\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  bool ok = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size());
  // The answer (202) says it was taken; its content does not matter here.
  char buf[512];
  ok = ok && read(fd, buf, sizeof buf) > 0;
  close(fd);
  return ok;
}

WakeSignal::WakeSignal(fs::path socket, std::function<void(const std::string&)> send)
    : socket_(std::move(socket)), send_(std::move(send)) {
  if (!send_) send_ = [this](const std::string& env) { (void)SendWake(socket_, env); };
  thread_ = std::thread([this] { Run(); });
}

WakeSignal::~WakeSignal() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WakeSignal::Request(const std::string& env) {
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    auto it = last_.find(env);
    if (it != last_.end() && now - it->second < min_interval) return;
    last_[env] = now;
    queue_.push_back(env);
  }
  cv_.notify_one();
}

void WakeSignal::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::string env = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    send_(env);
    lock.lock();
  }
}

}  // namespace adhoc::router
