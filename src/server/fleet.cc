#include "server/fleet.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>

#include "common/exec.h"
#include "common/paths.h"
#include "runtime/addresses.h"
#include "runtime/logs.h"
#include "server/access_rules.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

struct Fleet::Slot {
  std::string name;  // stable across restarts: "gunicorn#3"
  std::string service;
  std::string address;
  std::string task_id;
  std::string generation;
  runtime::TaskHandle handle;
  std::shared_ptr<const LaunchContext> context;
  std::shared_ptr<runtime::Prober> prober;         // nullptr: healthy while it runs
  std::unique_ptr<runtime::HealthTracker> health;  // with prober
  bool healthy = false;
  bool failed = false;
  bool draining = false;  // out of the rotation, finishing its requests
  bool restarting = false;
  std::optional<runtime::Clock::TimePoint> unhealthy_since;
};

struct Fleet::LiveEnv {
  std::shared_ptr<const LaunchContext> context;
  std::vector<std::unique_ptr<Slot>> slots;
  std::set<std::string> reserved;  // addresses handed out to tasks not yet in `slots`
  // Addresses of tasks stopped lately: not handed out again for a while, so a new task never
  // inherits an old one's pooled connections or late requests in the router.
  std::map<std::string, runtime::Clock::TimePoint> cooling;
};

namespace {

std::string Seconds(std::chrono::steady_clock::duration d) {
  return fmt::format("{:.1f}s", std::chrono::duration<double>(d).count());
}

std::string TailOf(const fs::path& log, size_t n) {
  auto lines = runtime::ReadLastLines(log, n);
  std::string out;
  if (!lines.ok()) return out;
  for (const auto& l : *lines) out += "\n    " + l.text;
  return out;
}

}  // namespace

Fleet::Fleet(runtime::Runtime& runtime, const runtime::Clock& clock, state::Store& store,
             RouteSink& routes, TaskFactory& factory, FleetOptions options)
    : runtime_(runtime),
      clock_(clock),
      store_(store),
      routes_(routes),
      factory_(factory),
      options_(std::move(options)),
      supervisor_(std::make_unique<runtime::Supervisor>(runtime, clock, options_.restart_policy)) {}

Fleet::~Fleet() {
  std::lock_guard lock(stoppers_mu_);
  for (auto& t : stoppers_)
    if (t.joinable()) t.join();
}

std::shared_ptr<const LaunchContext> Fleet::Context(const std::string& env) const {
  std::lock_guard lock(mu_);
  auto it = envs_.find(env);
  return it == envs_.end() ? nullptr : it->second->context;
}

void Fleet::SetContext(const std::string& env, std::shared_ptr<const LaunchContext> context) {
  std::lock_guard lock(mu_);
  auto& live = envs_[env];
  if (!live) live = std::make_shared<LiveEnv>();
  live->context = std::move(context);
}

std::vector<std::string> Fleet::Envs() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, live] : envs_) out.push_back(name);
  return out;
}

Fleet::Slot* Fleet::FindSlot(LiveEnv& live, const std::string& name) {
  for (auto& s : live.slots)
    if (s->name == name) return s.get();
  return nullptr;
}

Result<std::string> Fleet::AllocateAddress(const std::string& env, LiveEnv& live) {
  ADHOC_ASSIGN_OR_RETURN(auto record, store_.GetEnvironment(env));
  ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(record.address_block));
  std::set<std::string> used = live.reserved;
  for (auto& s : live.slots) used.insert(s->address);
  const auto now = clock_.Now();
  std::erase_if(live.cooling,
                [&](const auto& c) { return now - c.second > std::chrono::minutes(1); });
  for (const auto& [address, since] : live.cooling) used.insert(address);
  ADHOC_ASSIGN_OR_RETURN(auto tasks, store_.ListTasks(env));
  for (auto& t : tasks)
    if (t.kind == "service" && t.status != state::TaskStatus::kStopped) used.insert(t.address);
  ADHOC_ASSIGN_OR_RETURN(std::string address, runtime::AllocateTaskAddress(block, used));
  live.reserved.insert(address);
  return address;
}

