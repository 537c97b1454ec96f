// The operation journal and the event log: the part of Store that records what
// the control plane is doing, so a restarted one can finish or undo it.
#include <time.h>

#include <algorithm>

#include "state/sqlite.h"
#include "state/store.h"

namespace adhoc::state {
namespace {

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

// "2024-05-01T12:00:00Z", for messages a person reads.
std::string FormatTime(Millis ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[32];
  strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

Result<Step> ReadStep(const sqlite::Statement& s) {
  Step step;
  step.name = s.Text(0);
  ADHOC_ASSIGN_OR_RETURN(step.status, ParseStepStatus(s.Text(1)));
  step.started_at = s.OptInt(2);
  step.finished_at = s.OptInt(3);
  step.undo_json = s.Text(4);
  step.error = s.Text(5);
  return step;
}

Result<Operation> ReadOperation(const sqlite::Statement& s) {
  Operation op;
  op.id = s.Int(0);
  op.env = s.Text(1);
  op.kind = s.Text(2);
  ADHOC_ASSIGN_OR_RETURN(op.status, ParseOperationStatus(s.Text(3)));
  op.started_at = s.Int(4);
  op.finished_at = s.OptInt(5);
  op.error = s.Text(6);
  op.input_json = s.Text(7);
  return op;
}

// Runs `sql` with args and collects the integer in column 0 of each row.
template <typename... Args>
Result<std::vector<int64_t>> QueryIds(sqlite::Db& db, const std::string& sql, const Args&... args) {
  ADHOC_ASSIGN_OR_RETURN(sqlite::Statement stmt, db.Prepare(sql));
  ADHOC_RETURN_IF_ERROR(stmt.BindAll(args...));
  std::vector<int64_t> ids;
  while (true) {
    ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return ids;
    ids.push_back(stmt.Int(0));
  }
}

std::string OperationWhat(int64_t id) { return "operation " + std::to_string(id); }

}  // namespace

Result<Operation> Store::LoadOperation(int64_t id) {
  ADHOC_ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db_->Prepare("SELECT id, env, kind, status, started_at, finished_at, error, input_json "
                   "FROM operations WHERE id = ?"));
  ADHOC_RETURN_IF_ERROR(stmt.BindAll(id));
  ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound(OperationWhat(id) + " is not recorded");
  ADHOC_ASSIGN_OR_RETURN(Operation op, ReadOperation(stmt));

  ADHOC_ASSIGN_OR_RETURN(
      sqlite::Statement steps,
      db_->Prepare("SELECT name, status, started_at, finished_at, undo_json, error FROM steps "
                   "WHERE operation_id = ? ORDER BY position"));
  ADHOC_RETURN_IF_ERROR(steps.BindAll(id));
  while (true) {
    ADHOC_ASSIGN_OR_RETURN(bool more, steps.Step());
    if (!more) break;
    ADHOC_ASSIGN_OR_RETURN(Step step, ReadStep(steps));
    op.steps.push_back(std::move(step));
  }
  return op;
}

Result<Operation> Store::BeginOperation(const std::string& env, const std::string& kind,
                                        const std::string& input_json,
                                        const std::vector<std::string>& step_names) {
  return Atomically<Operation>(
             Mode::kWrite,
             [&]() -> Result<Operation> {
               ADHOC_ASSIGN_OR_RETURN(
                   std::vector<int64_t> running,
                   QueryIds(*db_, "SELECT id FROM operations WHERE env = ? AND status = 'running'",
                            env));
               if (!running.empty()) {
                 ADHOC_ASSIGN_OR_RETURN(Operation other, LoadOperation(running.front()));
                 return Conflict("environment " + Quoted(env) +
                                 " is busy: " + OperationWhat(other.id) + " (" + other.kind +
                                 ") has been running since " + FormatTime(other.started_at));
               }
               ADHOC_RETURN_IF_ERROR(db_->Exec(
                   "INSERT INTO operations (env, kind, status, started_at, finished_at, error, "
                   "input_json) VALUES (?, ?, 'running', ?, NULL, '', ?)",
                   env, kind, Now(), input_json));
               int64_t id = db_->LastInsertId();
               for (size_t i = 0; i < step_names.size(); ++i) {
                 Status st = db_->Exec(
                     "INSERT INTO steps (operation_id, position, name, status, undo_json, error) "
                     "VALUES (?, ?, ?, 'pending', '', '')",
                     id, static_cast<int64_t>(i), step_names[i]);
                 if (!st.ok())
                   return std::move(st).context("adding step " + Quoted(step_names[i])).error();
               }
               return LoadOperation(id);
             })
      .context("beginning " + kind + " of environment " + Quoted(env));
}

Status Store::ChangeStep(int64_t operation_id, const std::string& name, const std::string& action,
                         const std::function<Status(StepStatus)>& change) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_ASSIGN_OR_RETURN(Operation op, LoadOperation(operation_id));
                         if (op.status != OperationStatus::kRunning)
                           return Conflict(OperationWhat(operation_id) + " is " +
                                           std::string(ToString(op.status)) +
                                           "; its steps no longer change");
                         auto step = std::find_if(op.steps.begin(), op.steps.end(),
                                                  [&](const Step& s) { return s.name == name; });
                         if (step == op.steps.end())
                           return NotFound(OperationWhat(operation_id) + " has no such step");
                         return change(step->status);
                       })
      .context(action + " step " + Quoted(name) + " of " + OperationWhat(operation_id));
}

