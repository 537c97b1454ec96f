#include "state/schema.h"

#include <array>

namespace adhoc::state {
namespace {

// Every table is STRICT so a wrong type is an error, not a silent conversion.
// Environment-scoped rows cascade away with their environment.
constexpr const char* kCoreRecords = R"sql(
CREATE TABLE environments (
  name TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_request_at INTEGER,
  ttl_seconds INTEGER,
  sleep_after_seconds INTEGER,
  address_block TEXT NOT NULL,
  hostname TEXT NOT NULL,
  url TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  env_file_hash TEXT NOT NULL
) STRICT;
CREATE TABLE versions (
  env TEXT NOT NULL REFERENCES environments(name) ON DELETE CASCADE,
  image TEXT NOT NULL,
  ref TEXT NOT NULL,
  commit_id TEXT NOT NULL,
  tree TEXT NOT NULL,
  release_path TEXT NOT NULL,
  deployed_at INTEGER NOT NULL,
  PRIMARY KEY (env, image)
) STRICT;
CREATE TABLE randoms (
  env TEXT NOT NULL REFERENCES environments(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (env, name)
) STRICT;
CREATE TABLE secrets (
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  ciphertext BLOB NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (scope, name)
) STRICT;
CREATE TABLE database_credentials (
  env TEXT PRIMARY KEY REFERENCES environments(name) ON DELETE CASCADE,
  role TEXT NOT NULL,
  password TEXT NOT NULL,
  database TEXT NOT NULL
) STRICT;
CREATE TABLE tasks (
  env TEXT NOT NULL REFERENCES environments(name) ON DELETE CASCADE,
  id TEXT NOT NULL,
  process TEXT NOT NULL,
  kind TEXT NOT NULL,
  generation TEXT NOT NULL,
  address TEXT NOT NULL,
  port INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  start_time INTEGER NOT NULL,
  shim_pid INTEGER NOT NULL,
  shim_start_time INTEGER NOT NULL,
  status TEXT NOT NULL,
  restarts INTEGER NOT NULL,
  exit_code INTEGER,
  release_path TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  PRIMARY KEY (env, id)
) STRICT;
CREATE TABLE task_counters (
  env TEXT NOT NULL REFERENCES environments(name) ON DELETE CASCADE,
  process TEXT NOT NULL,
  last INTEGER NOT NULL,
  PRIMARY KEY (env, process)
) STRICT;
CREATE TABLE routes (
  env TEXT NOT NULL REFERENCES environments(name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  pattern TEXT NOT NULL,
  priority INTEGER,
  service TEXT NOT NULL,
  kind TEXT NOT NULL,
  folder_path TEXT NOT NULL,
  PRIMARY KEY (env, position)
) STRICT;
CREATE TABLE address_blocks (
  block TEXT PRIMARY KEY,
  env TEXT NOT NULL REFERENCES environments(name) ON DELETE CASCADE,
  allocated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX address_blocks_by_env ON address_blocks(env);
)sql";

// Operations and events outlive their environment (history), so no foreign key
// to environments; steps go with their operation.
constexpr const char* kJournal = R"sql(
CREATE TABLE operations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  env TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  error TEXT NOT NULL,
  input_json TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX operations_one_running_per_env ON operations(env) WHERE status = 'running';
CREATE INDEX operations_by_env ON operations(env, id);
CREATE TABLE steps (
  operation_id INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  undo_json TEXT NOT NULL,
  error TEXT NOT NULL,
  PRIMARY KEY (operation_id, position),
  UNIQUE (operation_id, name)
) STRICT;
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  env TEXT NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_env ON events(env, id);
)sql";

constexpr const char* kSlots = R"sql(
CREATE TABLE slots (
  env TEXT PRIMARY KEY REFERENCES environments(name) ON DELETE CASCADE,
  slot INTEGER NOT NULL UNIQUE
) STRICT;
)sql";

// Snapshots outlive the environment they were taken of (an environment is made from one
// after its source is gone), so no foreign key to environments.
constexpr const char* kSnapshots = R"sql(
CREATE TABLE snapshots (
  name TEXT PRIMARY KEY,
  env TEXT NOT NULL,
  versions_json TEXT NOT NULL,
  path TEXT NOT NULL,
  database_bytes INTEGER NOT NULL,
  redis_bytes INTEGER NOT NULL,
  redis_keys INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
)sql";

// The expiry each environment was last warned of ([notify]'s `expiring` notice), so that a
// restarted control plane does not warn twice; it goes with its environment.
constexpr const char* kExpiryWarnings = R"sql(
CREATE TABLE expiry_warnings (
  env TEXT PRIMARY KEY REFERENCES environments(name) ON DELETE CASCADE,
  expires_at INTEGER NOT NULL,
  warned_at INTEGER NOT NULL
) STRICT;
)sql";

constexpr std::array<Migration, 5> kMigrations{{
    {1, "environments, versions, randoms, secrets, credentials, tasks, routes, blocks",
     kCoreRecords},
    {2, "operation journal and events", kJournal},
    {3, "slots for cloud renders", kSlots},
    {4, "data snapshots", kSnapshots},
    {5, "expiry warnings of [notify]", kExpiryWarnings},
}};

std::string NewerMessage(const std::string& path, int found) {
  return "state file " + path + " was written by a newer adhoc (schema " + std::to_string(found) +
         "; this adhoc knows up to " + std::to_string(CurrentSchemaVersion()) + "): upgrade adhoc";
}

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

int CurrentSchemaVersion() { return kMigrations.back().version; }

Result<int> SchemaVersion(sqlite::Db& db) {
  ADHOC_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
  return static_cast<int>(version);
}

Status CheckNotNewer(sqlite::Db& db, const std::string& path) {
  ADHOC_ASSIGN_OR_RETURN(int version, SchemaVersion(db));
  if (version > CurrentSchemaVersion()) return Failed(NewerMessage(path, version));
  return OkStatus();
}

Status MigrateToCurrent(sqlite::Db& db, const std::string& path) {
  ADHOC_RETURN_IF_ERROR(db.ExecScript("BEGIN IMMEDIATE").context("migrating state file " + path));
  bool newer = false;
  auto migrate = [&]() -> Status {
    // Read again under the write lock: another process may have migrated meanwhile.
    ADHOC_ASSIGN_OR_RETURN(int version, SchemaVersion(db));
    if (version > CurrentSchemaVersion()) {
      newer = true;
      return Failed(NewerMessage(path, version));
    }
    for (const Migration& m : kMigrations) {
      if (m.version <= version) continue;
      Status st = db.ExecScript(m.sql);
      if (!st.ok())
        return std::move(st).context("applying migration " + std::to_string(m.version) + " (" +
                                     m.description + ")");
      ADHOC_RETURN_IF_ERROR(db.ExecScript("PRAGMA user_version = " + std::to_string(m.version)));
    }
    return OkStatus();
  };
  Status st = migrate();
  if (!st.ok()) {
    (void)db.ExecScript("ROLLBACK");
    if (newer) return st;  // the message already names the file
    return std::move(st).context("migrating state file " + path);
  }
  return db.ExecScript("COMMIT").context("migrating state file " + path);
}

}  // namespace adhoc::state