void Fleet::Supervise(const std::string& env, Slot& slot, bool running) {
  auto context = slot.context;
  std::string service = slot.service, address = slot.address, generation = slot.generation;
  supervisor_->Add(
      SupervisorKey(env, slot.name),
      [this, env, context, service, address, generation]() -> runtime::TaskSpec {
        const spec::Service* svc = context->project->FindService(service);
        auto id = store_.NextTaskId(env, service);
        std::string task_id = id.ok() ? *id : service + "-restart";
        Result<runtime::TaskSpec> spec =
            svc ? factory_.Make(*context, ServiceLaunch(*svc, task_id, address))
                : Result<runtime::TaskSpec>(NotFound("service " + service + " is gone"));
        if (!spec.ok()) {
          // The failure shows in the task's log and counts toward the crash loop.
          runtime::TaskSpec failing;
          failing.id = task_id;
          failing.task_folder = paths::TaskDir(options_.home, env, task_id);
          failing.log_path = paths::TaskLog(options_.home, env, service, task_id);
          failing.command = "echo " + ShellQuote(spec.error().message()) + " >&2; exit 1";
          failing.env = {{"PATH", "/usr/bin:/bin"}};
          return failing;
        }
        state::Task row;
        row.env = env;
        row.id = task_id;
        row.process = service;
        row.kind = "service";
        row.generation = generation;
        row.address = address;
        row.port = svc->port.value_or(0);
        row.release_path = spec->working_folder;
        row.started_at = store_.Now();
        if (Status put = store_.PutTask(row); !put.ok())
          spec->command =
              "echo " + ShellQuote("recording the task: " + put.error().message()) + " >&2; exit 1";
        return *spec;
      },
      running ? std::optional<runtime::TaskHandle>(slot.handle) : std::nullopt);
}

Status Fleet::StartAndGate(const std::string& env, Slot& slot, const spec::Service& service,
                           Progress& progress) {
  const LaunchContext& ctx = *slot.context;
  ADHOC_ASSIGN_OR_RETURN(std::string id, store_.NextTaskId(env, service.name));
  ADHOC_ASSIGN_OR_RETURN(runtime::TaskSpec spec,
                         factory_.Make(ctx, ServiceLaunch(service, id, slot.address)));
  ADHOC_ASSIGN_OR_RETURN(slot.prober, factory_.ProberFor(ctx, service, slot.address, spec));
  slot.health = slot.prober
                    ? std::make_unique<runtime::HealthTracker>(HealthSettingsFor(service), clock_)
                    : nullptr;
  state::Task row;
  row.env = env;
  row.id = id;
  row.process = service.name;
  row.kind = "service";
  row.generation = slot.generation;
  row.address = slot.address;
  row.port = service.port.value_or(0);
  row.release_path = spec.working_folder;
  row.started_at = store_.Now();
  // The row comes first: a task that runs always has one, even if we die right after.
  ADHOC_RETURN_IF_ERROR(store_.PutTask(row));
  auto handle = runtime_.Start(spec);
  if (!handle.ok()) {
    (void)store_.DeleteTask(env, id);
    return std::move(handle).context("starting " + service.name).error();
  }
  slot.task_id = id;
  slot.handle = *handle;
  row.pid = handle->task.pid;
  row.start_time = handle->task.start_time;
  row.shim_pid = handle->shim.pid;
  row.shim_start_time = handle->shim.start_time;
  ADHOC_RETURN_IF_ERROR(store_.PutTask(row));

  auto fail = [&](const std::string& why) -> Status {
    (void)runtime_.Stop(*handle);
    (void)store_.DeleteTask(env, id);
    return Failed(fmt::format("{} ({}) {}; its last lines:{}", service.name, id, why,
                              TailOf(spec.log_path, 15)));
  };
  if (!slot.prober) {
    // Healthy while it runs: give it a moment to fail on a bad start.
    auto state = runtime_.Wait(*handle, options_.settle);
    if (state.kind != runtime::TaskState::kRunning)
      return fail("exited with " + state.exit.ToString() + " while starting");
  } else {
    for (;;) {
      auto state = slot.health->Tick(*slot.prober);
      if (state == runtime::HealthTracker::State::kHealthy) break;
      if (state == runtime::HealthTracker::State::kStartFailed)
        return fail("did not become healthy in time (" + slot.health->last_detail() + ")");
      auto task_state = runtime_.Inspect(*handle);
      if (task_state.kind != runtime::TaskState::kRunning)
        return fail("exited with " + task_state.exit.ToString() + " while starting");
      clock_.SleepFor(options_.poll);
    }
  }
  slot.healthy = true;
  row.status = state::TaskStatus::kHealthy;
  (void)store_.PutTask(row);
  progress.Note(fmt::format("{} {} healthy on {}", service.name, id, slot.address));
  return OkStatus();
}

