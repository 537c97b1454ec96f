// The state store: the control plane's memory, one SQLite file under the home
// (paths::StateDb). The state module is the only writer of that file.
//
// Open() creates the file (and its folder) when absent, turns on WAL, a busy
// timeout and foreign keys, and migrates the schema (schema.h); a file written by
// a newer adhoc is refused untouched. The file holds every environment's credentials:
// it is created 0600 (SQLite gives its -wal and -shm files the same mode), and an older
// file, with its -wal and -shm, is made 0600 too.
//
// Every method is atomic on its own: it runs in a transaction of its own, or inside
// the caller's Transact() when called from the callback. Transact groups several
// changes into one all-or-nothing transaction; a failed Status from the callback
// rolls back everything it did. Transact may nest (inner ones are savepoints).
//
// Thread-safety: a Store is safe to share between threads. It holds one connection
// guarded by a recursive mutex; a Transact holds that mutex for its whole callback,
// so other threads' calls wait until it ends (keep callbacks short, do no slow I/O in
// them). Several Store objects, in this or other processes, may open the same file:
// writers queue on SQLite's lock for up to `busy_timeout`, readers never wait (WAL).
// Inside a Transact callback use only the Store it was given: writing through a second
// Store on the same file would wait on this one's lock until the busy timeout.
// Durability: SQLite's default synchronous=FULL, so a committed write survives a crash.
//
// Environment-scoped records (versions, randoms, credentials, tasks, routes,
// address blocks, slots, task ids) require the environment to be recorded first
// (NotFound otherwise) and are deleted with it. Operations and events are history
// and outlive their environment. Environment-scoped secrets are deleted with it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "state/clock.h"
#include "state/records.h"

namespace adhoc::state {

namespace sqlite {
class Db;
}

struct StoreOptions {
  std::shared_ptr<const Clock> clock = SystemClock();  // stamps every time the store sets
  std::chrono::milliseconds busy_timeout{std::chrono::seconds(10)};
};

// Which events ListEvents returns.
struct EventQuery {
  std::optional<std::string> env;  // nullopt: every environment
  Millis since = 0;                // only events with time >= since
  int limit = 100;                 // the most recent `limit` of those (<= 0: all)
};

class Store {
 public:
  // Opens or creates the state file at `path`. Errors name the file.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& path,
                                             StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return path_; }
  Millis Now() const { return clock_->NowMillis(); }

  // Runs `fn` in one write transaction: committed when it returns ok, rolled back
  // (with every change it made through this store) when it returns an error, which
  // Transact then returns.
  Status Transact(const std::function<Status(Store&)>& fn);

  // --- Environments ---
  Result<Environment> GetEnvironment(const std::string& name);  // NotFound if absent
  Result<std::optional<Environment>> FindEnvironment(const std::string& name);
  Result<std::vector<Environment>> ListEnvironments();  // by name
  // Inserts or replaces; stamps created_at (first put, when 0) and updated_at.
  // Returns the record as stored.
  Result<Environment> PutEnvironment(Environment env);
  Status SetEnvironmentStatus(const std::string& name, EnvStatus status);
  Status RecordRequest(const std::string& name, Millis at);  // sets last_request_at
  // Deletes the environment and everything scoped to it; NotFound if absent.
  Status DeleteEnvironment(const std::string& name);

  // --- Versions: the deployed version of each image ---
  Status PutVersion(Version version);  // stamps deployed_at when 0
  Result<Version> GetVersion(const std::string& env, const std::string& image);
  Result<std::vector<Version>> ListVersions(const std::string& env);  // by image
  Status DeleteVersion(const std::string& env, const std::string& image);

  // --- Randoms: {random.NAME}, made once per environment ---
  // Returns the recorded value, or records and returns generator()'s.
  Result<std::string> GetOrCreateRandom(const std::string& env, const std::string& name,
                                        const std::function<std::string()>& generator);
  Result<std::map<std::string, std::string>> ListRandoms(const std::string& env);

  // --- Secrets (bytes only; encryption is the caller's) ---
  Status PutSecret(Secret secret);  // insert or replace; stamps updated_at
  Result<Secret> GetSecret(const std::string& env, const std::string& name);  // env "" = project
  Result<std::vector<Secret>> ListSecrets(const std::string& env);            // by name
  Status DeleteSecret(const std::string& env, const std::string& name);

  // --- Database credentials ---
  Status PutDatabaseCredentials(const DatabaseCredentials& credentials);
  Result<DatabaseCredentials> GetDatabaseCredentials(const std::string& env);
  Status DeleteDatabaseCredentials(const std::string& env);

  // --- Tasks ---
  // A fresh id "<process>-<n>", n counting from 1 per environment and process,
  // never handed out twice while the environment lives.
  Result<std::string> NextTaskId(const std::string& env, const std::string& process);
  Status PutTask(const Task& task);  // insert or replace
  Result<Task> GetTask(const std::string& env, const std::string& id);
  Result<std::vector<Task>> ListTasks(const std::string& env);  // by start, then id
  Result<std::vector<Task>> ListAllTasks();
  Status DeleteTask(const std::string& env, const std::string& id);