namespace {
Error BadTransition(StepStatus from, const char* to) {
  return Conflict("the step is " + std::string(ToString(from)) + ", it cannot become " + to);
}
}  // namespace

Status Store::AddStep(int64_t operation_id, const std::string& name) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_ASSIGN_OR_RETURN(Operation op, LoadOperation(operation_id));
                         if (op.status != OperationStatus::kRunning)
                           return Conflict(OperationWhat(operation_id) + " is " +
                                           std::string(ToString(op.status)));
                         return db_->Exec(
                             "INSERT INTO steps (operation_id, position, name, status, "
                             "undo_json, error) VALUES (?, ?, ?, 'pending', '', '')",
                             operation_id, static_cast<int64_t>(op.steps.size()), name);
                       })
      .context("adding step " + Quoted(name) + " to " + OperationWhat(operation_id));
}

Status Store::StartStep(int64_t operation_id, const std::string& name) {
  return ChangeStep(operation_id, name, "starting", [&](StepStatus from) -> Status {
    // running -> running: a recovered control plane retries the step.
    if (from != StepStatus::kPending && from != StepStatus::kRunning)
      return BadTransition(from, "running");
    return db_->Exec(
        "UPDATE steps SET status = 'running', started_at = ?, finished_at = NULL, error = '' "
        "WHERE operation_id = ? AND name = ?",
        Now(), operation_id, name);
  });
}

Status Store::RecordStepUndo(int64_t operation_id, const std::string& name,
                             const std::string& undo_json) {
  return ChangeStep(operation_id, name, "recording the undo of", [&](StepStatus from) -> Status {
    if (from != StepStatus::kRunning) return BadTransition(from, "running (undo recorded)");
    return db_->Exec("UPDATE steps SET undo_json = ? WHERE operation_id = ? AND name = ?",
                     undo_json, operation_id, name);
  });
}

Status Store::CompleteStep(int64_t operation_id, const std::string& name,
                           const std::string& undo_json) {
  return ChangeStep(operation_id, name, "completing", [&](StepStatus from) -> Status {
    if (from != StepStatus::kPending && from != StepStatus::kRunning)
      return BadTransition(from, "done");
    Millis now = Now();
    return db_->Exec(
        "UPDATE steps SET status = 'done', started_at = coalesce(started_at, ?), "
        "finished_at = ?, undo_json = ? WHERE operation_id = ? AND name = ?",
        now, now, undo_json, operation_id, name);
  });
}

Status Store::FailStep(int64_t operation_id, const std::string& name, const std::string& error) {
  return ChangeStep(operation_id, name, "failing", [&](StepStatus from) -> Status {
    if (from != StepStatus::kPending && from != StepStatus::kRunning)
      return BadTransition(from, "failed");
    Millis now = Now();
    return db_->Exec(
        "UPDATE steps SET status = 'failed', started_at = coalesce(started_at, ?), "
        "finished_at = ?, error = ? WHERE operation_id = ? AND name = ?",
        now, now, error, operation_id, name);
  });
}

Status Store::UndoStep(int64_t operation_id, const std::string& name) {
  return ChangeStep(operation_id, name, "undoing", [&](StepStatus from) -> Status {
    if (from == StepStatus::kPending || from == StepStatus::kUndone)
      return BadTransition(from, "undone");
    return db_->Exec(
        "UPDATE steps SET status = 'undone', finished_at = ? WHERE operation_id = ? AND name = ?",
        Now(), operation_id, name);
  });
}

