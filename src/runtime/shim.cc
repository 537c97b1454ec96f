#include "runtime/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "runtime/cgroups.h"
#include "runtime/log_writer.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "runtime/warm_start.h"

namespace adhoc::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// How long output is still read after the main process ended, for children that keep
// the pipe open.
constexpr auto kDrainGrace = std::chrono::seconds(2);
constexpr size_t kMaxLineBytes = 64 * 1024;
// How long a fork server may take to fork; then the task starts by exec.
constexpr auto kForkServerTimeout = std::chrono::seconds(10);
// The exit code recorded for a forked task whose fork server died before it: the real one
// went to nobody.
constexpr int kUnknownExitCode = 255;

// Splits the pipe's bytes into lines for the log; a very long line is cut into pieces.
class LineSplitter {
 public:
  explicit LineSplitter(RotatingLogWriter* log) : log_(log) {}
  void Feed(const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (data[i] == '\n') {
        Emit();
      } else {
        partial_ += data[i];
        if (partial_.size() >= kMaxLineBytes) Emit();
      }
    }
  }
  void Flush() {
    if (!partial_.empty()) Emit();
  }

 private:
  void Emit() {
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    Status s = log_->WriteLine(partial_);
    if (!s.ok()) fprintf(stderr, "adhoc shim: %s\n", s.error().message().c_str());
    partial_.clear();
  }
  RotatingLogWriter* log_;
  std::string partial_;
};

// Async-signal-safe decimal formatting for the child between fork and exec.
void FormatPid(pid_t pid, char* buf) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0);
  for (int i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
}

// Puts the process `pid_text` into each group's cgroup.procs. Async-signal-safe (open, write,
// close only): the exec path's child calls it between fork and exec.
void JoinCgroups(const std::vector<std::string>& procs_files, const char* pid_text) {
  for (const auto& f : procs_files) {
    int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      (void)!write(fd, pid_text, strlen(pid_text));
      close(fd);
    }
  }
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus s;
  if (WIFSIGNALED(status))
    s.signal = WTERMSIG(status);
  else
    s.code = WEXITSTATUS(status);
  return s;
}

int Fail(const fs::path& folder, const std::string& what) {
  fprintf(stderr, "adhoc shim: %s\n", what.c_str());
  (void)WriteExitRecord(folder, ExitStatus{127, 0});
  return 1;
}

}  // namespace

