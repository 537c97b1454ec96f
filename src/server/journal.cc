#include "server/operation.h"

namespace adhoc::server {

Result<JournaledOperation> JournaledOperation::Begin(state::Store& store, Progress& progress,
                                                     const std::string& env,
                                                     const std::string& kind,
                                                     const std::string& input_json) {
  ADHOC_ASSIGN_OR_RETURN(state::Operation op, store.BeginOperation(env, kind, input_json, {}));
  return JournaledOperation(store, progress, op.id);
}

Result<std::string> JournaledOperation::Step(const std::string& name,
                                             const std::function<Result<std::string>()>& fn) {
  // A name used twice in one operation (e.g. a service rolled twice) gets a suffix.
  std::string step = name;
  for (int i = 2; !store_->AddStep(id_, step).ok(); ++i) step = name + " #" + std::to_string(i);
  (void)store_->StartStep(id_, step);
  progress_->StepStarted(step);
  auto start = std::chrono::steady_clock::now();
  Result<std::string> result = fn();
  long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  if (!result.ok()) {
    failed_step_ = step;
    (void)store_->FailStep(id_, step, result.error().message());
    progress_->StepFailed(step, ms, result.error().message());
    return std::move(result).context(step);
  }
  (void)store_->CompleteStep(id_, step, "");
  progress_->StepDone(step, ms, *result);
  return result;
}

Status JournaledOperation::Finish(state::OperationStatus status, const std::string& error) {
  return store_->FinishOperation(id_, status, error);
}

}  // namespace adhoc::server
