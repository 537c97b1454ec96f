// A connected Unix stream socket (a client's end), for the line-based conversations between
// adhoc's own processes: the router's feed, the control plane's API, a fork server. Closed
// with the object; move-only. Blocking calls on one object from one thread at a time.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adhoc {

class UnixSocket {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to `path`. With `timeout`, sends, receives and the connect itself give up after
  // it (a listener whose backlog is full would otherwise block). NotFound names the path when
  // nothing listens there; a path too long for a socket address is BadInput naming it (never
  // silently cut to another path).
  static Result<UnixSocket> Connect(const std::filesystem::path& path,
                                    std::optional<std::chrono::milliseconds> timeout = {});

  UnixSocket(UnixSocket&& other) noexcept;
  UnixSocket& operator=(UnixSocket&& other) noexcept;
  UnixSocket(const UnixSocket&) = delete;
  UnixSocket& operator=(const UnixSocket&) = delete;
  ~UnixSocket();

  int fd() const { return fd_; }

  // Writes all of `data` (retrying short writes and EINTR; never SIGPIPE).
  Status SendAll(std::string_view data);
  // One line (without its newline); what was read past it stays in `buffer` for the next call.
  // nullopt at the end of the stream, on an error, after `deadline`, or once more than
  // `max_bytes` arrived without a newline.
  std::optional<std::string> ReadLine(std::string& buffer, Clock::time_point deadline,
                                      size_t max_bytes = 64 * 1024);

 private:
  explicit UnixSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace adhoc
