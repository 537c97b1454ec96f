// The restart policy (DESIGN: "supervised processes ... restart on exit"): a supervised
// task that exits, is killed (even with -9) or vanishes is replaced after an exponential
// back-off; after `max_quick_failures` quick failures in a row (each within `reset_after`
// of its start, or a start that failed) the slot is marked failed, with its last log lines.
// A task that ran `reset_after` resets the back-off.
//
// The control plane drives it: Tick() from its loop returns what happened. Not
// thread-safe: one owner (the loop) calls every method. The Runtime and Clock must
// outlive it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/clock.h"
#include "runtime/runtime.h"

namespace adhoc::runtime {

struct RestartPolicy {
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  std::chrono::milliseconds reset_after{std::chrono::seconds(60)};
  int max_quick_failures = 5;
  size_t last_lines = 20;  // log lines kept with a failure
};

struct SupervisorEvent {
  enum class Kind { kStarted, kExited, kFailed } kind;
  std::string slot;
  TaskHandle handle;                    // kStarted, kExited
  ExitStatus exit;                      // kExited (code -1 and signal 0: vanished)
  std::string message;                  // what happened, for the event log
  std::vector<std::string> last_lines;  // kFailed: the last task's last log lines
};

class Supervisor {
 public:
  // Makes the spec of each new task of a slot (a fresh id, folder and log each time).
  using SpecMaker = std::function<TaskSpec()>;

  Supervisor(Runtime& runtime, const Clock& clock, RestartPolicy policy = {});

  // Supervises `slot` (e.g. "gunicorn/0"). With `running`, an existing task (adopted after a
  // restart of the control plane) is watched; without, one is started at the next Tick().
  void Add(const std::string& slot, SpecMaker make_spec,
           std::optional<TaskHandle> running = std::nullopt);
  // Stops supervising; the task is left running (the caller may Stop it).
  void Remove(const std::string& slot);

  // Watches every slot, restarts what is due. Returns the events, in order.
  std::vector<SupervisorEvent> Tick();

  std::optional<TaskHandle> Current(const std::string& slot) const;
  bool IsFailed(const std::string& slot) const;
  int Restarts(const std::string& slot) const;

 private:
  struct Slot {
    SpecMaker make_spec;
    std::optional<TaskHandle> handle;
    std::filesystem::path log_path;  // of the current or last task
    Clock::TimePoint started_at;
    Clock::TimePoint restart_at;
    int quick_failures = 0;
    int restarts = 0;      // starts after the first
    bool has_run = false;  // a task was started (or adopted) in this slot
    bool failed = false;
  };

  void OnFailure(const std::string& name, Slot& slot, bool quick, const std::string& what,
                 std::vector<SupervisorEvent>* events);

  Runtime& runtime_;
  const Clock& clock_;
  RestartPolicy policy_;
  std::map<std::string, Slot> slots_;
};

}  // namespace adhoc::runtime
