#include "runtime/warm_start.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

namespace adhoc::runtime {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr size_t kMaxReplyBytes = 64 * 1024;

// Sends `data`, with the two descriptors on its first byte.
Status SendWithFds(UnixSocket& socket, const std::string& data, int first, int second) {
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
  while ((n = sendmsg(socket.fd(), &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n < 0) return Failed(std::string("sending to the fork server: ") + strerror(errno));
  return std::move(socket.SendAll(std::string_view(data).substr(static_cast<size_t>(n))))
      .context("sending to the fork server");
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
  auto connected = UnixSocket::Connect(socket_path);
  // A server still importing is waited for: its imports are already under way, an exec
  // would start them from nothing (and compete with it for the same cores).
  while (!connected.ok() && Clock::now() < deadline && ServerStarting(socket_path)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    connected = UnixSocket::Connect(socket_path);
  }
  if (!connected.ok()) return std::move(connected).context("no fork server").error();
  UnixSocket& sock = *connected;
  json request = {{"command", command}, {"env", env}, {"cwd", cwd.string()}};
  // dump() escapes newlines inside strings: the request is exactly one line.
  ADHOC_RETURN_IF_ERROR(
      SendWithFds(sock, request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                  stdin_fd, output_fd));
  std::string buffer;
  auto line = sock.ReadLine(buffer, std::max(deadline, Clock::now() + std::chrono::seconds(1)),
                            kMaxReplyBytes);
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
  return WarmStart(std::move(sock), static_cast<pid_t>(pid->get<int64_t>()), std::move(buffer));
}

Status WarmStart::Go() {
  return std::move(socket_.SendAll("g")).context("telling the forked task to run");
}

std::optional<ExitStatus> WarmStart::ReadExit() {
  auto line = socket_.ReadLine(buffer_, Clock::now() + std::chrono::seconds(1), kMaxReplyBytes);
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
