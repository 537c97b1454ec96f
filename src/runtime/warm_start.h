// Starting a task by fork from a fork server instead of by exec: the shim's side of the
// protocol in fork_server.py (whose text this binary carries, ForkServerProgram()).
//
// A fork server is one Python interpreter per release with the release's heavy modules
// already imported; a program forked from it skips the interpreter's start and those imports
// (for μblog's gunicorn, most of its start-up). The task stays the shim's in every other way:
// its own process group, its cgroups (joined before it runs anything, as with exec), its
// output through the shim's pipe, its exit status recorded by the shim. Only its parent
// differs: the fork server, which reports the exit over the connection.
//
// Every failure to start this way (no server yet, a command it does not run, a server that
// answers nonsense) is an error the shim answers by starting the task the ordinary way.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unix_socket.h"
#include "runtime/task.h"

namespace adhoc::runtime {

// src/runtime/fork_server.py, as built into this binary.
std::string_view ForkServerProgram();

// One program started by a fork server: a connection that lives as long as the program.
// Move-only; closes the connection when destroyed (the program runs on).
class WarmStart {
 public:
  // Asks the server on `socket` to fork `command` with exactly `env` in `cwd`, its stdin from
  // `stdin_fd` and its stdout and stderr to `output_fd` (both are passed, not kept). Returns
  // once forked; the child waits for Go(). A server that runs but does not listen yet (still
  // importing; its folder is the socket's, a task folder) is waited for, within `timeout`.
  // An error when the server is not there, declines the command (the error says why) or
  // does not answer in time.
  static Result<WarmStart> Begin(const std::filesystem::path& socket, const std::string& command,
                                 const std::map<std::string, std::string>& env,
                                 const std::filesystem::path& cwd, int stdin_fd, int output_fd,
                                 std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }

  // Lets the child run (after the caller has put it into its cgroups).
  Status Go();

  // Readable (poll) when the child has ended or the server went away.
  int fd() const { return socket_.fd(); }

  // Once fd() is readable: the child's exit status, or nullopt when the connection ended
  // without one (the server died: the child runs on, and its status cannot be known).
  // Reads without blocking for long: call it when poll() says fd() is readable.
  std::optional<ExitStatus> ReadExit();

 private:
  WarmStart(UnixSocket socket, pid_t pid, std::string buffered)
      : socket_(std::move(socket)), pid_(pid), buffer_(std::move(buffered)) {}
  UnixSocket socket_;  // move-only: so is a WarmStart
  pid_t pid_ = 0;
  std::string buffer_;  // bytes read past the last whole line
};

}  // namespace adhoc::runtime
