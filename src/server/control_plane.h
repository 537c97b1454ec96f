// The control plane (`adhoc serve`): one per home (server.lock). It composes the parts and
// runs them: the state store, the runtime, the fleet (running services, fleet.h), the one
// executor (executor.h), the API (api_routes.h over api_server.h), the reconcile loop
// (supervision, health, the base kept running, request counters) and the keeper.
//
// On start it serves the API at once (status and ls never wait), then recovers: the router
// first, then every operation a dead control plane left (finished or undone from the
// journal), then every environment's live picture. Operations that change an environment
// wait until recovery is done, and for any other operation on the same environment.
//
// Tasks, Redis, PostgreSQL and the router are separate processes: stopping the control plane
// (even with kill -9) leaves them running, and a new one adopts them.
// Thread-safe: API handlers run on several threads; see each part for its own rules.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/clock.h"
#include "runtime/runtime.h"
#include "server/api_route.h"
#include "server/api_server.h"
#include "server/background_jobs.h"
#include "server/disk_usage.h"
#include "server/env_locks.h"
#include "server/executor.h"
#include "server/fleet.h"
#include "server/fork_servers.h"
#include "server/local_resources.h"
#include "server/notifier.h"
#include "server/progress.h"
#include "server/router_link.h"
#include "server/task_launch.h"
#include "state/store.h"

namespace adhoc::server {

struct ControlPlaneOptions {
  std::filesystem::path home;
  std::filesystem::path adhoc_binary;  // for shims, the router and the keeper
  RouterOptions router;                // listen address and port
  int postgres_port = 5432;            // on the home's base address
  std::chrono::milliseconds loop_interval{250};
  bool keeper = true;  // start the keeper (tests of the control plane alone turn it off)
  // Make the home when it is missing. The keeper's restarts do not (ADHOC_HOME_MUST_EXIST=1):
  // a home removed under them stays removed.
  bool create_home = true;
  // Serve the API on TCP too, behind the router at adhoc.<domain>, with the home's token.
  bool api_over_tcp = true;
};

// A timestamped line on the control plane's log (its stderr, which is server.log).
void ServerLog(const std::string& text);

// Reads ADHOC_ROUTER_LISTEN ("127.0.0.1:8080", "0.0.0.0:80"), ADHOC_ROUTER_THREADS,
// ADHOC_POSTGRES_PORT and ADHOC_HOME_MUST_EXIST; a BadInput naming the variable and its value
// when one is malformed.
Result<ControlPlaneOptions> OptionsFromEnvironment(const std::filesystem::path& home);

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> Open(ControlPlaneOptions options);
  ~ControlPlane();

  // Serves the API, recovers and runs the loop until Shutdown(); the lock is held throughout.
  Status Serve();
  // Stops serving; with `stop_keeper` the keeper goes too (a deliberate stop, not a crash).
  void Shutdown(bool stop_keeper = true);
  bool stopping() const { return stop_; }

  // --- The operations behind the API. `wait`: wait for another operation on the same
  // environment (saying so on `progress`) instead of failing with a Conflict. ---
  Result<nlohmann::json> Up(const std::string& env, const std::filesystem::path& project,
                            Progress& progress, bool wait = true);
  Result<nlohmann::json> Plan(const std::string& env, const std::filesystem::path& project);
  Result<nlohmann::json> Deploy(const std::string& env,
                                const std::map<std::string, std::string>& versions,
                                Progress& progress, bool wait = true);
  Result<nlohmann::json> Destroy(const std::string& env, Progress& progress, bool wait = true);
  // Stops every process of `env`, keeping its data; the router holds its requests.
  Result<nlohmann::json> Sleep(const std::string& env, Progress& progress, bool wait = true);
  // Starts a sleeping `env` again (Redis, then its services at once, gated by health).
  Result<nlohmann::json> Wake(const std::string& env, Progress& progress, bool wait = true);
  // The router's "wake ENV": starts a wake in the background and answers at once (the
  // router holds the requests until the routes say running). Idempotent: a wake already
  // under way, or an awake environment, is fine. NotFound for an unknown environment.
  Result<nlohmann::json> WakeInBackground(const std::string& env);
  // `adhoc gc`: destroys what is past its TTL, then removes what no environment owns
  // (garbage.h). With `dry_run`, only says what would go. One gc at a time.
  Result<nlohmann::json> Gc(bool dry_run, Progress& progress);
  // A task of adhoc.toml (`task`) or a command (`argv`); returns its exit status.
  Result<int> Run(const std::string& env, const std::string& task,
                  const std::vector<std::string>& argv, Progress& progress);
  Result<nlohmann::json> ExecSpec(const std::string& env, const std::string& service);
  Result<nlohmann::json> EnvironmentJson(const std::string& env);
  Result<nlohmann::json> ListJson();
  // The dashboard's address and the API's token (docs/api.md "Over TCP"): {url, token, token_url,
  // hosts}; NotFound when the API is not served on TCP.
  Result<nlohmann::json> DashboardJson();
  Status BaseUp(Progress& progress);
  // Stops every process of the home (the keeper first); data kept. Then the control plane.
  Status BaseDown(Progress& progress);
  // Destroys every environment, stops everything; the caller removes the home afterwards.
  Status BaseDestroy(Progress& progress);

