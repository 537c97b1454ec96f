#include "common/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace adhoc {
namespace {

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += ShellQuote(a);
  }
  return s;
}

// Finds an executable in PATH the way execvp would, so a missing command is
// reported before forking.
std::optional<std::string> FindInPath(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::string ShellQuote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789-_./=:@%+,") == std::string::npos)
    return word;
  std::string q = "'";
  for (char c : word) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

std::string LastLines(const std::string& text, int n) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  for (int i = 0; i < n && pos > 0; ++i) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    pos = nl;
    if (i + 1 < n) continue;
    ++pos;
  }
  if (pos > 0 && text[pos - 1] != '\n' && pos < end && text[pos] == '\n') ++pos;
  return text.substr(pos, end - pos);
}

Result<ExecResult> Exec(const std::vector<std::string>& argv, const ExecOptions& options) {
  if (argv.empty()) return BadInput("empty command");
  std::string path;
  if (options.env) {
    auto it = options.env->find("PATH");
    path = it != options.env->end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
  } else {
    const char* p = getenv("PATH");
    path = p ? p : "/usr/local/bin:/usr/bin:/bin";
  }
  std::optional<std::string> program = FindInPath(argv[0], path);
  if (!program) return NotFound("command not found: " + argv[0]);

  std::vector<std::string> env_strings;
  if (options.env)
    for (const auto& [k, v] : *options.env) env_strings.push_back(k + "=" + v);

  int out_pipe[2];
  int in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(in_pipe, O_CLOEXEC) != 0)
    return Failed(std::string("pipe: ") + strerror(errno));
  int log_fd = -1;
  if (!options.log_file.empty()) {
    log_fd = open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0) return Failed("opening " + options.log_file.string() + ": " + strerror(errno));
  }

  // Everything the child touches is prepared before fork (no allocation after it).
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return Failed(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in_pipe[0], 0);
    int out = log_fd >= 0 ? log_fd : out_pipe[1];
    dup2(out, 1);
    dup2(out, 2);
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(126);
    if (options.gid && setgid(*options.gid) != 0) _exit(126);
    if (options.uid && setuid(*options.uid) != 0) _exit(126);
    signal(SIGPIPE, SIG_DFL);
    if (options.env)
      execve(program->c_str(), cargv.data(), cenv.data());
    else
      execv(program->c_str(), cargv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(in_pipe[0]);
  if (log_fd >= 0) close(log_fd);
  // Small inputs only (a password, a SQL line): written before reading output.
  if (!options.stdin_data.empty()) {
    signal(SIGPIPE, SIG_IGN);
    const char* p = options.stdin_data.data();
    size_t left = options.stdin_data.size();
    while (left > 0) {
      ssize_t n = write(in_pipe[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= n;
    }
  }
  close(in_pipe[1]);

  ExecResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[8192];
  bool open_pipe = true;
  while (open_pipe) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(-pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    pollfd pfd{out_pipe[0], POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) {
      // With a log file the pipe only closes at exit; check the child directly.
      int st;
      if (log_fd >= 0 && waitpid(pid, &st, WNOHANG) == pid) {
        result.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        close(out_pipe[0]);
        return result;
      }
      continue;
    }
    ssize_t n = read(out_pipe[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, n);
    } else if (n == 0 || errno != EINTR) {
      open_pipe = false;
    }
  }
  // With a log file the pipe is closed at once (the child writes to the file), so the
  // deadline is kept by polling the child itself.
  while (log_fd >= 0 && !result.timed_out) {
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) {
      close(out_pipe[0]);
      result.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return result;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(-pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  close(out_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (result.exit_code == 126 && result.output.empty())
    return Failed("could not start " + JoinArgv(argv) + " (working folder or user)");
  return result;
}

Result<std::string> ExecOk(const std::vector<std::string>& argv, const ExecOptions& options) {
  ADHOC_ASSIGN_OR_RETURN(ExecResult r, Exec(argv, options));
  if (r.timed_out) return Failed(JoinArgv(argv) + " timed out");
  if (r.exit_code != 0) {
    std::string msg = JoinArgv(argv) + " exited with status " + std::to_string(r.exit_code);
    std::string tail = LastLines(r.output, 5);
    if (!tail.empty()) msg += ":\n" + tail;
    return Failed(msg);
  }
  return std::move(r.output);
}

}  // namespace adhoc
