// A thin RAII layer over the SQLite C API, used only inside the state module.
//
// Db owns one sqlite3 connection; Statement owns one prepared statement and binds
// parameters by position (1-based, in the order given to Bind/Exec). Errors come
// back as Result/Status carrying SQLite's message; constraint violations are
// kConflict, everything else kFailed. Neither type is thread-safe: the Store
// serialises access with its mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace adhoc::state::sqlite {

using Blob = std::vector<uint8_t>;

// The Error for a failed SQLite call with result code `rc` on `db` (may be null).
Error ErrorFrom(sqlite3* db, int rc);

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Binds each argument to the next parameter. Supported: integers, std::string,
  // std::string_view, const char*, Blob, std::nullopt and std::optional of those.
  template <typename... Args>
  Status BindAll(const Args&... args) {
    Status st;
    (void)((st = Bind(args)).ok() && ...);
    return st;
  }

  // Advances to the next row: true when a row is available, false when done.
  Result<bool> Step();
  // Steps until done, for statements without rows.
  Status Run();

  // Column accessors for the current row (0-based).
  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::optional<int64_t> OptInt(int col) const;
  std::string Text(int col) const;
  Blob Bytes(int col) const;

 private:
  Status Bind(int64_t v);
  Status Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  Status Bind(uint64_t v) { return Bind(static_cast<int64_t>(v)); }
  Status Bind(std::string_view v);
  Status Bind(const std::string& v) { return Bind(std::string_view(v)); }
  Status Bind(const char* v) { return Bind(std::string_view(v)); }
  Status Bind(const Blob& v);
  Status Bind(std::nullopt_t);
  template <typename T>
  Status Bind(const std::optional<T>& v) {
    return v ? Bind(*v) : Bind(std::nullopt);
  }
  Status Check(int rc);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_param_ = 1;
};

class Db {
 public:
  // Opens (creating if absent) the database file at `path`, read-write.
  static Result<Db> Open(const std::string& path);
  Db(Db&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  ~Db();

  sqlite3* raw() const { return db_; }

  Result<Statement> Prepare(std::string_view sql);

  // Prepares, binds and runs a statement that returns no rows.
  template <typename... Args>
  Status Exec(std::string_view sql, const Args&... args) {
    ADHOC_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
    ADHOC_RETURN_IF_ERROR(stmt.BindAll(args...));
    return stmt.Run();
  }

  // Runs one or more semicolon-separated statements without parameters.
  Status ExecScript(const std::string& sql);

  // The first column of the first row of a query, as an integer.
  template <typename... Args>
  Result<int64_t> QueryInt(std::string_view sql, const Args&... args) {
    ADHOC_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
    ADHOC_RETURN_IF_ERROR(stmt.BindAll(args...));
    ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Failed("query returned no row");
    return stmt.Int(0);
  }

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int Changes() const { return sqlite3_changes(db_); }
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace adhoc::state::sqlite
