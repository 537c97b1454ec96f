#include "runtime/runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/hash.h"
#include "runtime/logs.h"

namespace adhoc::runtime {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const std::set<std::string>& ShellWords() {
  static const std::set<std::string> words = {
      "!",      "{",      "}",     "(",       ")",      "[",     "[[",      ".",
      ":",      "alias",  "bg",    "break",   "case",   "cd",    "command", "continue",
      "do",     "done",   "echo",  "elif",    "else",   "esac",  "eval",    "exit",
      "export", "false",  "fc",    "fg",      "fi",     "for",   "getopts", "hash",
      "if",     "jobs",   "kill",  "local",   "printf", "pwd",   "read",    "readonly",
      "return", "set",    "shift", "test",    "then",   "times", "trap",    "true",
      "type",   "ulimit", "umask", "unalias", "unset",  "until", "wait",    "while"};
  return words;
}

bool IsAssignment(const std::string& word) {
  auto eq = word.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  for (size_t i = 0; i < eq; ++i)
    if (!(isalnum(static_cast<unsigned char>(word[i])) || word[i] == '_')) return false;
  return !isdigit(static_cast<unsigned char>(word[0]));
}

fs::path OwnExecutable() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p;
}

void CloseFrom(int lowest) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lowest, ~0U, 0) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = lowest; fd < (max > 0 ? max : 1024); ++fd) close(static_cast<int>(fd));
}

// Starts `binary __shim folder` in a session of its own, through an intermediate child
// that exits at once, so the shim is nobody's child here and outlives this process.
Status SpawnDetachedShim(const fs::path& binary, const fs::path& folder) {
  std::string bin = binary.string();
  std::string dir = folder.string();
  std::string shim_log = (folder / kShimLogFile).string();
  char arg0[] = "adhoc";
  char arg1[] = "__shim";
  char* argv[] = {arg0, arg1, dir.data(), nullptr};
  char path_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path_env, nullptr};

  pid_t child = fork();
  if (child < 0) return Failed(std::string("fork: ") + strerror(errno));
  if (child == 0) {
    setsid();
    pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    int in = open("/dev/null", O_RDONLY);
    int out = open(shim_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) _exit(1);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    CloseFrom(3);
    for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (chdir("/") != 0) _exit(1);
    execve(bin.c_str(), argv, envp);
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Failed("could not detach the shim");
  return OkStatus();
}

std::string ShimLogTail(const fs::path& folder) {
  auto lines = ReadLastLines(folder / kShimLogFile, 3);
  std::string s;
  if (lines.ok())
    for (const auto& l : *lines) s += (s.empty() ? "" : "; ") + l.raw;
  return s;
}

}  // namespace

std::string CommandWord(const std::string& command) {
  std::istringstream in(command);
  std::string word;
  while (in >> word) {
    if (IsAssignment(word) || word == "exec") continue;
    if (word.find_first_of("'\"$`\\<>|&;()*?[]{}~") != std::string::npos) return "";
    if (ShellWords().count(word)) return "";
    return word;
  }
  return "";
}

std::string ExecForm(const std::string& command) {
  std::istringstream in(command);
  std::string first;
  if (!(in >> first)) return command;
  if (first == "exec" || IsAssignment(first) || ShellWords().count(first) ||
      first.find_first_of("({") == 0)
    return command;
  char quote = 0;
  for (size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (quote) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"')
        ++i;
      continue;
    }
    if (c == '\\') {
      ++i;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';' || c == '&' || c == '|' || c == '\n' || c == '`' || c == '(') {
      return command;
    }
  }
  return "exec " + command;
}

Status CheckCommandExists(const std::string& command, const std::string& path,
                          const fs::path& working_folder) {
  std::string word = CommandWord(command);
  if (word.empty()) return OkStatus();
  auto executable = [](const fs::path& p) {
    std::error_code ec;
    return access(p.c_str(), X_OK) == 0 && !fs::is_directory(p, ec);
  };
  if (word.find('/') != std::string::npos) {
    fs::path p = word;
    if (p.is_relative()) p = working_folder / p;
    if (executable(p)) return OkStatus();
  } else {
    std::istringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      fs::path d = dir.empty() ? fs::path(".") : fs::path(dir);
      if (d.is_relative()) d = working_folder / d;
      if (executable(d / word)) return OkStatus();
    }
  }
  return NotFound("command not found: " + word);
}

struct LocalRuntime::Impl {
  LocalRuntimeOptions options;
  std::mutex mu;  // guards cgroups detection and `warned`
  std::optional<CgroupSupport> cgroups;
  std::set<std::string> warned;

