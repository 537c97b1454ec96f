// The one executor: runs a plan's typed steps (plan/plan.h) against an environment, one
// function per action, as one journaled operation; destroys environments; and finishes or
// undoes, from the journal, an operation that a dead control plane left. `up` and `deploy`
// run Apply(); `destroy` runs Destroy(); recovery runs Recover(), then rebuilds each
// environment's live picture from RecordedContext() through the fleet.
//
// An operation's steps: `allocate` (a new environment: its record, address block and folders),
// `base`, then one step per plan step ("release backend", "database", "redis", "task migrate",
// "access rules", "service api", "remove old", "routes static"), then `record` (what was
// applied). Before any of them, the access rules are rendered: rules that cannot be stop the
// operation before it makes anything. Each step
// records, before it acts, what undoes it:
//   {"undo":"remove_environment"}            allocate: everything of the environment goes
//   {"undo":"drop_databases"}                database
//   {"undo":"destroy_redis","address":A}     redis
//   {"undo":"stop_task","task":ID,"note":N}  a one-off task (N: what a rollback cannot undo)
//   {"undo":"converge","service":S}          a service: back to what the record says
//   {"undo":"none"}                          releases (shared, cached), base, removals, record,
//                                            access (a rollback's old context brings back the
//                                            old rules)
//   {"undo":"finish_sleep"}                  a sleep's steps: recovery finishes the sleep
//   {"undo":"finish_wake"}                   a wake's steps: recovery finishes the wake
// A sleep or wake is finished, never undone, by recovery: both only stop or start processes
// of what the record already says, so going forward is always possible and always safe.
//
// The circuit breaker: a failed step stops the operation. A new environment is then removed
// completely; an existing one gets every touched service converged back to what it ran
// before (the old version serves throughout), and the message names the step, its error and
// what could not be undone (a migration that ran).
//
// Thread-safety: different environments may be operated on at once; the caller serializes
// operations on one environment (ControlPlane's environment locks).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "server/env_resources.h"
#include "server/fleet.h"
#include "server/journal.h"
#include "server/planning.h"
#include "server/progress.h"
#include "state/store.h"

namespace adhoc::server {

struct ExecutorOptions {
  std::filesystem::path home;
  int router_port = 8080;  // URLs: http://<env>.<domain>[:port]/
};

struct ApplyOutcome {
  bool created = false;
  bool changed = false;  // false: the environment already matched its files
};

class Executor {
 public:
  Executor(state::Store& store, Fleet& fleet, EnvResources& resources, ExecutorOptions options);

  // Runs `prepared.plan` as an operation of `kind` ("up" or "deploy").
  Result<ApplyOutcome> Apply(const Prepared& prepared, const std::string& kind, Progress& progress);

  // A journaled destroy: processes, routes, Redis, database, role, folders, address, record.
  Status Destroy(const std::string& env, Progress& progress);

  // Everything of `env`, idempotent: what is already gone is fine. The record goes last and
  // only when everything else went, so a failed removal can be run again.
  Status RemoveEverything(const std::string& env);

  // Puts a running (or failed) environment to sleep as a journaled operation: its status
  // becomes `sleeping` and its routes say so first (the router holds its requests from then
  // on instead of sending them to tasks that stop), then every process of it stops
  // (services, one-off tasks, then Redis after saving its data). Its database, Redis data,
  // folders and address stay. `why` ends up in its event ("by hand", "idle for 30m").
  Status Sleep(const std::string& env, const std::string& why, Progress& progress);

  // Wakes a sleeping environment as a journaled operation: Redis first (with its data), then
  // its routed services at once, each task gated by its health check, then its status
  // `running` and its routes, then its other services (workers, beat) at once. A failure
  // stops what started: it stays asleep, and the error says why.
  Status Wake(const std::string& env, Progress& progress);

  // Finishes or undoes an operation a dead control plane left running, from its journal.
  // Returns what it did, for the log.
  Result<std::string> Recover(const state::Operation& operation);

  // The context of a recorded environment (its applied files and facts; its Redis started if
  // it died): what a restart restores and what `run` uses when the environment is not live.
  Result<std::shared_ptr<const LaunchContext>> RecordedContext(const state::Environment& env);

  // Tests: each plan step as the executor starts it.
  std::function<void(const plan::Step&)> on_step;

