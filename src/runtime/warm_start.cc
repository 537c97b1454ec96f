#include "runtime/warm_start.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

namespace adhoc::runtime {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr size_t kMaxReplyBytes = 64 * 1024;

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Result<int> Connect(const std::filesystem::path& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket_path.string();
  if (path.size() >= sizeof(addr.sun_path)) return Failed("socket path too long: " + path);
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failed(std::string("socket: ") + strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    close(fd);
    return NotFound("no fork server at " + path + ": " + strerror(e));
  }
  return fd;
}

// Sends `data`, with the two descriptors on its first byte.
Status SendWithFds(int fd, const std::string& data, int first, int second) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(2 * sizeof(int));
  int fds[2] = {first, second};
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  while ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n < 0) return Failed(std::string("sending to the fork server: ") + strerror(errno));
  size_t sent = static_cast<size_t>(n);
  while (sent < data.size()) {
    while ((n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL)) < 0 &&
           errno == EINTR) {
    }
    if (n < 0) return Failed(std::string("sending to the fork server: ") + strerror(errno));
    sent += static_cast<size_t>(n);
  }
  return OkStatus();
}

// One line from `fd` (without its newline), `buffer` holding what was read past it. nullopt
// at the end of the stream, on an error, or after `deadline`.
std::optional<std::string> ReadLine(int fd, std::string& buffer, Clock::time_point deadline) {
  while (true) {
    auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      return line;
    }
    if (buffer.size() > kMaxReplyBytes) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

// The server of `socket_path` runs (its task folder is the socket's folder) but does not
// listen yet.
bool ServerStarting(const std::filesystem::path& socket_path) {
  auto server = ReadShimRecord(socket_path.parent_path());
  return server.ok() && IsAlive(server->task) && !std::filesystem::exists(socket_path);
}

std::optional<json> ParseObject(const std::string& line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

}  // namespace

Result<WarmStart> WarmStart::Begin(const std::filesystem::path& socket_path,
                                   const std::string& command,
                                   const std::map<std::string, std::string>& env,
                                   const std::filesystem::path& cwd, int stdin_fd, int output_fd,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto connected = Connect(socket_path);
  // A server still importing is waited for: its imports are already under way, an exec
  // would start them from nothing (and compete with it for the same cores).
  while (!connected.ok() && Clock::now() < deadline && ServerStarting(socket_path)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    connected = Connect(socket_path);
  }
  if (!connected.ok()) return connected.error();
  FdCloser closer(*connected);
  const int fd = *connected;
  json request = {{"command", command}, {"env", env}, {"cwd", cwd.string()}};
  // dump() escapes newlines inside strings: the request is exactly one line.
  ADHOC_RETURN_IF_ERROR(
      SendWithFds(fd, request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", stdin_fd,
                  output_fd));
  std::string buffer;
  auto line = ReadLine(fd, buffer, std::max(deadline, Clock::now() + std::chrono::seconds(1)));
  if (!line) return Failed("the fork server did not answer");
  auto reply = ParseObject(*line);
  if (!reply) return Failed("the fork server answered nonsense");
  if (reply->value("ok", false) != true) {
    auto why = reply->find("why");
    return Failed("the fork server declined: " + (why != reply->end() && why->is_string()
                                                      ? why->get<std::string>()
                                                      : std::string("no reason given")));
  }
  auto pid = reply->find("pid");
  if (pid == reply->end() || !pid->is_number_integer() || pid->get<int64_t>() <= 1 ||
      pid->get<int64_t>() > 1 << 30)
    return Failed("the fork server answered without a valid pid");
  return WarmStart(closer.release(), static_cast<pid_t>(pid->get<int64_t>()), std::move(buffer));
}

WarmStart::WarmStart(WarmStart&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), pid_(other.pid_), buffer_(std::move(other.buffer_)) {}

WarmStart& WarmStart::operator=(WarmStart&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    pid_ = other.pid_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

WarmStart::~WarmStart() {
  if (fd_ >= 0) close(fd_);
}

Status WarmStart::Go() {
  char go = 'g';
  ssize_t n;
  while ((n = send(fd_, &go, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n != 1) return Failed(std::string("telling the forked task to run: ") + strerror(errno));
  return OkStatus();
}

std::optional<ExitStatus> WarmStart::ReadExit() {
  auto line = ReadLine(fd_, buffer_, Clock::now() + std::chrono::seconds(1));
  if (!line) return std::nullopt;
  auto reply = ParseObject(*line);
  if (!reply) return std::nullopt;
  auto end = reply->find("exit");
  if (end == reply->end() || !end->is_object()) return std::nullopt;
  ExitStatus status;
  if (auto code = end->find("code"); code != end->end() && code->is_number_integer())
    status.code = static_cast<int>(code->get<int64_t>());
  else if (auto sig = end->find("signal"); sig != end->end() && sig->is_number_integer())
    status.signal = static_cast<int>(sig->get<int64_t>());
  else
    return std::nullopt;
  return status;
}

}  // namespace adhoc::runtime