std::optional<Fleet::Target> Fleet::RoutedTarget(const Slot& slot) const {
  if (!slot.context) return std::nullopt;
  const spec::Service* svc = slot.context->project->FindService(slot.service);
  if (!svc || !svc->port) return std::nullopt;
  return Target{slot.address + ":" + std::to_string(*svc->port), svc->drain};
}

void Fleet::WaitForInFlight(const Target& target, runtime::Clock::TimePoint since) {
  const auto deadline = since + target.drain;
  while (clock_.Now() < deadline) {
    auto in_flight = routes_.InFlight(target.address);
    if (!in_flight.ok() || *in_flight <= 0) return;  // no router: nothing routes to it
    clock_.SleepFor(std::chrono::milliseconds(5));
  }
}

void Fleet::Retire(const std::string& env, std::unique_ptr<Slot> slot) {
  // Out of the rotation first (the router applies it before it answers), then wait for the
  // requests this target already has, then stop it.
  (void)PushRoutes(env);
  if (auto target = RoutedTarget(*slot)) WaitForInFlight(*target, clock_.Now());
  (void)runtime_.Stop(slot->handle);
  (void)store_.DeleteTask(env, slot->task_id);
  std::lock_guard lock(mu_);
  if (auto live = envs_.find(env); live != envs_.end())
    live->second->cooling[slot->address] = clock_.Now();
}

Result<std::string> Fleet::Converge(const std::string& env,
                                    std::shared_ptr<const LaunchContext> context,
                                    const std::string& service_name, Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  const spec::Service* service = context ? context->project->FindService(service_name) : nullptr;
  const int wanted = service ? service->count : 0;
  const std::string generation = context ? context->Generation(service_name) : "";
  std::shared_ptr<LiveEnv> live;
  std::vector<std::string> keep, replace;  // slot names
  {
    std::lock_guard lock(mu_);
    auto& entry = envs_[env];
    if (!entry) entry = std::make_shared<LiveEnv>();
    live = entry;
    if (context) live->context = context;
    for (auto& s : live->slots) {
      if (s->service != service_name) continue;
      if (service && s->generation == generation && !s->failed &&
          static_cast<int>(keep.size()) < wanted)
        keep.push_back(s->name);
      else
        replace.push_back(s->name);
    }
  }
  int to_start = wanted - static_cast<int>(keep.size());
  int started = 0, stopped = 0;

  auto take_old = [&]() -> std::unique_ptr<Slot> {
    std::lock_guard lock(mu_);
    std::string name = replace.front();
    replace.erase(replace.begin());
    for (auto it = live->slots.begin(); it != live->slots.end(); ++it) {
      if ((*it)->name != name) continue;
      supervisor_->Remove(SupervisorKey(env, name));
      (*it)->draining = true;
      (*it)->healthy = false;
      std::unique_ptr<Slot> out = std::move(*it);
      live->slots.erase(it);
      return out;
    }
    return nullptr;
  };
  auto retire_one = [&] {
    if (auto old = take_old()) {
      Retire(env, std::move(old));
      ++stopped;
    }
  };
  auto start_one = [&]() -> Status {
    auto slot = std::make_unique<Slot>();
    {
      std::lock_guard lock(mu_);
      ADHOC_ASSIGN_OR_RETURN(slot->address, AllocateAddress(env, *live));
      slot->name = fmt::format("{}#{}", service_name, ++next_slot_);
    }
    slot->service = service_name;
    slot->generation = generation;
    slot->context = context;
    Status gated = StartAndGate(env, *slot, *service, progress);
    std::lock_guard lock(mu_);
    live->reserved.erase(slot->address);
    if (!gated.ok()) {
      live->cooling[slot->address] = clock_.Now();
      return gated;
    }
    Supervise(env, *slot, true);
    live->slots.push_back(std::move(slot));
    ++started;
    return OkStatus();
  };

  while (to_start > 0 || !replace.empty()) {
    if (to_start > 0) {
      // A singleton never runs twice: its old task goes first.
      if (service->singleton && !replace.empty()) retire_one();
      if (Status s = start_one(); !s.ok()) return s.error();
      --to_start;
      (void)PushRoutes(env);  // the new task joins the rotation
    }
    if (!replace.empty()) retire_one();
  }
  (void)PushRoutes(env);
  if (!service) return fmt::format("{} stopped", stopped);
  std::string out =
      started == 0 && stopped == 0
          ? fmt::format("{} running", wanted == 1 ? "1 task" : fmt::format("{} tasks", wanted))
          : fmt::format("{} healthy in {}",
                        wanted == 1 ? "1 task" : fmt::format("{} tasks", wanted),
                        Seconds(std::chrono::steady_clock::now() - t0));
  if (stopped > 0) out += fmt::format(", {} old stopped", stopped);
  return out;
}

