// One journaled operation (DESIGN: "take the environment's lock; write the operation to the
// journal"; "the journal records what undoes a step before the step acts"). Begin() takes the
// environment's single running-operation entry in the store; each Step() records its undo,
// then runs, then is recorded done or failed and reported to the Progress with its time.
// Finish() closes the entry. An operation never finished (the control plane died) is found
// by recovery, which reads each step's status and undo from the store.
//
// Undo records are JSON objects {"undo": ACTION, ...} (executor.h lists the actions).
//
// Fault injection for tests: with ADHOC_FAULT_STOP_AFTER="KIND:N" in the environment, the
// process kills itself (SIGKILL) right after the N-th step (from 1) of an operation of KIND
// has acted and before it is recorded done; once per home (a marker file remembers it).
// Thread-safe: independent steps of one operation may run at once (Step() from several
// threads); each thread's running step is its own for RecordUndo().
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/result.h"
#include "server/progress.h"
#include "state/store.h"

namespace adhoc::server {

class JournaledOperation {
 public:
  static Result<JournaledOperation> Begin(state::Store& store, Progress& progress,
                                          const std::string& env, const std::string& kind,
                                          const std::string& input_json);

  // Runs `fn` as the step `name` once `undo` is recorded; its returned text is the step's
  // detail ("cached", "healthy"). A failure is recorded and returned with the step's name as
  // context. A name used twice in one operation gets a suffix.
  Result<std::string> Step(const std::string& name, const nlohmann::json& undo,
                           const std::function<Result<std::string>()>& fn);
  // Replaces the undo record of the step this thread runs (what it learned while acting).
  void RecordUndo(const nlohmann::json& undo);

  Status Finish(state::OperationStatus status, const std::string& error = "");
  int64_t id() const { return id_; }
  const std::string& kind() const { return kind_; }
  // The name of the step that failed last (for the API's error "step").
  std::string failed_step() const {
    std::lock_guard lock(*mu_);
    return failed_step_;
  }

 private:
  JournaledOperation(state::Store& store, Progress& progress, int64_t id, std::string kind)
      : store_(&store),
        progress_(&progress),
        id_(id),
        kind_(std::move(kind)),
        mu_(std::make_unique<std::mutex>()) {}
  void MaybeStopHere(int step_number);

  state::Store* store_;
  Progress* progress_;  // called under mu_: events of steps at once come one at a time
  int64_t id_;
  std::string kind_;
  std::unique_ptr<std::mutex> mu_;  // a pointer: the operation is returned by value
  int steps_ = 0;
  std::map<std::thread::id, std::string> running_;  // thread -> the step it runs
  std::string failed_step_;
};

}  // namespace adhoc::server
