#include "state/sqlite.h"

namespace adhoc::state::sqlite {

Error ErrorFrom(sqlite3* db, int rc) {
  std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return Conflict(message);
  return Failed(message);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), next_param_(other.next_param_) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Status Statement::Check(int rc) {
  if (rc != SQLITE_OK) return ErrorFrom(db_, rc);
  return OkStatus();
}

Status Statement::Bind(int64_t v) { return Check(sqlite3_bind_int64(stmt_, next_param_++, v)); }

Status Statement::Bind(std::string_view v) {
  return Check(
      sqlite3_bind_text64(stmt_, next_param_++, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

Status Statement::Bind(const Blob& v) {
  // A zero-length blob must stay a blob, not NULL: sqlite3_bind_zeroblob does that.
  if (v.empty()) return Check(sqlite3_bind_zeroblob(stmt_, next_param_++, 0));
  return Check(sqlite3_bind_blob64(stmt_, next_param_++, v.data(), v.size(), SQLITE_TRANSIENT));
}

Status Statement::Bind(std::nullopt_t) { return Check(sqlite3_bind_null(stmt_, next_param_++)); }

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return ErrorFrom(db_, rc);
}

Status Statement::Run() {
  while (true) {
    ADHOC_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return OkStatus();
  }
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::optional<int64_t> Statement::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

std::string Statement::Text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  if (!text) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, col));
}

Blob Statement::Bytes(int col) const {
  const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  int size = sqlite3_column_bytes(stmt_, col);
  if (!data || size <= 0) return {};
  return Blob(data, data + size);
}

Result<Db> Db::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = ErrorFrom(raw, rc);
    sqlite3_close(raw);
    return error;
  }
  sqlite3_extended_result_codes(raw, 1);
  return Db(raw);
}

Db::~Db() {
  if (db_) sqlite3_close(db_);
}

Result<Statement> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return ErrorFrom(db_, rc);
  return Statement(db_, stmt);
}

Status Db::ExecScript(const std::string& sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return OkStatus();
  std::string text = message ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return Conflict(text);
  return Failed(text);
}

}  // namespace adhoc::state::sqlite
