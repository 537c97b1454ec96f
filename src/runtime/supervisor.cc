#include "runtime/supervisor.h"

#include "runtime/logs.h"

namespace adhoc::runtime {

Supervisor::Supervisor(Runtime& runtime, const Clock& clock, RestartPolicy policy)
    : runtime_(runtime), clock_(clock), policy_(policy) {}

void Supervisor::Add(const std::string& name, SpecMaker make_spec,
                     std::optional<TaskHandle> running) {
  Slot slot;
  slot.make_spec = std::move(make_spec);
  slot.handle = std::move(running);
  slot.started_at = clock_.Now();
  slot.restart_at = clock_.Now();
  slot.has_run = slot.handle.has_value();
  if (slot.handle) {
    if (auto launch = ReadLaunchRecord(slot.handle->task_folder); launch.ok())
      slot.log_path = launch->spec.log_path;
  }
  slots_[name] = std::move(slot);
}

void Supervisor::Remove(const std::string& name) { slots_.erase(name); }

void Supervisor::OnFailure(const std::string& name, Slot& slot, bool quick, const std::string& what,
                           std::vector<SupervisorEvent>* events) {
  slot.quick_failures = quick ? slot.quick_failures + 1 : 1;
  if (slot.quick_failures >= policy_.max_quick_failures) {
    slot.failed = true;
    SupervisorEvent e{SupervisorEvent::Kind::kFailed, name};
    e.message =
        name + " failed " + std::to_string(slot.quick_failures) + " times in a row; last: " + what;
    if (!slot.log_path.empty()) {
      auto lines = ReadLastLines(slot.log_path, policy_.last_lines);
      if (lines.ok())
        for (const auto& l : *lines) e.last_lines.push_back(l.text);
    }
    events->push_back(std::move(e));
    return;
  }
  auto backoff = policy_.initial_backoff;
  for (int i = 1; i < slot.quick_failures && backoff < policy_.max_backoff; ++i) backoff *= 2;
  slot.restart_at = clock_.Now() + std::min(backoff, policy_.max_backoff);
}

std::vector<SupervisorEvent> Supervisor::Tick() {
  std::vector<SupervisorEvent> events;
  for (auto& [name, slot] : slots_) {
    if (slot.failed) continue;
    auto now = clock_.Now();
    if (slot.handle) {
      TaskState state = runtime_.Inspect(*slot.handle);
      bool ran_long = now - slot.started_at >= policy_.reset_after;
      if (state.kind == TaskState::kRunning) {
        if (ran_long) slot.quick_failures = 0;
        continue;
      }
      SupervisorEvent e{SupervisorEvent::Kind::kExited, name, *slot.handle};
      if (state.kind == TaskState::kExited) {
        e.exit = state.exit;
        e.message = slot.handle->id + " " + state.exit.ToString();
      } else {
        e.message = slot.handle->id + " vanished";
      }
      std::string what = e.message;
      events.push_back(std::move(e));
      slot.handle.reset();
      OnFailure(name, slot, !ran_long, what, &events);
      continue;
    }
    if (now < slot.restart_at) continue;
    TaskSpec spec = slot.make_spec();
    slot.log_path = spec.log_path;
    auto handle = runtime_.Start(spec);
    if (!handle.ok()) {
      OnFailure(name, slot, true, handle.error().message(), &events);
      continue;
    }
    slot.handle = *handle;
    slot.started_at = now;
    if (slot.has_run) ++slot.restarts;
    slot.has_run = true;
    SupervisorEvent e{SupervisorEvent::Kind::kStarted, name, *handle};
    e.message = "started " + handle->id;
    events.push_back(std::move(e));
  }
  return events;
}

std::optional<TaskHandle> Supervisor::Current(const std::string& name) const {
  auto it = slots_.find(name);
  if (it == slots_.end()) return std::nullopt;
  return it->second.handle;
}

bool Supervisor::IsFailed(const std::string& name) const {
  auto it = slots_.find(name);
  return it != slots_.end() && it->second.failed;
}

int Supervisor::Restarts(const std::string& name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? 0 : it->second.restarts;
}

}  // namespace adhoc::runtime