  CgroupSupport Cgroups() {
    std::lock_guard<std::mutex> lock(mu);
    if (!cgroups) cgroups = DetectCgroups();
    return *cgroups;
  }

  // A limit that cannot be applied is said once per runtime, not once per task.
  void WarnOnce(const std::string& task_id, const std::string& warning) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!warned.insert(warning).second) return;
    }
    options.warn(warning + " (first seen for task " + task_id + "; said once)");
  }
};

LocalRuntime::LocalRuntime(LocalRuntimeOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.shim_binary.empty()) options.shim_binary = OwnExecutable();
  if (!options.probe) options.probe = std::make_shared<BindProbe>();
  if (!options.warn)
    options.warn = [](const std::string& w) { fprintf(stderr, "adhoc: warning: %s\n", w.c_str()); };
  impl_->cgroups = options.cgroups;
  impl_->options = std::move(options);
}

LocalRuntime::~LocalRuntime() = default;

Result<TaskHandle> LocalRuntime::Start(const TaskSpec& spec) {
  const std::string what = "starting task " + spec.id;
  if (spec.id.empty() || spec.task_folder.empty() || spec.command.empty() || spec.log_path.empty())
    return BadInput(what + ": a task needs an id, a folder, a log and a command");
  std::error_code ec;
  fs::create_directories(spec.task_folder, ec);
  if (ec) return Failed(what + ": creating " + spec.task_folder.string() + ": " + ec.message());
  // Its records hold the task's environment; tasks run as the runtime's own user.
  fs::permissions(spec.task_folder, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) return Failed(what + ": chmod 0700 " + spec.task_folder.string() + ": " + ec.message());
  if (auto old = ReadShimRecord(spec.task_folder);
      old.ok() && !ReadExitRecord(spec.task_folder) && (IsAlive(old->task) || IsAlive(old->shim)))
    return Conflict(what + ": a task still runs in " + spec.task_folder.string());
  for (const char* f : {kLaunchFile, kShimFile, kExitFile}) fs::remove(spec.task_folder / f, ec);

  fs::path cwd = spec.working_folder.empty() ? spec.task_folder : spec.working_folder;
  if (!fs::is_directory(cwd, ec)) return NotFound(what + ": no working folder " + cwd.string());
  auto path = spec.env.find("PATH");
  ADHOC_RETURN_IF_ERROR(
      CheckCommandExists(spec.command, path == spec.env.end() ? "" : path->second, cwd));
  if (spec.port > 0) {
    std::string address = spec.address.empty() ? "127.0.0.1" : spec.address;
    ADHOC_RETURN_IF_ERROR(impl_->options.probe->CheckFree(address, spec.port));
  }

  LaunchRecord record;
  record.spec = spec;
  if (!spec.limits_group.empty() || spec.cpu > 0 || spec.memory_mib > 0) {
    if (record.spec.limits_group.empty()) {
      std::error_code abs_ec;
      record.spec.limits_group =
          "adhoc-" +
          Sha256Hex(fs::absolute(spec.task_folder, abs_ec).parent_path().string()).substr(0, 8);
    }
    auto groups = CreateTaskCgroups(impl_->Cgroups(), record.spec.limits_group, spec.id, spec.cpu,
                                    spec.memory_mib);
    if (!groups.ok()) return std::move(groups).error().context(what);
    for (const auto& w : groups->warnings) impl_->WarnOnce(spec.id, w);
    record.cgroups = groups->groups;
  }
  Status written = WriteLaunchRecord(record);
  if (written.ok()) written = SpawnDetachedShim(impl_->options.shim_binary, spec.task_folder);
  if (!written.ok()) {
    RemoveTaskCgroups(record.cgroups, record.spec.limits_group);
    return Error(written.error()).context(what);
  }

  auto deadline = SteadyClock::now() + impl_->options.start_timeout;
  while (SteadyClock::now() < deadline) {
    if (fs::exists(spec.task_folder / kShimFile)) return ReadShimRecord(spec.task_folder);
    if (ReadExitRecord(spec.task_folder))
      return Failed(what + ": the shim could not start it: " + ShimLogTail(spec.task_folder));
    std::this_thread::sleep_for(5ms);
  }
  return Failed(what + ": the shim did not report within " +
                std::to_string(impl_->options.start_timeout.count()) +
                " ms: " + ShimLogTail(spec.task_folder));
}

