#include "router/wake_signal.h"

#include "common/unix_socket.h"

namespace adhoc::router {

namespace fs = std::filesystem;

bool SendWake(const fs::path& socket_path, const std::string& env,
              std::chrono::milliseconds timeout) {
  auto sock = UnixSocket::Connect(socket_path, timeout);
  if (!sock.ok()) return false;
  const std::string body = R"({"background":true})";
  const std::string request = "POST /v1/environments/" + env +
                              "/wake HTTP/1.1\r\nHost: adhoc\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!sock->SendAll(request).ok()) return false;
  // The answer's status line (202) says it was taken; what follows does not matter here.
  std::string buffer;
  return sock->ReadLine(buffer, UnixSocket::Clock::now() + timeout, 512).has_value();
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