  // --- Data (data_ops.h) ---
  // Saves `env`'s database and Redis as snapshot `name`, a journaled operation ("snapshot")
  // that leaves the environment running undisturbed. BadInput for a bad name, Conflict for a
  // taken one, Failed for an environment asleep (its Redis does not run).
  Status Snapshot(const std::string& env, const std::string& name, Progress& progress);
  // Returns `env` to its start data, a journaled operation ("reset"): its database swapped
  // for a clone of its start copy, its Redis emptied and given its start keys; its services
  // keep running. When it runs other versions than it was created with, its before-deploy
  // tasks (migrations) run again. NotFound when it has no start data.
  Status Reset(const std::string& env, Progress& progress);

 private:
  struct Run;  // the state of one Apply

  Result<std::string> Execute(Run& run, const plan::Step& step);
  // Runs a wave's steps at once (one thread each); the first failure is returned once all
  // of them ended.
  Status RunWave(Run& run, const std::vector<const plan::Step*>& wave);
  Result<std::string> BuildRelease(Run& run, const plan::Step& step);
  Result<std::string> CreateDatabase(Run& run, const plan::Step& step);
  Result<std::string> StartRedis(Run& run, const plan::Step& step);
  Result<std::string> RunTask(Run& run, const plan::Step& step);
  // Runs `task` to its end in `context`; a Failed error with its last lines unless it exits 0.
  Status RunTaskNow(Run& run, const spec::Task& task, const LaunchContext& context);
  // The `cache = "database"` tasks as a copy of their template (built first when missing).
  Result<std::string> RunFromTemplate(Run& run);
  // A `cache = "static"` task as links to its cached files (run and kept first when missing).
  Result<std::string> RunFromStaticCache(Run& run, const spec::Task& task);
  // 16 hex digits naming what `tasks` would compute: releases, commands, [env] as written.
  std::string CacheKey(const Run& run, const std::vector<const spec::Task*>& tasks);
  // "<image>/<release key>" of the release `image` runs in this run.
  std::string ReleaseName(const Run& run, const std::string& image);
  Result<std::string> ConvergeService(Run& run, const plan::Step& step);
  Result<std::string> AddRoutes(Run& run, const plan::Step& step);
  Result<std::string> SetAccess(Run& run, const plan::Step& step);
  // Renders the environment's access rules as `up` will (server/access_rules.h); a Failed
  // error when they cannot be.
  Status CheckAccess(const Prepared& prepared);

  Result<std::string> Allocate(Run& run);
  Result<std::string> Record(Run& run);
  Status EnsureContext(Run& run);
  Status RecordRoutes(const std::string& env, const spec::Project& project,
                      const std::string& hostname);
  // The circuit breaker (see above). Returns the error to report.
  Error Fail(Run& run, Error error);

  // The router takes `env`'s routes; a router that does not answer is started again first.
  Status PushRoutesToARunningRouter(const std::string& env);

  // Every process of `env` stopped (Redis after saving), its service tasks forgotten.
  Status StopProcesses(const std::string& env, const std::string& address_block);

  Result<EnvironmentFacts> LoadFacts(const state::Environment& env, const spec::Project& project);

  // Data hooks of Apply (executor.cc, the end): an env file's `data` checked before anything
  // is made, loaded into the new database and Redis; the start data kept when a creation ends.
  Status CheckDataSource(const Prepared& prepared);
  Result<std::string> LoadDataIntoDatabase(Run& run, const std::string& database);
  Result<std::string> LoadDataIntoRedis(Run& run, const RedisEndpoint& redis);
  Status KeepStartData(Run& run);
  // Recovery of an interrupted snapshot (undone) or reset (done again).
  Result<std::string> RecoverData(const state::Operation& operation);
  // Records how recovery ended `operation` and says so in one line for the server log.
  std::string FinishRecovery(const state::Operation& operation, state::OperationStatus status,
                             const std::string& message);

  state::Store& store_;
  Fleet& fleet_;
  EnvResources& resources_;
  ExecutorOptions options_;
  // Choosing a free address block and recording it are one step: two environments created at
  // once must not both choose the same block.
  std::mutex allocate_mu_;
};

// The plan's steps grouped into waves that run one after another; the steps of one wave run
// at once. Releases, the database and Redis form one wave; each before-deploy task, the access
// rules, static routes, after-create tasks and removals are a wave alone, in plan order; a
// run of services becomes two waves: those with routes, then the others.
std::vector<std::vector<const plan::Step*>> Waves(const plan::Plan& plan,
                                                  const spec::Project& project);

// Whether `prepared`'s plan runs a `cache = "database"` task before deploy (which a new
// environment's database then comes from: a template's copy).
bool TemplateWillRun(const Prepared& prepared);

// The step name the journal and progress show for a plan step ("service api").
std::string StepName(const plan::Step& step);
// Its undo record (see above).
nlohmann::json UndoFor(const plan::Step& step, const std::string& env_address);

}  // namespace adhoc::server