Result<std::string> Fleet::Restore(const std::string& env,
                                   std::shared_ptr<const LaunchContext> context) {
  ADHOC_ASSIGN_OR_RETURN(auto tasks, store_.ListTasks(env));
  std::shared_ptr<LiveEnv> live = std::make_shared<LiveEnv>();
  live->context = context;
  int adopted = 0, stopped = 0, scheduled = 0;
  std::set<std::string> owned;  // task ids a slot keeps
  std::map<std::string, int> have;
  for (const auto& t : tasks) {
    if (t.kind != "service") continue;
    const spec::Service* svc = context->project->FindService(t.process);
    auto handle = runtime_.Adopt(paths::TaskDir(options_.home, env, t.id));
    bool running = handle.ok() && runtime_.Inspect(*handle).kind == runtime::TaskState::kRunning;
    bool wanted = svc && t.generation == context->Generation(t.process) &&
                  t.status != state::TaskStatus::kStopped && have[t.process] < svc->count;
    if (!wanted) {
      // Another generation (an update interrupted mid-roll) or more than wanted: it goes.
      if (running) {
        (void)runtime_.Stop(*handle);
        ++stopped;
      }
      (void)store_.DeleteTask(env, t.id);
      continue;
    }
    ++have[t.process];
    auto slot = std::make_unique<Slot>();
    slot->name = fmt::format("{}#{}", t.process, ++next_slot_);
    slot->service = t.process;
    slot->address = t.address;
    slot->task_id = t.id;
    slot->generation = t.generation;
    slot->context = context;
    if (running) {
      slot->handle = *handle;
      ++adopted;
      owned.insert(t.id);
    }
    auto spec = factory_.Make(*context, ServiceLaunch(*svc, t.id, t.address));
    if (spec.ok()) {
      auto prober = factory_.ProberFor(*context, *svc, t.address, *spec);
      if (prober.ok()) slot->prober = *prober;
    }
    if (slot->prober)
      slot->health = std::make_unique<runtime::HealthTracker>(HealthSettingsFor(*svc), clock_);
    // It served before the restart; probes confirm it (or replace it).
    slot->healthy = running;
    live->slots.push_back(std::move(slot));
  }
  // A task folder whose task runs but that no kept row owns (started just before a crash).
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(paths::TasksDir(options_.home, env), ec)) {
    std::string id = entry.path().filename();
    if (owned.count(id)) continue;
    auto handle = runtime_.Adopt(entry.path());
    if (handle.ok() && runtime_.Inspect(*handle).kind == runtime::TaskState::kRunning) {
      (void)runtime_.Stop(*handle);
      ++stopped;
    }
  }
  {
    std::lock_guard lock(mu_);
    for (auto& slot : live->slots) Supervise(env, *slot, owned.count(slot->task_id) > 0);
    for (const auto& svc : context->project->services) {
      for (int i = have[svc.name]; i < svc.count; ++i) {
        auto slot = std::make_unique<Slot>();
        ADHOC_ASSIGN_OR_RETURN(slot->address, AllocateAddress(env, *live));
        live->reserved.erase(slot->address);
        slot->name = fmt::format("{}#{}", svc.name, ++next_slot_);
        slot->service = svc.name;
        slot->generation = context->Generation(svc.name);
        slot->context = context;
        Supervise(env, *slot, false);  // started by the supervisor's next tick
        live->slots.push_back(std::move(slot));
        ++scheduled;
      }
    }
    envs_[env] = live;
  }
  return fmt::format("{} adopted, {} stopped, {} to start", adopted, stopped, scheduled);
}

void Fleet::DrainAll(const std::string& env) {
  std::vector<Target> targets;
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env);
    if (it == envs_.end()) return;
    for (const auto& s : it->second->slots)
      if (!s->task_id.empty())
        if (auto target = RoutedTarget(*s)) targets.push_back(*target);
  }
  // One deadline per target, all from now: the waits overlap.
  const auto since = clock_.Now();
  for (const Target& t : targets) WaitForInFlight(t, since);
}