  // --- Routes ---
  // Replaces all of the environment's routes at once; order is kept.
  Status ReplaceRoutes(const std::string& env, const std::vector<Route>& routes);
  Result<std::vector<Route>> ListRoutes(const std::string& env);
  Result<std::vector<Route>> ListAllRoutes();  // by env, then order: feeds the router

  // --- Address blocks ---
  // Records `block` as the environment's; ok if it already is, Conflict naming the
  // holder if another environment has it.
  Status AllocateBlock(const std::string& env, const std::string& block);
  Status ReleaseBlock(const std::string& block);   // ok if not allocated
  Result<std::vector<AddressBlock>> ListBlocks();  // by block

  // --- Slots: a small integer per environment for the cloud renders ---
  // The environment's slot; if it has none, the lowest free one (from 1) is taken.
  Result<int> AcquireSlot(const std::string& env);
  Result<std::optional<int>> GetSlot(const std::string& env);
  Result<std::map<std::string, int>> ListSlots();

  // --- Operations: the journal ---
  // Begins an operation in status running with its steps pending. Conflict if the
  // environment already has a running operation (the message names it).
  Result<Operation> BeginOperation(const std::string& env, const std::string& kind,
                                   const std::string& input_json,
                                   const std::vector<std::string>& step_names);
  // Step changes need the operation to be running (Conflict otherwise) and the step
  // to exist (NotFound). Names are unique per operation.
  Status AddStep(int64_t operation_id, const std::string& name);  // appended, pending
  Status StartStep(int64_t operation_id, const std::string& name);
  // What undoes a running step, recorded before the step acts (and refined while it acts),
  // so a control plane that dies mid-step leaves its successor the way back.
  Status RecordStepUndo(int64_t operation_id, const std::string& name,
                        const std::string& undo_json);
  Status CompleteStep(int64_t operation_id, const std::string& name, const std::string& undo_json);
  Status FailStep(int64_t operation_id, const std::string& name, const std::string& error);
  Status UndoStep(int64_t operation_id, const std::string& name);  // marks it undone
  // Ends a running operation with a final status (not kRunning).
  Status FinishOperation(int64_t operation_id, OperationStatus status,
                         const std::string& error = "");
  Result<Operation> GetOperation(int64_t operation_id);
  // Operations still running: after a crash, the ones to finish or undo. Oldest first.
  Result<std::vector<Operation>> ListUnfinishedOperations();
  Result<std::optional<Operation>> LastOperation(const std::string& env);
  Result<std::vector<Operation>> ListOperations(const std::string& env, int limit);  // newest first

  // --- Events ---
  Result<Event> AppendEvent(const std::string& env, const std::string& kind,
                            const std::string& message);           // stamped now
  Result<std::vector<Event>> ListEvents(const EventQuery& query);  // oldest first

  // --- Expiry warnings (store_notices.cc): which expiry each environment was warned of, so a
  // restarted control plane does not warn twice. Deleted with the environment. ---
  // Inserts or replaces the environment's warning (NotFound when it is not recorded); stamps
  // warned_at when 0.
  Status PutExpiryWarning(ExpiryWarning warning);
  Result<std::map<std::string, ExpiryWarning>> ListExpiryWarnings();  // by environment

  // --- Snapshots (store_snapshots.cc): saved data, not tied to a live environment ---
  // Records a new snapshot (stamps created_at when 0); Conflict when the name is taken.
  Status PutSnapshot(Snapshot snapshot);
  Result<std::optional<Snapshot>> FindSnapshot(const std::string& name);
  Result<std::vector<Snapshot>> ListSnapshots();   // by name
  Status DeleteSnapshot(const std::string& name);  // ok when absent

 private:
  enum class Mode { kRead, kWrite };
  Store(std::filesystem::path path, std::unique_ptr<sqlite::Db> db, StoreOptions options);

  // Runs fn atomically: a transaction of its own, or a savepoint inside the current one.
  Status RunAtomically(Mode mode, const std::function<Status()>& fn);
  template <typename T>
  Result<T> Atomically(Mode mode, const std::function<Result<T>()>& fn) {
    std::optional<Result<T>> out;
    Status st = RunAtomically(mode, [&]() -> Status {
      out.emplace(fn());
      return Status(*out);
    });
    if (!st.ok()) return st.error();
    return std::move(*out);
  }
  Status RequireEnvironment(const std::string& env);
  Result<Operation> LoadOperation(int64_t id);
  Status ChangeStep(int64_t operation_id, const std::string& name, const std::string& action,
                    const std::function<Status(StepStatus)>& change);

  std::filesystem::path path_;
  std::unique_ptr<sqlite::Db> db_;
  std::shared_ptr<const Clock> clock_;
  std::recursive_mutex mu_;
  int depth_ = 0;  // nesting of RunAtomically on the thread holding mu_
};

}  // namespace adhoc::state
