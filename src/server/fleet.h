// The running fleet: every environment's service tasks, on runtime::Runtime, their health and
// their place in the router (through a RouteSink). It starts, rolls, stops and parks services,
// drains a target before stopping it, supervises tasks (restarts with back-off; a task that
// stays unhealthy past its start timeout is replaced), runs one-off tasks, and says what runs.
//
// A service's tasks carry a generation (the plan's service fingerprint, LaunchContext): to
// converge a service is to keep the tasks of the wanted generation (up to its count) and
// replace the others one at a time. Starting, rolling, rolling back, scaling and removing a
// service are all that one operation, Converge().
//
// Threading: one mutex guards the picture of live environments; starting, health gates,
// draining and stopping run outside it, so status and the loop never wait on a slow task.
// Tick() is called by one loop thread. Callers serialize operations on one environment (the
// control plane's environment locks); different environments may be worked on at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "runtime/clock.h"
#include "runtime/health.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "server/progress.h"
#include "server/route_sink.h"
#include "server/task_launch.h"
#include "state/store.h"

namespace adhoc::server {

struct FleetOptions {
  std::filesystem::path home;
  // A service without a health check must keep running this long to count as started.
  std::chrono::milliseconds settle{300};
  // How often gates and drains look again.
  std::chrono::milliseconds poll{20};
  runtime::RestartPolicy restart_policy;
};

// What status shows of one task.
struct TaskView {
  std::string id;
  std::string status;  // "healthy", "starting", "unhealthy", "exited", "failed", "draining"
  int64_t pid = 0;
  std::string address;
  std::string generation;
  int restarts = 0;
};

struct ServiceView {
  std::string name;
  std::vector<TaskView> tasks;
};

class Fleet {
 public:
  Fleet(runtime::Runtime& runtime, const runtime::Clock& clock, state::Store& store,
        RouteSink& routes, TaskFactory& factory, FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // The context an environment's processes are made from now; nullptr when none is known.
  std::shared_ptr<const LaunchContext> Context(const std::string& env) const;
  // Makes `context` the environment's (its services' restarts use it from now on).
  void SetContext(const std::string& env, std::shared_ptr<const LaunchContext> context);
  // Environments with a live picture.
  std::vector<std::string> Envs() const;

  // After a restart of the control plane: adopts the environment's recorded service tasks
  // that still run with the context's generation, stops the others (and any task folder no
  // row owns), and has the supervisor start what is missing. Returns what it did.
  Result<std::string> Restore(const std::string& env, std::shared_ptr<const LaunchContext> context);

  // Converges `service` of `env` to `context`: `count` tasks of the context's generation,
  // each started on an address of its own and gated by its health check before it joins the
  // rotation; every other task leaves the rotation, is drained (its own requests in flight,
  // up to the service's drain time) and stopped. One task at a time; a `singleton` service
  // (beat) has its old task stopped before the new one starts. A service the context does not
  // have is removed. On a failed start the new task is stopped and the error returned; tasks
  // already replaced stay replaced (converge again to the old context to roll back). Returns
  // a summary ("2 tasks healthy in 1.2s, 2 old stopped").
  Result<std::string> Converge(const std::string& env, std::shared_ptr<const LaunchContext> context,
                               const std::string& service, Progress& progress);

  // Waits until the router has no request in flight to any task of `env`, each service up to
  // its drain time. For after the router stopped sending `env` new requests (asleep: held),
  // so that StopAll cuts no request short.
  void DrainAll(const std::string& env);
  // Stops every task of `env` (supervised or not, and any running task folder of it), and
  // forgets it. Its routes stay until RemoveEnvRoutes.
  Status StopAll(const std::string& env);
  // Takes the environment out of the router.
  Status RemoveEnvRoutes(const std::string& env) { return routes_.RemoveEnv(env); }
  // Stops one task by its folder if it runs (a one-off task a dead operation left).
  Status StopTask(const std::string& env, const std::string& task_id);

  // A one-off task, started and waited for; its lines go to `progress` (and the last 15 to
  // `tail`). Returns its exit status (shell style).
  Result<int> RunOnce(const std::string& env, const LaunchContext& context,
                      const LaunchRequest& request, std::chrono::milliseconds timeout,
                      Progress& progress, std::string* tail);

  // Supervision and health: restarts what exited, replaces tasks unhealthy past their start
  // timeout, moves targets in and out of the rotation. From the loop thread.
  void Tick();

  // The environment's routes with their healthy targets and its access rules, as the route
  // sink takes them. Fails closed: an environment without a context, or whose rules cannot be
  // rendered (server/access_rules.h), gets no route.
  nlohmann::json RouterEnvJson(const std::string& env);
  Status PushRoutes(const std::string& env);
  // Every recorded environment (a new router starts empty).
  Status PushAll();

  // What runs, per service of the context (live states, not what was last recorded).
  std::vector<ServiceView> Describe(const std::string& env);

 private:
  struct Slot;
  struct LiveEnv;

  Slot* FindSlot(LiveEnv& live, const std::string& name);                      // needs mu_
  Result<std::string> AllocateAddress(const std::string& env, LiveEnv& live);  // needs mu_
  // Starts a task in `slot` (not yet in the rotation) and waits for its health gate.
  Status StartAndGate(const std::string& env, Slot& slot, const spec::Service& service,
                      Progress& progress);
  // Out of the rotation, drained, stopped, its row deleted.
  void Retire(const std::string& env, std::unique_ptr<Slot> slot);
  // Where the router sends a slot's requests, and how long they may take to finish.
  struct Target {
    std::string address;  // host:port
    std::chrono::milliseconds drain;
  };
  std::optional<Target> RoutedTarget(const Slot& slot) const;  // none: the service has no port
  // Until the router has nothing in flight to `target`, or its drain time from `since`.
  void WaitForInFlight(const Target& target, runtime::Clock::TimePoint since);
  void Supervise(const std::string& env, Slot& slot, bool running);  // needs mu_
  std::string SupervisorKey(const std::string& env, const std::string& slot) const {
    return env + "/" + slot;
  }
  void StopLater(const runtime::TaskHandle& handle);

  runtime::Runtime& runtime_;
  const runtime::Clock& clock_;
  state::Store& store_;
  RouteSink& routes_;
  TaskFactory& factory_;
  FleetOptions options_;

  mutable std::mutex mu_;  // envs_, supervisor_
  std::map<std::string, std::shared_ptr<LiveEnv>> envs_;
  std::unique_ptr<runtime::Supervisor> supervisor_;
  std::mutex stoppers_mu_;
  std::vector<std::thread> stoppers_;
  uint64_t next_slot_ = 0;  // needs mu_
};

}  // namespace adhoc::server
