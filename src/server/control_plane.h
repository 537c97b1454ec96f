// The control plane (`adhoc serve`): the API of docs/api.md over the home's Unix socket, the
// state store, the operations that bring environments up and take them down (journaled, so a
// restarted control plane finishes or undoes what was interrupted), and the reconcile loop
// (restarts, health, routes). One per home, guaranteed by server.lock.
//
// Every environment operation holds the environment's journal entry (one running operation per
// environment); the in-memory picture of running services is guarded by one mutex. Health
// probes run outside that mutex. Tasks, Redis, PostgreSQL and the router are separate
// processes: stopping the control plane (even with kill -9) leaves them running, and Recover()
// adopts them again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "runtime/health.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "server/api_server.h"
#include "server/progress.h"
#include "server/router_link.h"
#include "server/task_launch.h"
#include "spec/spec.h"
#include "state/store.h"

namespace adhoc::server {

struct ControlPlaneOptions {
  std::filesystem::path home;
  std::filesystem::path adhoc_binary;  // for shims and the router
  RouterOptions router;                // listen address and port
  int postgres_port = 5432;            // on the home's base address
  std::chrono::milliseconds loop_interval{250};
};

// A timestamped line on the control plane's log (its stderr, which is server.log).
void ServerLog(const std::string& text);

// Reads ADHOC_ROUTER_LISTEN ("127.0.0.1:8080", "0.0.0.0:80") and ADHOC_POSTGRES_PORT.
ControlPlaneOptions OptionsFromEnvironment(const std::filesystem::path& home);

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> Open(ControlPlaneOptions options);
  ~ControlPlane();

  // Recovers, serves the API and runs the loop until Shutdown(); the lock is held throughout.
  Status Serve();
  void Shutdown();

  // The operations behind the API (also called directly by tests).
  Result<nlohmann::json> Up(const std::string& env, const std::filesystem::path& project,
                            Progress& progress);
  Result<nlohmann::json> Destroy(const std::string& env, Progress& progress);
  // A task of adhoc.toml (`task`) or a command (`argv`); returns its exit status.
  Result<int> Run(const std::string& env, const std::string& task,
                  const std::vector<std::string>& argv, Progress& progress);
  Result<nlohmann::json> EnvironmentJson(const std::string& env);
  Result<nlohmann::json> ListJson();
  Result<nlohmann::json> ExecSpec(const std::string& env, const std::string& service);
  Status BaseUp(Progress& progress);
  Status BaseDown(Progress& progress);

 private:
  // What a process of an environment is made from: the applied files and the facts. Shared by
  // the slots' restart makers, so a restart uses what was applied, not what the files say now.
  struct LaunchContext {
    std::shared_ptr<const spec::Project> project;
    std::shared_ptr<const spec::EnvFile> env_file;
    EnvironmentFacts facts;
  };
  struct Slot {
    std::string name;  // "gunicorn/0"
    std::string service;
    std::string address;
    std::string task_id;
    runtime::TaskHandle handle;
    std::shared_ptr<const LaunchContext> context;
    std::shared_ptr<runtime::Prober> prober;         // nullptr: healthy while it runs
    std::unique_ptr<runtime::HealthTracker> health;  // with prober
    bool healthy = false;
    bool failed = false;
  };
  struct LiveEnv {
    std::shared_ptr<const LaunchContext> context;
    std::vector<std::unique_ptr<Slot>> slots;
  };
  class Operation;

  explicit ControlPlane(ControlPlaneOptions options);
  void RegisterApi();
  Status Recover();
  void Loop();
  void LoopOnce();
  void CheckHealth();
  void CheckBase();
  void RecordRequests();

  // Pieces of Up and Destroy.
  Status EnsureBase(bool postgres);
  Result<EnvironmentFacts> LoadFacts(const state::Environment& env, const spec::Project& project);
  Result<std::unique_ptr<Slot>> StartGated(const std::string& env,
                                           std::shared_ptr<const LaunchContext> context,
                                           const spec::Service& service, int index,
                                           const std::string& address, Progress& progress);
  Result<int> RunTaskNow(const std::string& env, const LaunchContext& context,
                         const LaunchRequest& request, std::chrono::milliseconds timeout,
                         Progress& progress, std::string* log_tail);
  Status RemoveEverything(const std::string& env);
  // After PushRoutes: returns when no request of `env` that may use an old target is in flight.
  void WaitForDrain(const std::string& env);
  // Hands a slot to the supervisor: watched if `running`, else started at the next tick.
  void Supervise(const std::string& env, Slot& slot, bool running);  // needs mu_
  Status EnsureRedisRunning(const std::string& env, const std::string& address);
  std::unique_ptr<Slot> NewSlot(const std::string& env,
                                std::shared_ptr<const LaunchContext> context,
                                const spec::Service& service, int index,
                                const std::string& address);
  Result<std::shared_ptr<LiveEnv>> RestoreLive(const state::Environment& env);
  nlohmann::json RouterEnvJson(const std::string& env);         // needs mu_
  void PushRoutes(const std::string& env);                      // takes mu_
  Status PushAllRoutes();                                       // takes mu_
  Result<std::string> AllocateAddress(const std::string& env);  // needs mu_
  std::string SupervisorSlot(const std::string& env, const std::string& slot) const {
    return env + "/" + slot;
  }

  ControlPlaneOptions options_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<runtime::Runtime> runtime_;
  runtime::SystemClock clock_;
  std::unique_ptr<runtime::Supervisor> supervisor_;
  std::unique_ptr<RouterLink> router_;
  ApiServer api_;

  std::mutex mu_;  // envs_ and supervisor_
  std::map<std::string, std::shared_ptr<LiveEnv>> envs_;
  std::mutex base_mu_;  // starting PostgreSQL and the router

  std::chrono::steady_clock::time_point next_base_check_;
  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
};

}  // namespace adhoc::server
