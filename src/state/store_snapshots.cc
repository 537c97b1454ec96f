// Snapshots: the part of Store that records saved data (`adhoc snapshot`), which outlives the
// environment it was taken of.
#include "state/sqlite.h"
#include "state/store.h"

namespace adhoc::state {
namespace {

constexpr const char* kSnapshotColumns =
    "name, env, versions_json, path, database_bytes, redis_bytes, redis_keys, created_at";

Snapshot ReadSnapshot(const sqlite::Statement& s) {
  return Snapshot{s.Text(0), s.Text(1), s.Text(2), s.Text(3),
                  s.Int(4),  s.Int(5),  s.Int(6),  s.Int(7)};
}

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

Status Store::PutSnapshot(Snapshot snapshot) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         if (snapshot.created_at == 0) snapshot.created_at = Now();
                         Status inserted =
                             db_->Exec(std::string("INSERT INTO snapshots (") + kSnapshotColumns +
                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                       snapshot.name, snapshot.env, snapshot.versions_json,
                                       snapshot.path, snapshot.database_bytes, snapshot.redis_bytes,
                                       snapshot.redis_keys, snapshot.created_at);
                         if (!inserted.ok() && inserted.error().kind() == ErrorKind::kConflict)
                           return Conflict("a snapshot of that name exists");
                         return inserted;
                       })
      .context("recording snapshot " + Quoted(snapshot.name));
}

Result<std::optional<Snapshot>> Store::FindSnapshot(const std::string& name) {
  std::optional<Snapshot> found;
  Status st = RunAtomically(Mode::kRead, [&]() -> Status {
    ADHOC_ASSIGN_OR_RETURN(
        sqlite::Statement stmt,
        db_->Prepare(std::string("SELECT ") + kSnapshotColumns + " FROM snapshots WHERE name = ?"));
    ADHOC_RETURN_IF_ERROR(stmt.BindAll(name));
    ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) found = ReadSnapshot(stmt);
    return OkStatus();
  });
  if (!st.ok()) return std::move(st).context("reading snapshot " + Quoted(name)).error();
  return found;
}

Result<std::vector<Snapshot>> Store::ListSnapshots() {
  std::vector<Snapshot> out;
  Status st = RunAtomically(Mode::kRead, [&]() -> Status {
    ADHOC_ASSIGN_OR_RETURN(
        sqlite::Statement stmt,
        db_->Prepare(std::string("SELECT ") + kSnapshotColumns + " FROM snapshots ORDER BY name"));
    while (true) {
      ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(ReadSnapshot(stmt));
    }
    return OkStatus();
  });
  if (!st.ok()) return std::move(st).context("listing snapshots").error();
  return out;
}

Status Store::DeleteSnapshot(const std::string& name) {
  return RunAtomically(Mode::kWrite,
                       [&] { return db_->Exec("DELETE FROM snapshots WHERE name = ?", name); })
      .context("deleting snapshot " + Quoted(name));
}

}  // namespace adhoc::state
