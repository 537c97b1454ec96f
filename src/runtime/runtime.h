// The runtime: starts tasks through shims and finds, watches, stops and waits for them.
//
// `Runtime` is the narrow interface the control plane (and resources) use; LocalRuntime
// is the real one, FakeRuntime (fake_runtime.h) the one for other modules' logic tests.
// Tasks are known by pid AND start time (TaskHandle), never by pid alone, and everything
// about a task can be found again from its folder (Adopt), so the caller may be
// restarted, or killed with -9, while its tasks run on.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "runtime/addresses.h"
#include "runtime/cgroups.h"
#include "runtime/task.h"

namespace adhoc::runtime {

class Runtime {
 public:
  virtual ~Runtime() = default;

  // Checks the command exists (first word, in the env's PATH or the working folder, unless
  // a shell builtin or keyword: NotFound "command not found: gunicornx") and the address:port
  // is free (Conflict "127.3.4.10:8000 is already in use"), sets up the task's limits, writes
  // its launch record and starts its shim, detached; returns once the task runs.
  virtual Result<TaskHandle> Start(const TaskSpec& spec) = 0;

  // The stop signal to the main process only (its children may finish their job), up to
  // the stop timeout, then SIGKILL to the whole process group; returns when the task is
  // gone. The shim records the exit. Stopping an ended task is a success.
  virtual Status Stop(const TaskHandle& handle) = 0;

  // Running / exited (code or signal) / vanished (neither alive nor an exit record). A
  // vanished task's cgroups (left behind by its killed shim) are removed.
  virtual TaskState Inspect(const TaskHandle& handle) = 0;

  // Inspect() until the task is no longer running, or `timeout` passed (then kRunning).
  virtual TaskState Wait(const TaskHandle& handle, std::chrono::milliseconds timeout) = 0;

  // The handle of the task that was started in `task_folder`, live or ended.
  virtual Result<TaskHandle> Adopt(const std::filesystem::path& task_folder) = 0;

  // A one-off task, through a shim like any other (so it is logged the same way). Its output
  // lines (without timestamps) go to `on_line` as they are written, from the calling thread.
  // Returns how it ended; after `timeout` it is stopped and that is an error.
  virtual Result<ExitStatus> RunToCompletion(
      const TaskSpec& spec, std::chrono::milliseconds timeout,
      const std::function<void(const std::string& line)>& on_line) = 0;
};

struct LocalRuntimeOptions {
  // The `adhoc` binary to run as `<binary> __shim <task-folder>`; empty: this process's
  // own executable (/proc/self/exe), which is right inside `adhoc` itself.
  std::filesystem::path shim_binary;
  // nullptr: a BindProbe.
  std::shared_ptr<AddressProbe> probe;
  // What the machine allows; nullopt: DetectCgroups() when first needed.
  std::optional<CgroupSupport> cgroups;
  // One-line warnings (limits not applied); default: to stderr.
  std::function<void(const std::string&)> warn;
  // How long Start() waits for the shim to report the task running.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(10)};
};

// Thread-safe: calls on different tasks may run at once; the only shared state is the
// cgroup support, detected once under a lock.
class LocalRuntime : public Runtime {
 public:
  explicit LocalRuntime(LocalRuntimeOptions options = {});
  ~LocalRuntime() override;

  Result<TaskHandle> Start(const TaskSpec& spec) override;
  Status Stop(const TaskHandle& handle) override;
  TaskState Inspect(const TaskHandle& handle) override;
  TaskState Wait(const TaskHandle& handle, std::chrono::milliseconds timeout) override;
  Result<TaskHandle> Adopt(const std::filesystem::path& task_folder) override;
  Result<ExitStatus> RunToCompletion(
      const TaskSpec& spec, std::chrono::milliseconds timeout,
      const std::function<void(const std::string& line)>& on_line) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The first word `command` runs, when it can be told without a shell: skips leading
// VAR=value assignments and `exec`; empty for builtins, keywords and anything with
// quotes, expansions or redirections up front (those are left to the shell).
std::string CommandWord(const std::string& command);

// `command` as the shell should run it so that its program IS the task's main process:
// "exec " is put in front of a single simple command (no unquoted ; & | newline, no
// leading assignment, keyword or exec), because Debian's /bin/sh (dash) forks a lone
// command instead of replacing itself, and the stop signal would reach the shell only.
// Anything else is returned unchanged.
std::string ExecForm(const std::string& command);

// NotFound "command not found: X" unless CommandWord(command) is empty, or found: with a
// '/' relative to `working_folder`, else in `path` (a PATH value).
Status CheckCommandExists(const std::string& command, const std::string& path,
                          const std::filesystem::path& working_folder);

}  // namespace adhoc::runtime