TaskState LocalRuntime::Inspect(const TaskHandle& handle) {
  TaskState state;
  if (auto exit = ReadExitRecord(handle.task_folder)) {
    state.kind = TaskState::kExited;
    state.exit = *exit;
    return state;
  }
  // A task whose shim is gone is half dead: its output goes nowhere and its end would never
  // be recorded. It is ended here (its whole group), and recorded as killed, so whoever
  // supervises it starts a whole one.
  if (IsAlive(handle.task) && !IsAlive(handle.shim) && handle.task.pid != getpid() &&
      getpgid(handle.task.pid) == handle.task.pid) {
    kill(-handle.task.pid, SIGKILL);
    for (int i = 0; i < 100 && IsAlive(handle.task); ++i) std::this_thread::sleep_for(10ms);
    if (!ReadExitRecord(handle.task_folder))
      (void)WriteExitRecord(handle.task_folder, {-1, SIGKILL});
    state.kind = TaskState::kExited;
    state.exit = ReadExitRecord(handle.task_folder).value_or(ExitStatus{-1, SIGKILL});
    return state;
  }
  // The shim outlives its task by a moment, to record the end: it counts as running.
  if (IsAlive(handle.task) || IsAlive(handle.shim)) {
    state.kind = TaskState::kRunning;
    return state;
  }
  if (auto exit = ReadExitRecord(handle.task_folder)) {  // written just now
    state.kind = TaskState::kExited;
    state.exit = *exit;
    return state;
  }
  state.kind = TaskState::kVanished;
  // Its shim was killed before it could remove the task's groups: no one else will.
  if (auto launch = ReadLaunchRecord(handle.task_folder); launch.ok())
    RemoveTaskCgroups(launch->cgroups, launch->spec.limits_group);
  return state;
}

TaskState LocalRuntime::Wait(const TaskHandle& handle, std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  auto pause = 2ms;
  while (true) {
    TaskState s = Inspect(handle);
    if (s.kind != TaskState::kRunning || SteadyClock::now() >= deadline) return s;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::milliseconds>(pause * 2, 50ms);
  }
}

Status LocalRuntime::Stop(const TaskHandle& handle) {
  if (Inspect(handle).kind != TaskState::kRunning) return OkStatus();
  int stop_signal = SIGTERM;
  std::chrono::milliseconds stop_timeout = 30s;
  if (auto launch = ReadLaunchRecord(handle.task_folder); launch.ok()) {
    stop_signal = launch->spec.stop_signal;
    stop_timeout = launch->spec.stop_timeout;
  }
  if (IsAlive(handle.task)) kill(handle.task.pid, stop_signal);
  auto deadline = SteadyClock::now() + stop_timeout;
  while (IsAlive(handle.task) && SteadyClock::now() < deadline) std::this_thread::sleep_for(10ms);
  if (IsAlive(handle.task)) kill(-handle.task.pid, SIGKILL);
  // The shim now reaps it, kills any rest of the group and records the end.
  TaskState s = Wait(handle, 30s);
  if (s.kind == TaskState::kRunning)
    return Failed("stopping task " + handle.id + ": still running after SIGKILL");
  return OkStatus();
}

Result<TaskHandle> LocalRuntime::Adopt(const fs::path& task_folder) {
  auto handle = ReadShimRecord(task_folder);
  if (!handle.ok())
    return NotFound("no task was started in " + task_folder.string() + ": " +
                    handle.error().message());
  return handle;
}

Result<ExitStatus> LocalRuntime::RunToCompletion(
    const TaskSpec& spec, std::chrono::milliseconds timeout,
    const std::function<void(const std::string&)>& on_line) {
  LogFollower follower(spec.log_path, /*from_end=*/true);
  ADHOC_ASSIGN_OR_RETURN(TaskHandle handle, Start(spec));
  auto deadline = SteadyClock::now() + timeout;
  auto deliver = [&] {
    for (const auto& l : follower.Poll())
      if (on_line) on_line(l.text);
  };
  while (true) {
    deliver();
    TaskState s = Inspect(handle);
    if (s.kind == TaskState::kExited) {
      deliver();  // the shim writes the exit record after the last line
      return s.exit;
    }
    if (s.kind == TaskState::kVanished)
      return Failed("task " + spec.id + " vanished without an exit status");
    if (SteadyClock::now() >= deadline) {
      Status stopped = Stop(handle);
      deliver();
      return Failed("task " + spec.id + " timed out after " + std::to_string(timeout.count()) +
                    " ms" + (stopped.ok() ? " and was stopped" : ": " + stopped.error().message()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace adhoc::runtime
