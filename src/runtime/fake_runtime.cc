#include "runtime/fake_runtime.h"

namespace adhoc::runtime {

Result<TaskHandle> FakeRuntime::Start(const TaskSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!start_errors_.empty()) {
    Error e = start_errors_.front();
    start_errors_.pop_front();
    return e;
  }
  auto it = tasks_.find(spec.id);
  if (it != tasks_.end() && it->second.state.kind == TaskState::kRunning)
    return Conflict("starting task " + spec.id + ": a task still runs in " +
                    spec.task_folder.string());
  Task t;
  t.spec = spec;
  t.handle.id = spec.id;
  t.handle.task_folder = spec.task_folder;
  t.handle.task = {next_pid_, static_cast<uint64_t>(next_pid_) * 10};
  t.handle.shim = {next_pid_ + 1, static_cast<uint64_t>(next_pid_) * 10};
  next_pid_ += 2;
  t.state.kind = TaskState::kRunning;
  tasks_[spec.id] = t;
  started_.push_back(spec);
  return t.handle;
}

Status FakeRuntime::Stop(const TaskHandle& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(handle.id);
  if (it == tasks_.end()) return OkStatus();
  if (it->second.state.kind == TaskState::kRunning) {
    it->second.state.kind = TaskState::kExited;
    it->second.state.exit = ExitStatus{-1, it->second.spec.stop_signal};
  }
  return OkStatus();
}

TaskState FakeRuntime::Inspect(const TaskHandle& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(handle.id);
  if (it == tasks_.end() || !(it->second.handle.task == handle.task)) return TaskState{};
  return it->second.state;
}

TaskState FakeRuntime::Wait(const TaskHandle& handle, std::chrono::milliseconds) {
  return Inspect(handle);
}

Result<TaskHandle> FakeRuntime::Adopt(const std::filesystem::path& task_folder) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, t] : tasks_)
    if (t.spec.task_folder == task_folder) return t.handle;
  return NotFound("no task was started in " + task_folder.string());
}

Result<ExitStatus> FakeRuntime::RunToCompletion(
    const TaskSpec& spec, std::chrono::milliseconds,
    const std::function<void(const std::string&)>& on_line) {
  std::vector<std::string> lines;
  ExitStatus status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!start_errors_.empty()) {
      Error e = start_errors_.front();
      start_errors_.pop_front();
      return e;
    }
    started_.push_back(spec);
    lines = run_lines_;
    status = run_status_;
    for (const auto& [prefix, result] : run_results_for_)
      if (spec.id.rfind(prefix, 0) == 0) {
        lines = result.first;
        status = result.second;
      }
  }
  for (const auto& l : lines)
    if (on_line) on_line(l);
  return status;
}

void FakeRuntime::Exit(const std::string& id, ExitStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  it->second.state.kind = TaskState::kExited;
  it->second.state.exit = status;
}

void FakeRuntime::Vanish(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(id);
  if (it != tasks_.end()) it->second.state = TaskState{};
}

void FakeRuntime::FailNextStart(Error error) {
  std::lock_guard<std::mutex> lock(mu_);
  start_errors_.push_back(std::move(error));
}

void FakeRuntime::SetRunResult(std::vector<std::string> lines, ExitStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  run_lines_ = std::move(lines);
  run_status_ = status;
}

void FakeRuntime::SetRunResultFor(const std::string& id_prefix, std::vector<std::string> lines,
                                  ExitStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  run_results_for_[id_prefix] = {std::move(lines), status};
}

std::vector<TaskSpec> FakeRuntime::started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

std::vector<std::string> FakeRuntime::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, t] : tasks_)
    if (t.state.kind == TaskState::kRunning) ids.push_back(id);
  return ids;
}

}  // namespace adhoc::runtime
