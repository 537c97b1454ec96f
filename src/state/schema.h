// The state file's schema: an ordered list of migrations, versioned by SQLite's
// `PRAGMA user_version` (0 = empty file, N = migrations 1..N applied).
//
// Migrations are only ever appended; a released migration's SQL never changes.
// MigrateToCurrent applies the missing ones in one IMMEDIATE transaction (so two
// processes opening the same file do not both migrate) and refuses, touching
// nothing, a file whose version is newer than this binary knows.
#pragma once

#include <span>
#include <string>

#include "common/result.h"
#include "state/sqlite.h"

namespace adhoc::state {

struct Migration {
  int version;              // 1, 2, 3 ... in order
  const char* description;  // for messages
  const char* sql;          // one or more statements
};

// All migrations, oldest first; Migrations().back().version is the current schema.
std::span<const Migration> Migrations();
int CurrentSchemaVersion();

// The file's schema version (PRAGMA user_version); reads only.
Result<int> SchemaVersion(sqlite::Db& db);

// Fails, before anything is written, when the file's version is newer than
// CurrentSchemaVersion(): "state file F was written by a newer adhoc (schema 7;
// this adhoc knows up to 3): upgrade adhoc". `path` is only used in messages.
Status CheckNotNewer(sqlite::Db& db, const std::string& path);

// Brings the file up to CurrentSchemaVersion() atomically. Errors name the file.
Status MigrateToCurrent(sqlite::Db& db, const std::string& path);

}  // namespace adhoc::state