Status Fleet::StopAll(const std::string& env) {
  std::vector<std::unique_ptr<Slot>> slots;
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env);
    if (it != envs_.end()) {
      for (auto& s : it->second->slots) {
        supervisor_->Remove(SupervisorKey(env, s->name));
        slots.push_back(std::move(s));
      }
      envs_.erase(it);
    }
  }
  // In parallel: each may wait its stop timeout.
  std::vector<std::thread> stoppers;
  for (auto& s : slots)
    if (!s->task_id.empty())
      stoppers.emplace_back([this, h = s->handle] { (void)runtime_.Stop(h); });
  for (auto& t : stoppers) t.join();
  Status first;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(paths::TasksDir(options_.home, env), ec)) {
    auto handle = runtime_.Adopt(entry.path());
    if (handle.ok() && runtime_.Inspect(*handle).kind == runtime::TaskState::kRunning)
      if (Status s = runtime_.Stop(*handle); !s.ok() && first.ok()) first = s;
  }
  return first;
}

Status Fleet::StopTask(const std::string& env, const std::string& task_id) {
  if (task_id.empty() || task_id.find('/') != std::string::npos) return OkStatus();
  auto handle = runtime_.Adopt(paths::TaskDir(options_.home, env, task_id));
  if (!handle.ok() || runtime_.Inspect(*handle).kind != runtime::TaskState::kRunning)
    return OkStatus();
  return runtime_.Stop(*handle);
}

Result<int> Fleet::RunOnce(const std::string& env, const LaunchContext& context,
                           const LaunchRequest& request, std::chrono::milliseconds timeout,
                           Progress& progress, std::string* tail) {
  ADHOC_ASSIGN_OR_RETURN(runtime::TaskSpec spec, factory_.Make(context, request));
  state::Task row;
  row.env = env;
  row.id = request.task_id;
  row.process = request.process;
  row.kind = "task";
  row.address = request.address;
  row.release_path = spec.working_folder;
  row.started_at = store_.Now();
  ADHOC_RETURN_IF_ERROR(store_.PutTask(row));
  std::deque<std::string> last;
  auto exit = runtime_.RunToCompletion(spec, timeout, [&](const std::string& line) {
    progress.Log(request.process, request.task_id, line);
    last.push_back(line);
    if (last.size() > 15) last.pop_front();
  });
  if (tail)
    for (auto& l : last) *tail += "\n    " + l;
  row.ended_at = store_.Now();
  if (!exit.ok()) {
    row.status = state::TaskStatus::kFailed;
    (void)store_.PutTask(row);
    return std::move(exit).context(request.process).error();
  }
  row.status = state::TaskStatus::kExited;
  row.exit_code = exit->ShellCode();
  (void)store_.PutTask(row);
  return exit->ShellCode();
}

void Fleet::StopLater(const runtime::TaskHandle& handle) {
  // Off the loop thread: a stop may wait the task's stop timeout.
  std::lock_guard lock(stoppers_mu_);
  if (stoppers_.size() > 16) {
    for (auto& t : stoppers_)
      if (t.joinable()) t.join();
    stoppers_.clear();
  }
  stoppers_.emplace_back([this, handle] { (void)runtime_.Stop(handle); });
}

