// One journaled operation (DESIGN: "take the environment's lock; write the operation to the
// journal"; "every step is timed; up shows progress as it goes"). Begin() takes the
// environment's single running-operation slot in the store (a second operation on the same
// environment is a Conflict naming the first); each Step() is recorded as running, then done
// or failed, and reported to the Progress with its time. Finish() closes the entry; an
// operation that is never finished (the control plane died) is found by recovery.
// Not thread-safe: one operation thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/result.h"
#include "server/progress.h"
#include "state/store.h"

namespace adhoc::server {

class JournaledOperation {
 public:
  static Result<JournaledOperation> Begin(state::Store& store, Progress& progress,
                                          const std::string& env, const std::string& kind,
                                          const std::string& input_json);

  // Runs `fn` as the step `name`; its returned text is the step's detail ("cached", "healthy").
  // A failure is recorded and returned with the step's name as context.
  Result<std::string> Step(const std::string& name, const std::function<Result<std::string>()>& fn);

  Status Finish(state::OperationStatus status, const std::string& error = "");
  int64_t id() const { return id_; }
  // The name of the step that failed last (for the API's error "step").
  const std::string& failed_step() const { return failed_step_; }

 private:
  JournaledOperation(state::Store& store, Progress& progress, int64_t id)
      : store_(&store), progress_(&progress), id_(id) {}

  state::Store* store_;
  Progress* progress_;
  int64_t id_;
  std::string failed_step_;
};

}  // namespace adhoc::server