int ShimMain(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: adhoc __shim TASK_FOLDER\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const fs::path folder = argv[1];
  auto launch = ReadLaunchRecord(folder);
  if (!launch.ok()) return Fail(folder, launch.error().message());
  const TaskSpec& spec = launch->spec;

  RotatingLogWriter log(spec.log_path, spec.log_max_bytes, spec.log_keep);
  if (Status s = log.Open(); !s.ok()) return Fail(folder, s.error().message());

  // Everything the child needs is prepared before fork.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string command = ExecForm(spec.command);
  char sh[] = "/bin/sh";
  char dash_c[] = "-c";
  char* child_argv[] = {sh, dash_c, command.data(), nullptr};
  std::string cwd = (spec.working_folder.empty() ? spec.task_folder : spec.working_folder).string();
  std::vector<std::string> procs_files;
  for (const auto& g : launch->cgroups) procs_files.push_back((g / "cgroup.procs").string());
  std::string chdir_error = "adhoc shim: cannot enter working folder " + cwd + "\n";

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Fail(folder, std::string("pipe: ") + strerror(errno));
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

  // A fork server first, when the task names one: it saves the interpreter's start-up.
  std::optional<WarmStart> warm;
  if (!spec.fork_server.empty()) {
    auto started = WarmStart::Begin(spec.fork_server, spec.command, spec.env, cwd, devnull,
                                    pipe_fds[1], kForkServerTimeout);
    if (started.ok())
      warm.emplace(std::move(*started));
    else
      fprintf(stderr, "adhoc shim: started by exec: %s\n", started.error().message().c_str());
  }

  pid_t pid = 0;
  if (warm) {
    pid = warm->pid();
    // Into its cgroups before it runs anything, as the exec path's child does itself.
    JoinCgroups(procs_files, std::to_string(pid).c_str());
    // Without it the child ends itself (status 125), which the loop below records.
    if (Status s = warm->Go(); !s.ok())
      fprintf(stderr, "adhoc shim: %s\n", s.error().message().c_str());
    close(pipe_fds[1]);
  } else {
    // Closed by the child's exec: until then the task may not be in its cgroups yet.
    int exec_fds[2];
    if (pipe2(exec_fds, O_CLOEXEC) != 0)
      return Fail(folder, std::string("pipe: ") + strerror(errno));
    pid = fork();
    if (pid < 0) return Fail(folder, std::string("fork: ") + strerror(errno));
    if (pid == 0) {
      setpgid(0, 0);
      char pid_text[16];
      FormatPid(getpid(), pid_text);
      JoinCgroups(procs_files, pid_text);
      dup2(devnull, 0);
      dup2(pipe_fds[1], 1);
      dup2(pipe_fds[1], 2);
      // Ignored signals survive exec: give the task the defaults.
      signal(SIGPIPE, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (chdir(cwd.c_str()) != 0) {
        (void)!write(2, chdir_error.data(), chdir_error.size());
        _exit(126);
      }
      execve(sh, child_argv, envp.data());
      _exit(127);
    }
    setpgid(pid, pid);  // also here, so it holds before the parent relies on it
    close(pipe_fds[1]);
    close(exec_fds[1]);
    char ignored;
    while (read(exec_fds[0], &ignored, 1) < 0 && errno == EINTR) {
    }
    close(exec_fds[0]);
  }
  if (devnull >= 0) close(devnull);

  TaskHandle handle;
  handle.id = spec.id;
  handle.task_folder = folder;
  handle.task = {pid, ProcessStartTime(pid).value_or(0)};
  handle.shim = Self();
  if (Status s = WriteShimRecord(handle); !s.ok())
    fprintf(stderr, "adhoc shim: %s\n", s.error().message().c_str());

  LineSplitter lines(&log);
  char buf[16384];
  bool pipe_open = true;
  bool exited = false;
  // A forked task's parent is its fork server; when that server is gone, the task is only
  // watched (and its exit status cannot be known).
  bool orphaned = false;
  ExitStatus status;
  Clock::time_point drain_deadline;
  while (true) {
    int timeout_ms = 100;
    if (exited) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - Clock::now());
      if (!pipe_open || left.count() <= 0) break;
      timeout_ms = static_cast<int>(std::min<long long>(left.count(), 100));
    }
    pollfd pfds[2];
    nfds_t count = 0;
    int pipe_index = -1, warm_index = -1;
    if (pipe_open) {
      pipe_index = static_cast<int>(count);
      pfds[count++] = {pipe_fds[0], POLLIN, 0};
    }
    if (warm && !exited && !orphaned) {
      warm_index = static_cast<int>(count);
      pfds[count++] = {warm->fd(), POLLIN, 0};
    }
    // The exec path with its pipe closed waits in waitpid below instead.
    if (count == 0 && warm) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    if (count > 0 && poll(pfds, count, timeout_ms) > 0 && pipe_index >= 0 &&
        pfds[pipe_index].revents != 0) {
      ssize_t n = read(pipe_fds[0], buf, sizeof buf);
      if (n > 0)
        lines.Feed(buf, n);
      else if (n == 0 || errno != EINTR)
        pipe_open = false;
    }
    if (exited) continue;
    if (warm) {
      if (warm_index >= 0 && pfds[warm_index].revents != 0) {
        if (auto end = warm->ReadExit()) {
          status = *end;
          exited = true;
        } else {
          orphaned = true;
          fprintf(stderr,
                  "adhoc shim: the fork server ended before the task; its exit status "
                  "will not be known\n");
        }
      }
      if (orphaned && !IsAlive(handle.task)) {
        status = ExitStatus{kUnknownExitCode, 0};
        exited = true;
      }
    } else {
      // Without output the pipe's end is also the moment to wait for the main process.
      int flags = pipe_open ? WNOHANG : 0;
      int wait_status = 0;
      pid_t w;
      while ((w = waitpid(pid, &wait_status, flags)) < 0 && errno == EINTR) {
      }
      if (w == pid) {
        status = FromWaitStatus(wait_status);
        exited = true;
      }
    }
    if (exited) drain_deadline = Clock::now() + kDrainGrace;
  }
  lines.Flush();
  close(pipe_fds[0]);
  // The task is over: what is left of its group goes with it.
  kill(-pid, SIGKILL);
  // Killed processes leave their groups a moment after they die.
  RemoveTaskCgroups(launch->cgroups, launch->spec.limits_group, std::chrono::seconds(2));
  if (Status s = WriteExitRecord(folder, status); !s.ok()) {
    fprintf(stderr, "adhoc shim: %s\n", s.error().message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace adhoc::runtime