void Fleet::Tick() {
  std::set<std::string> changed;
  std::vector<runtime::TaskHandle> to_restart;
  {
    std::lock_guard lock(mu_);
    for (const runtime::SupervisorEvent& e : supervisor_->Tick()) {
      auto slash = e.slot.find('/');
      std::string env = e.slot.substr(0, slash), slot_name = e.slot.substr(slash + 1);
      auto live = envs_.find(env);
      if (live == envs_.end()) continue;
      Slot* slot = FindSlot(*live->second, slot_name);
      if (!slot) continue;
      if (e.kind == runtime::SupervisorEvent::Kind::kStarted) {
        if (slot->task_id != e.handle.id && !slot->task_id.empty())
          (void)store_.DeleteTask(env, slot->task_id);
        slot->task_id = e.handle.id;
        slot->handle = e.handle;
        slot->restarting = false;
        slot->unhealthy_since.reset();
        slot->healthy = false;
        const spec::Service* svc = slot->context->project->FindService(slot->service);
        if (svc) {
          auto spec =
              factory_.Make(*slot->context, ServiceLaunch(*svc, e.handle.id, slot->address));
          if (spec.ok()) {
            auto prober = factory_.ProberFor(*slot->context, *svc, slot->address, *spec);
            slot->prober = prober.ok() ? *prober : nullptr;
          }
        }
        slot->healthy = slot->prober == nullptr;
        slot->health = slot->prober
                           ? std::make_unique<runtime::HealthTracker>(
                                 svc ? HealthSettingsFor(*svc) : runtime::HealthSettings{}, clock_)
                           : nullptr;
        auto task = store_.GetTask(env, e.handle.id);
        if (task.ok()) {
          task->pid = e.handle.task.pid;
          task->start_time = e.handle.task.start_time;
          task->shim_pid = e.handle.shim.pid;
          task->shim_start_time = e.handle.shim.start_time;
          task->status = slot->healthy ? state::TaskStatus::kHealthy : state::TaskStatus::kStarting;
          (void)store_.PutTask(*task);
        }
        (void)store_.AppendEvent(env, "task-started", e.message);
        if (slot->healthy) changed.insert(env);
      } else if (e.kind == runtime::SupervisorEvent::Kind::kExited) {
        slot->healthy = false;
        auto task = store_.GetTask(env, slot->task_id);
        if (task.ok()) {
          task->status = state::TaskStatus::kExited;
          task->exit_code = e.exit.ShellCode();
          task->restarts = supervisor_->Restarts(e.slot);
          task->ended_at = store_.Now();
          (void)store_.PutTask(*task);
        }
        (void)store_.AppendEvent(env, "task-exited", e.message);
        changed.insert(env);
      } else {
        slot->healthy = false;
        slot->failed = true;
        std::string lines;
        for (const auto& l : e.last_lines) lines += "\n  " + l;
        (void)store_.AppendEvent(env, "service-failed", e.message + lines);
        auto task = store_.GetTask(env, slot->task_id);
        if (task.ok()) {
          task->status = state::TaskStatus::kFailed;
          (void)store_.PutTask(*task);
        }
        changed.insert(env);
      }
    }
  }

  // Health probes run outside the lock (each up to its timeout).
  struct Due {
    std::string env, slot, task_id;
    std::shared_ptr<runtime::Prober> prober;
    std::chrono::milliseconds timeout;
  };
  std::vector<Due> due;
  {
    std::lock_guard lock(mu_);
    for (auto& [env, live] : envs_)
      for (auto& slot : live->slots)
        if (slot->prober && slot->health && !slot->failed && !slot->restarting &&
            !slot->task_id.empty() && slot->health->Due())
          due.push_back({env, slot->name, slot->task_id, slot->prober,
                         slot->health->state() == runtime::HealthTracker::State::kStarting
                             ? std::chrono::milliseconds(1000)
                             : std::chrono::milliseconds(5000)});
  }
  std::vector<runtime::ProbeResult> results;
  for (auto& d : due) results.push_back(d.prober->Probe(d.timeout));
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < due.size(); ++i) {
      auto live = envs_.find(due[i].env);
      if (live == envs_.end()) continue;
      Slot* slot = FindSlot(*live->second, due[i].slot);
      if (!slot || slot->task_id != due[i].task_id || !slot->health || slot->restarting) continue;
      auto state = slot->health->Record(results[i]);
      bool healthy = state == runtime::HealthTracker::State::kHealthy;
      if (healthy) slot->unhealthy_since.reset();
      if (!healthy && !slot->unhealthy_since) slot->unhealthy_since = clock_.Now();
      if (healthy != slot->healthy) {
        slot->healthy = healthy;
        changed.insert(due[i].env);
        auto task = store_.GetTask(due[i].env, slot->task_id);
        if (task.ok()) {
          task->status = healthy ? state::TaskStatus::kHealthy : state::TaskStatus::kUnhealthy;
          (void)store_.PutTask(*task);
        }
        (void)store_.AppendEvent(due[i].env, healthy ? "task-healthy" : "task-unhealthy",
                                 slot->task_id + ": " + results[i].detail);
      }
      // A task that never becomes healthy, or stays unhealthy past its start timeout, is
      // replaced (as ECS replaces a task its target group finds unhealthy).
      const spec::Service* svc = slot->context->project->FindService(slot->service);
      auto limit = svc ? HealthSettingsFor(*svc).start_timeout : std::chrono::seconds(60);
      bool stuck = state == runtime::HealthTracker::State::kStartFailed ||
                   (slot->unhealthy_since && clock_.Now() - *slot->unhealthy_since > limit);
      if (stuck) {
        slot->restarting = true;
        slot->healthy = false;
        changed.insert(due[i].env);
        (void)store_.AppendEvent(due[i].env, "task-replaced",
                                 fmt::format("{}: unhealthy ({}); replacing it", slot->task_id,
                                             slot->health->last_detail()));
        to_restart.push_back(slot->handle);
      }
    }
  }
  for (const auto& h : to_restart) StopLater(h);
  for (const auto& env : changed) (void)PushRoutes(env);
}