Status Store::FinishOperation(int64_t operation_id, OperationStatus status,
                              const std::string& error) {
  const std::string what = "finishing " + OperationWhat(operation_id);
  if (status == OperationStatus::kRunning)
    return BadInput("an operation cannot finish as running").context(what);
  return RunAtomically(
             Mode::kWrite,
             [&]() -> Status {
               ADHOC_ASSIGN_OR_RETURN(Operation op, LoadOperation(operation_id));
               if (op.status != OperationStatus::kRunning)
                 return Conflict("it already finished (" + std::string(ToString(op.status)) + ")");
               return db_->Exec(
                   "UPDATE operations SET status = ?, finished_at = ?, error = ? "
                   "WHERE id = ?",
                   ToString(status), Now(), error, operation_id);
             })
      .context(what);
}

Result<Operation> Store::GetOperation(int64_t operation_id) {
  return Atomically<Operation>(Mode::kRead, [&] { return LoadOperation(operation_id); })
      .context("reading " + OperationWhat(operation_id));
}

namespace {
template <typename Load>
Result<std::vector<Operation>> LoadAll(const std::vector<int64_t>& ids, Load load) {
  std::vector<Operation> out;
  for (int64_t id : ids) {
    ADHOC_ASSIGN_OR_RETURN(Operation op, load(id));
    out.push_back(std::move(op));
  }
  return out;
}
}  // namespace

Result<std::vector<Operation>> Store::ListUnfinishedOperations() {
  return Atomically<std::vector<Operation>>(
             Mode::kRead,
             [&]() -> Result<std::vector<Operation>> {
               ADHOC_ASSIGN_OR_RETURN(
                   std::vector<int64_t> ids,
                   QueryIds(*db_,
                            "SELECT id FROM operations WHERE status = 'running' ORDER BY id"));
               return LoadAll(ids, [&](int64_t id) { return LoadOperation(id); });
             })
      .context("listing unfinished operations");
}

Result<std::optional<Operation>> Store::LastOperation(const std::string& env) {
  return Atomically<std::optional<Operation>>(
             Mode::kRead,
             [&]() -> Result<std::optional<Operation>> {
               ADHOC_ASSIGN_OR_RETURN(
                   std::vector<int64_t> ids,
                   QueryIds(*db_,
                            "SELECT id FROM operations WHERE env = ? ORDER BY id DESC LIMIT 1",
                            env));
               if (ids.empty()) return std::optional<Operation>();
               ADHOC_ASSIGN_OR_RETURN(Operation op, LoadOperation(ids.front()));
               return std::optional<Operation>(std::move(op));
             })
      .context("reading the last operation of environment " + Quoted(env));
}

Result<std::vector<Operation>> Store::ListOperations(const std::string& env, int limit) {
  return Atomically<std::vector<Operation>>(
             Mode::kRead,
             [&]() -> Result<std::vector<Operation>> {
               ADHOC_ASSIGN_OR_RETURN(
                   std::vector<int64_t> ids,
                   QueryIds(*db_,
                            "SELECT id FROM operations WHERE env = ? ORDER BY id DESC LIMIT ?", env,
                            static_cast<int64_t>(limit > 0 ? limit : -1)));
               return LoadAll(ids, [&](int64_t id) { return LoadOperation(id); });
             })
      .context("listing operations of environment " + Quoted(env));
}

// --- Events ---

Result<Event> Store::AppendEvent(const std::string& env, const std::string& kind,
                                 const std::string& message) {
  return Atomically<Event>(
             Mode::kWrite,
             [&]() -> Result<Event> {
               Event event{0, Now(), env, kind, message};
               ADHOC_RETURN_IF_ERROR(
                   db_->Exec("INSERT INTO events (time, env, kind, message) VALUES (?, ?, ?, ?)",
                             event.time, env, kind, message));
               event.id = db_->LastInsertId();
               return event;
             })
      .context("recording an event of environment " + Quoted(env));
}

Result<std::vector<Event>> Store::ListEvents(const EventQuery& query) {
  return Atomically<std::vector<Event>>(
             Mode::kRead,
             [&]() -> Result<std::vector<Event>> {
               ADHOC_ASSIGN_OR_RETURN(
                   sqlite::Statement stmt,
                   db_->Prepare("SELECT id, time, env, kind, message FROM events "
                                "WHERE (?1 IS NULL OR env = ?1) AND time >= ?2 "
                                "ORDER BY id DESC LIMIT ?3"));
               ADHOC_RETURN_IF_ERROR(
                   stmt.BindAll(query.env, query.since,
                                static_cast<int64_t>(query.limit > 0 ? query.limit : -1)));
               std::vector<Event> events;
               while (true) {
                 ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
                 if (!row) break;
                 events.push_back(
                     Event{stmt.Int(0), stmt.Int(1), stmt.Text(2), stmt.Text(3), stmt.Text(4)});
               }
               std::reverse(events.begin(), events.end());
               return events;
             })
      .context("listing events");
}

}  // namespace adhoc::state
