#include "server/journal.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace adhoc::server {

Result<JournaledOperation> JournaledOperation::Begin(state::Store& store, Progress& progress,
                                                     const std::string& env,
                                                     const std::string& kind,
                                                     const std::string& input_json) {
  ADHOC_ASSIGN_OR_RETURN(state::Operation op, store.BeginOperation(env, kind, input_json, {}));
  progress.OperationStarted(op.id, env, kind);
  return JournaledOperation(store, progress, op.id, kind);
}

void JournaledOperation::MaybeStopHere(int step_number) {
  const char* fault = std::getenv("ADHOC_FAULT_STOP_AFTER");
  if (fault == nullptr || *fault == '\0') return;
  std::string want = fault;
  if (want != kind_ + ":" + std::to_string(step_number)) return;
  std::filesystem::path marker = store_->path().parent_path() / "fault-fired";
  std::error_code ec;
  if (std::filesystem::exists(marker, ec)) return;
  std::ofstream(marker) << want << "\n";
  kill(getpid(), SIGKILL);
}

Result<std::string> JournaledOperation::Step(const std::string& name, const nlohmann::json& undo,
                                             const std::function<Result<std::string>()>& fn) {
  std::string step = name;
  int number = 0;
  {
    std::lock_guard lock(*mu_);
    for (int i = 2; !store_->AddStep(id_, step).ok(); ++i) step = name + " #" + std::to_string(i);
    ADHOC_RETURN_IF_ERROR(store_->StartStep(id_, step));
    ADHOC_RETURN_IF_ERROR(store_->RecordStepUndo(id_, step, undo.dump()));
    running_[std::this_thread::get_id()] = step;
    number = ++steps_;
    progress_->StepStarted(step);
  }
  auto start = std::chrono::steady_clock::now();
  Result<std::string> result = fn();
  long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  MaybeStopHere(number);
  std::lock_guard lock(*mu_);
  running_.erase(std::this_thread::get_id());
  if (!result.ok()) {
    failed_step_ = step;
    (void)store_->FailStep(id_, step, result.error().message());
    progress_->StepFailed(step, ms, result.error().message());
    return std::move(result).context(step);
  }
  // The undo stays with the done step: recovery of a later step may still need it.
  auto recorded = store_->GetOperation(id_);
  std::string undo_json = undo.dump();
  if (recorded.ok())
    for (const auto& s : recorded->steps)
      if (s.name == step) undo_json = s.undo_json;
  (void)store_->CompleteStep(id_, step, undo_json);
  progress_->StepDone(step, ms, *result);
  return result;
}

void JournaledOperation::RecordUndo(const nlohmann::json& undo) {
  std::lock_guard lock(*mu_);
  auto running = running_.find(std::this_thread::get_id());
  if (running != running_.end()) (void)store_->RecordStepUndo(id_, running->second, undo.dump());
}

Status JournaledOperation::Finish(state::OperationStatus status, const std::string& error) {
  return store_->FinishOperation(id_, status, error);
}

}  // namespace adhoc::server
