// A Runtime for other modules' logic tests: nothing is spawned; tests decide when tasks
// end (Exit), make starts fail (FailNextStart) and script one-off runs (SetRunResult).
// Thread-safe (one mutex), so a control plane under test may call it from any thread.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "runtime/runtime.h"

namespace adhoc::runtime {

class FakeRuntime : public Runtime {
 public:
  Result<TaskHandle> Start(const TaskSpec& spec) override;
  // Ends the task with its stop signal.
  Status Stop(const TaskHandle& handle) override;
  TaskState Inspect(const TaskHandle& handle) override;
  // Never blocks: the current state.
  TaskState Wait(const TaskHandle& handle, std::chrono::milliseconds timeout) override;
  Result<TaskHandle> Adopt(const std::filesystem::path& task_folder) override;
  // Delivers the scripted lines, then returns the scripted status (default: exit 0).
  Result<ExitStatus> RunToCompletion(
      const TaskSpec& spec, std::chrono::milliseconds timeout,
      const std::function<void(const std::string& line)>& on_line) override;

  // --- controls for tests ---
  // The task with this id ends now with `status` (SIGKILL: a kill -9).
  void Exit(const std::string& id, ExitStatus status);
  // The task is gone without an exit record (a machine reboot).
  void Vanish(const std::string& id);
  // The next Start() fails with `error`.
  void FailNextStart(Error error);
  void SetRunResult(std::vector<std::string> lines, ExitStatus status);
  // Like SetRunResult, for one-off tasks whose id starts with `id_prefix` only.
  void SetRunResultFor(const std::string& id_prefix, std::vector<std::string> lines,
                       ExitStatus status);
  // Every spec started so far, in order.
  std::vector<TaskSpec> started() const;
  // Ids of tasks currently running.
  std::vector<std::string> running() const;

 private:
  struct Task {
    TaskSpec spec;
    TaskHandle handle;
    TaskState state;
  };
  mutable std::mutex mu_;
  std::map<std::string, Task> tasks_;
  std::vector<TaskSpec> started_;
  std::deque<Error> start_errors_;
  std::vector<std::string> run_lines_;
  ExitStatus run_status_{0, 0};
  std::map<std::string, std::pair<std::vector<std::string>, ExitStatus>> run_results_for_;
  pid_t next_pid_ = 1000;
};

}  // namespace adhoc::runtime
