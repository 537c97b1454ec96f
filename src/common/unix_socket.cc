#include "common/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace adhoc {

Result<UnixSocket> UnixSocket::Connect(const std::filesystem::path& path,
                                       std::optional<std::chrono::milliseconds> timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& name = path.native();
  if (name.empty() || name.size() >= sizeof(addr.sun_path))
    return BadInput("socket path '" + name + "' is empty or longer than " +
                    std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, name.c_str(), name.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failed(std::string("socket: ") + std::strerror(errno));
  UnixSocket sock(fd);
  if (timeout) {
    const long long ms = std::max<long long>(1, timeout->count());
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  int rc;
  while ((rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr)) != 0 &&
         errno == EINTR) {
  }
  if (rc != 0) return NotFound("nothing answers at " + name + " (" + std::strerror(errno) + ")");
  return sock;
}

UnixSocket::UnixSocket(UnixSocket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

UnixSocket& UnixSocket::operator=(UnixSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

UnixSocket::~UnixSocket() {
  if (fd_ >= 0) close(fd_);
}

Status UnixSocket::SendAll(std::string_view data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Failed(std::string("sending: ") + std::strerror(n < 0 ? errno : EPIPE));
    sent += static_cast<size_t>(n);
  }
  return OkStatus();
}

std::optional<std::string> UnixSocket::ReadLine(std::string& buffer, Clock::time_point deadline,
                                                size_t max_bytes) {
  size_t searched = 0;
  while (true) {
    auto newline = buffer.find('\n', searched);
    if (newline != std::string::npos) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      return line;
    }
    searched = buffer.size();
    if (buffer.size() > max_bytes) return std::nullopt;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{fd_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char chunk[65536];
    ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace adhoc
