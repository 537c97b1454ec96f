// Expiry warnings: the part of Store that remembers which expiry of each environment a
// [notify] webhook was warned of.
#include "state/sqlite.h"
#include "state/store.h"

namespace adhoc::state {

Status Store::PutExpiryWarning(ExpiryWarning warning) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(warning.env));
                         if (warning.warned_at == 0) warning.warned_at = Now();
                         return db_->Exec(
                             "INSERT INTO expiry_warnings (env, expires_at, warned_at) "
                             "VALUES (?, ?, ?) ON CONFLICT (env) DO UPDATE SET "
                             "expires_at = excluded.expires_at, warned_at = excluded.warned_at",
                             warning.env, warning.expires_at, warning.warned_at);
                       })
      .context("recording the expiry warning of environment '" + warning.env + "'");
}

Result<std::map<std::string, ExpiryWarning>> Store::ListExpiryWarnings() {
  std::map<std::string, ExpiryWarning> out;
  Status st = RunAtomically(Mode::kRead, [&]() -> Status {
    ADHOC_ASSIGN_OR_RETURN(
        sqlite::Statement stmt,
        db_->Prepare("SELECT env, expires_at, warned_at FROM expiry_warnings ORDER BY env"));
    while (true) {
      ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out[stmt.Text(0)] = ExpiryWarning{stmt.Text(0), stmt.Int(1), stmt.Int(2)};
    }
    return OkStatus();
  });
  if (!st.ok()) return std::move(st).context("listing expiry warnings").error();
  return out;
}

}  // namespace adhoc::state