  // --- Data (executor.h: Snapshot, Reset; data_ops.h) ---
  // Saves `env`'s database and Redis as snapshot `name`, under its lock.
  Result<nlohmann::json> Snapshot(const std::string& env, const std::string& name,
                                  Progress& progress, bool wait = true);
  // Returns `env` to its start data, under its lock.
  Result<nlohmann::json> Reset(const std::string& env, Progress& progress, bool wait = true);
  // {snapshots: [...], total_bytes} (docs/api.md).
  Result<nlohmann::json> SnapshotsJson();
  // A snapshot's files and record; NotFound when there is none.
  Result<nlohmann::json> RemoveSnapshot(const std::string& name);

  const ControlPlaneOptions& options() const { return options_; }
  state::Store& store() { return *store_; }
  Fleet& fleet() { return *fleet_; }

 private:
  explicit ControlPlane(ControlPlaneOptions options);
  // Blocks until recovery is done (saying so on `progress` if it has to wait).
  void WaitUntilRecovered(Progress& progress);
  // Whether recovery is done, waiting at most `wait` for it.
  bool RecoveredWithin(std::chrono::milliseconds wait);
  void Recover();
  void Loop();
  void LoopOnce();
  void CheckBase();
  // The router's last request time of each environment (or only `only`) into the store.
  // Returns how many requests the router is answering for `only` now (upgraded connections
  // aside); 0 without `only` or without a router.
  int64_t RecordRequests(const std::string& only = "");
  // TTL and idle sleep (lifetimes.h): hands what is due to background jobs.
  void CollectDue();
  void Expire(const std::string& env);
  void SleepIdle(const std::string& env);
  // The fork servers of releases no environment has used for kForkServerGrace go (unless an
  // `up` is choosing releases right now: the next round, or gc, takes them).
  void StopUnusedForkServers();
  state::Millis AwakeSince(const std::string& env);
  void MarkAwake(const std::string& env);

  ControlPlaneOptions options_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<runtime::Runtime> runtime_;
  runtime::SystemClock clock_;
  std::unique_ptr<RouterLink> router_;
  std::unique_ptr<ApiRouteSink> api_route_;  // the router as the fleet sees it, with adhoc.<domain>
  std::string api_token_;                    // empty: the API is not served on TCP
  std::unique_ptr<ForkServers> fork_servers_;
  std::unique_ptr<LocalTaskFactory> factory_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<LocalResources> resources_;
  std::unique_ptr<Executor> executor_;
  EnvLocks locks_;
  ApiServer api_;

  std::mutex recovered_mu_;
  std::condition_variable recovered_cv_;
  bool recovered_ = false;

  std::chrono::steady_clock::time_point next_base_check_;
  std::chrono::steady_clock::time_point next_disk_check_;
  std::chrono::steady_clock::time_point next_fork_server_check_;
  std::unique_ptr<DiskUsage> disk_;  // each environment's disk, measured now and then
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_keeper_{true};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;

  // When each environment was last woken (or this control plane started): idle sleep counts
  // from the later of that and its last request.
  std::mutex awake_mu_;
  std::map<std::string, state::Millis> awake_since_;
  state::Millis started_ms_ = 0;
  // `up` and `deploy` hold it shared while they choose and use releases; gc holds it alone
  // while it decides which releases nobody uses and removes them.
  std::shared_mutex releases_mu_;
  std::mutex gc_mu_;                    // one gc at a time
  std::unique_ptr<Notifier> notifier_;  // [notify]: expiring and expired notices
  // Last: its jobs use everything above, so it is joined (destroyed) first.
  BackgroundJobs jobs_;
};

}  // namespace adhoc::server