json Fleet::RouterEnvJson(const std::string& env) {
  json out = {{"name", env}, {"hosts", json::array()}, {"routes", json::array()}};
  auto record = store_.GetEnvironment(env);
  if (!record.ok()) return out;
  out["hosts"].push_back(record->hostname);
  out["status"] = record->status == state::EnvStatus::kSleeping ? "sleeping" : "running";
  // Fail closed: an environment is never served open by mistake. Without its files it is not
  // known whether it is guarded, and rules that cannot be rendered guard nothing: either way
  // the router gets its name and no route.
  std::shared_ptr<const LaunchContext> context = Context(env);
  if (!context) return out;
  auto access =
      RenderAccess(*context->project, *context->env_file, AccessValuesFor(context->facts, store_));
  if (!access.ok()) return out;
  if (*access) out["access"] = AccessFeedJson(**access);
  auto routes = store_.ListRoutes(env);
  if (!routes.ok()) return out;
  std::lock_guard lock(mu_);
  auto live = envs_.find(env);
  for (const auto& r : *routes) {
    json route = {{"pattern", r.pattern}};
    if (r.priority) route["priority"] = *r.priority;
    if (r.kind == state::RouteKind::kFolder) {
      route["folder"] = r.folder_path;
    } else {
      route["service"] = r.service;
      json targets = json::array();
      if (live != envs_.end())
        for (auto& slot : live->second->slots) {
          if (slot->service != r.service || !slot->healthy || slot->draining) continue;
          const spec::Service* svc = slot->context->project->FindService(r.service);
          if (svc && svc->port)
            targets.push_back({{"id", slot->task_id},
                               {"address", slot->address + ":" + std::to_string(*svc->port)}});
        }
      route["targets"] = targets;
    }
    out["routes"].push_back(route);
  }
  return out;
}

Status Fleet::PushRoutes(const std::string& env) { return routes_.PutEnv(RouterEnvJson(env)); }

Status Fleet::PushAll() {
  json envs = json::array();
  ADHOC_ASSIGN_OR_RETURN(auto all, store_.ListEnvironments());
  for (const auto& e : all) envs.push_back(RouterEnvJson(e.name));
  return routes_.ReplaceAll(envs);
}

std::vector<ServiceView> Fleet::Describe(const std::string& env) {
  std::vector<ServiceView> out;
  std::lock_guard lock(mu_);
  auto live = envs_.find(env);
  if (live == envs_.end() || !live->second->context) return out;
  for (const auto& svc : live->second->context->project->services) {
    ServiceView view{svc.name, {}};
    for (const auto& slot : live->second->slots) {
      if (slot->service != svc.name) continue;
      TaskView t;
      t.id = slot->task_id;
      t.pid = slot->task_id.empty() ? 0 : slot->handle.task.pid;
      t.address = slot->address;
      t.generation = slot->generation;
      t.restarts = supervisor_->Restarts(SupervisorKey(env, slot->name));
      // What the process is now, not what the last probe said: a task killed a moment ago
      // is not shown healthy.
      bool running = !slot->task_id.empty() &&
                     runtime_.Inspect(slot->handle).kind == runtime::TaskState::kRunning;
      if (slot->failed)
        t.status = "failed";
      else if (!running)
        t.status = slot->task_id.empty() ? "starting" : "exited";
      else if (slot->restarting)
        t.status = "replacing";
      else if (slot->healthy)
        t.status = "healthy";
      else if (slot->health && slot->health->state() == runtime::HealthTracker::State::kUnhealthy)
        t.status = "unhealthy";
      else
        t.status = "starting";
      view.tasks.push_back(std::move(t));
    }
    out.push_back(std::move(view));
  }
  return out;
}

}  // namespace adhoc::server
