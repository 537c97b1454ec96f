#include "state/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>

#include "state/schema.h"
#include "state/sqlite.h"

namespace adhoc::state {
namespace {

namespace fs = std::filesystem;

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

constexpr const char* kEnvironmentColumns =
    "name, status, owner, created_at, updated_at, last_request_at, ttl_seconds, "
    "sleep_after_seconds, address_block, hostname, url, spec_json, env_file_hash";

Result<Environment> ReadEnvironment(const sqlite::Statement& s) {
  Environment e;
  e.name = s.Text(0);
  ADHOC_ASSIGN_OR_RETURN(e.status, ParseEnvStatus(s.Text(1)));
  e.owner = s.Text(2);
  e.created_at = s.Int(3);
  e.updated_at = s.Int(4);
  e.last_request_at = s.OptInt(5);
  e.ttl_seconds = s.OptInt(6);
  e.sleep_after_seconds = s.OptInt(7);
  e.address_block = s.Text(8);
  e.hostname = s.Text(9);
  e.url = s.Text(10);
  e.spec_json = s.Text(11);
  e.env_file_hash = s.Text(12);
  return e;
}

constexpr const char* kVersionColumns =
    "env, image, ref, commit_id, tree, release_path, deployed_at";

Version ReadVersion(const sqlite::Statement& s) {
  return Version{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5), s.Int(6)};
}

constexpr const char* kTaskColumns =
    "env, id, process, kind, generation, address, port, pid, start_time, shim_pid, "
    "shim_start_time, status, restarts, exit_code, release_path, started_at, ended_at";

Result<Task> ReadTask(const sqlite::Statement& s) {
  Task t;
  t.env = s.Text(0);
  t.id = s.Text(1);
  t.process = s.Text(2);
  t.kind = s.Text(3);
  t.generation = s.Text(4);
  t.address = s.Text(5);
  t.port = static_cast<int>(s.Int(6));
  t.pid = s.Int(7);
  t.start_time = static_cast<uint64_t>(s.Int(8));
  t.shim_pid = s.Int(9);
  t.shim_start_time = static_cast<uint64_t>(s.Int(10));
  ADHOC_ASSIGN_OR_RETURN(t.status, ParseTaskStatus(s.Text(11)));
  t.restarts = static_cast<int>(s.Int(12));
  if (auto code = s.OptInt(13)) t.exit_code = static_cast<int>(*code);
  t.release_path = s.Text(14);
  t.started_at = s.Int(15);
  t.ended_at = s.OptInt(16);
  return t;
}

constexpr const char* kRouteColumns =
    "env, hostname, pattern, priority, service, kind, folder_path";

Result<Route> ReadRoute(const sqlite::Statement& s) {
  Route r;
  r.env = s.Text(0);
  r.hostname = s.Text(1);
  r.pattern = s.Text(2);
  if (auto p = s.OptInt(3)) r.priority = static_cast<int>(*p);
  r.service = s.Text(4);
  ADHOC_ASSIGN_OR_RETURN(r.kind, ParseRouteKind(s.Text(5)));
  r.folder_path = s.Text(6);
  return r;
}

// Runs a prepared query with args and reads every row with `read`.
template <typename T, typename Read, typename... Args>
Result<std::vector<T>> QueryAll(sqlite::Db& db, const std::string& sql, Read read,
                                const Args&... args) {
  ADHOC_ASSIGN_OR_RETURN(sqlite::Statement stmt, db.Prepare(sql));
  ADHOC_RETURN_IF_ERROR(stmt.BindAll(args...));
  std::vector<T> out;
  while (true) {
    ADHOC_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ADHOC_ASSIGN_OR_RETURN(T value, Result<T>(read(stmt)));
    out.push_back(std::move(value));
  }
  return out;
}

// Like QueryAll, for at most one row: nullopt when there is none.
template <typename T, typename Read, typename... Args>
Result<std::optional<T>> QueryOne(sqlite::Db& db, const std::string& sql, Read read,
                                  const Args&... args) {
  ADHOC_ASSIGN_OR_RETURN(std::vector<T> rows, QueryAll<T>(db, sql, read, args...));
  if (rows.empty()) return std::optional<T>();
  return std::optional<T>(std::move(rows.front()));
}

}  // namespace

Store::Store(fs::path path, std::unique_ptr<sqlite::Db> db, StoreOptions options)
    : path_(std::move(path)), db_(std::move(db)), clock_(std::move(options.clock)) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const fs::path& path, StoreOptions options) {
  const std::string where = "opening state file " + path.string();
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      return Failed("creating folder " + path.parent_path().string() + ": " + ec.message())
          .context(where);
  }
  // Created 0600 before SQLite opens it: SQLite would make it 0644 (umask permitting), and
  // makes the -wal and -shm files with the main file's mode.
  {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Failed(std::string("creating: ") + strerror(errno)).context(where);
    bool tightened = fchmod(fd, 0600) == 0;
    close(fd);
    for (const char* suffix : {"-wal", "-shm"}) {
      fs::path side = path;
      side += suffix;
      if (chmod(side.c_str(), 0600) != 0 && errno != ENOENT) tightened = false;
    }
    if (!tightened) return Failed(std::string("chmod 0600: ") + strerror(errno)).context(where);
  }
  auto opened = sqlite::Db::Open(path.string());
  if (!opened.ok()) return std::move(opened).error().context(where);
  auto db = std::make_unique<sqlite::Db>(std::move(opened).value());
  sqlite3_busy_timeout(db->raw(), static_cast<int>(options.busy_timeout.count()));

  // Nothing below may write before the version check: a newer file stays untouched.
  auto version = SchemaVersion(*db);
  if (!version.ok()) return std::move(version).error().context(where);
  ADHOC_RETURN_IF_ERROR(CheckNotNewer(*db, path.string()));  // its message names the file
  // synchronous = FULL: a committed step (and the undo it recorded) survives a machine crash,
  // not only a process kill; WAL's default of NORMAL would not promise that.
  Status st = db->ExecScript("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL");
  if (!st.ok()) return std::move(st).context(where).error();
  {
    auto mode = db->Prepare("PRAGMA journal_mode = WAL");
    if (!mode.ok()) return std::move(mode).error().context(where);
    auto row = mode->Step();
    if (!row.ok()) return std::move(row).error().context(where);
    if (!*row || mode->Text(0) != "wal")
      return Failed("could not switch to WAL journal mode").context(where);
  }
  ADHOC_RETURN_IF_ERROR(MigrateToCurrent(*db, path.string()));  // names the file
  return std::unique_ptr<Store>(new Store(path, std::move(db), std::move(options)));
}

Status Store::RunAtomically(Mode mode, const std::function<Status()>& fn) {
  std::lock_guard lock(mu_);
  auto guarded = [&]() -> Status {
    try {
      return fn();
    } catch (const std::exception& e) {
      return Failed(std::string("unexpected error: ") + e.what());
    }
  };
  if (depth_ > 0) {
    const std::string savepoint = "nested" + std::to_string(depth_);
    ADHOC_RETURN_IF_ERROR(db_->ExecScript("SAVEPOINT " + savepoint));
    ++depth_;
    Status st = guarded();
    --depth_;
    if (!st.ok()) {
      (void)db_->ExecScript("ROLLBACK TO " + savepoint + "; RELEASE " + savepoint);
      return st;
    }
    return db_->ExecScript("RELEASE " + savepoint);
  }
  // Writers take the write lock up front (IMMEDIATE) so the busy timeout applies,
  // instead of failing when a read transaction later tries to write.
  Status begin = db_->ExecScript(mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!begin.ok()) return std::move(begin).context("starting a transaction");
  depth_ = 1;
  Status st = guarded();
  depth_ = 0;
  if (!st.ok()) {
    (void)db_->ExecScript("ROLLBACK");
    return st;
  }
  Status commit = db_->ExecScript("COMMIT");
  if (!commit.ok()) {
    (void)db_->ExecScript("ROLLBACK");
    return std::move(commit).context("committing");
  }
  return OkStatus();
}

Status Store::Transact(const std::function<Status(Store&)>& fn) {
  return RunAtomically(Mode::kWrite, [&] { return fn(*this); });
}

Status Store::RequireEnvironment(const std::string& env) {
  ADHOC_ASSIGN_OR_RETURN(int64_t n,
                         db_->QueryInt("SELECT count(*) FROM environments WHERE name = ?", env));
  if (n == 0) return NotFound("environment " + Quoted(env) + " is not recorded");
  return OkStatus();
}

// --- Environments ---

Result<std::optional<Environment>> Store::FindEnvironment(const std::string& name) {
  return Atomically<std::optional<Environment>>(Mode::kRead,
                                                [&] {
                                                  return QueryOne<Environment>(
                                                      *db_,
                                                      std::string("SELECT ") + kEnvironmentColumns +
                                                          " FROM environments WHERE name = ?",
                                                      ReadEnvironment, name);
                                                })
      .context("reading environment " + Quoted(name));
}

Result<Environment> Store::GetEnvironment(const std::string& name) {
  ADHOC_ASSIGN_OR_RETURN(auto found, FindEnvironment(name));
  if (!found)
    return NotFound("environment " + Quoted(name) + " is not recorded")
        .context("reading environment " + Quoted(name));
  return std::move(*found);
}

Result<std::vector<Environment>> Store::ListEnvironments() {
  return Atomically<std::vector<Environment>>(Mode::kRead,
                                              [&] {
                                                return QueryAll<Environment>(
                                                    *db_,
                                                    std::string("SELECT ") + kEnvironmentColumns +
                                                        " FROM environments ORDER BY name",
                                                    ReadEnvironment);
                                              })
      .context("listing environments");
}

Result<Environment> Store::PutEnvironment(Environment env) {
  const std::string what = "recording environment " + Quoted(env.name);
  if (env.name.empty()) return BadInput("an environment needs a name").context(what);
  return Atomically<Environment>(
             Mode::kWrite,
             [&]() -> Result<Environment> {
               Millis now = Now();
               if (env.created_at == 0) env.created_at = now;
               env.updated_at = now;
               // On update created_at is kept: an environment is born once.
               ADHOC_RETURN_IF_ERROR(db_->Exec(
                   std::string("INSERT INTO environments (") + kEnvironmentColumns +
                       ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET status = excluded.status, "
                       "owner = excluded.owner, updated_at = excluded.updated_at, "
                       "last_request_at = excluded.last_request_at, "
                       "ttl_seconds = excluded.ttl_seconds, "
                       "sleep_after_seconds = excluded.sleep_after_seconds, "
                       "address_block = excluded.address_block, hostname = excluded.hostname, "
                       "url = excluded.url, spec_json = excluded.spec_json, "
                       "env_file_hash = excluded.env_file_hash",
                   env.name, ToString(env.status), env.owner, env.created_at, env.updated_at,
                   env.last_request_at, env.ttl_seconds, env.sleep_after_seconds, env.address_block,
                   env.hostname, env.url, env.spec_json, env.env_file_hash));
               return GetEnvironment(env.name);
             })
      .context(what);
}

Status Store::SetEnvironmentStatus(const std::string& name, EnvStatus status) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(name));
                         return db_->Exec(
                             "UPDATE environments SET status = ?, updated_at = ? WHERE name = ?",
                             ToString(status), Now(), name);
                       })
      .context("setting status of environment " + Quoted(name));
}

Status Store::RecordRequest(const std::string& name, Millis at) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(name));
                         return db_->Exec(
                             "UPDATE environments SET last_request_at = max(coalesce("
                             "last_request_at, 0), ?) WHERE name = ?",
                             at, name);
                       })
      .context("recording a request to environment " + Quoted(name));
}

Status Store::DeleteEnvironment(const std::string& name) {
  return RunAtomically(
             Mode::kWrite,
             [&]() -> Status {
               ADHOC_RETURN_IF_ERROR(RequireEnvironment(name));
               ADHOC_RETURN_IF_ERROR(db_->Exec("DELETE FROM secrets WHERE scope = ?", name));
               return db_->Exec("DELETE FROM environments WHERE name = ?", name);
             })
      .context("deleting environment " + Quoted(name));
}

// --- Versions ---

Status Store::PutVersion(Version v) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(v.env));
                         if (v.deployed_at == 0) v.deployed_at = Now();
                         return db_->Exec(std::string("INSERT OR REPLACE INTO versions (") +
                                              kVersionColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?)",
                                          v.env, v.image, v.ref, v.commit, v.tree, v.release_path,
                                          v.deployed_at);
                       })
      .context("recording version of " + Quoted(v.image) + " in environment " + Quoted(v.env));
}

Result<Version> Store::GetVersion(const std::string& env, const std::string& image) {
  return Atomically<Version>(Mode::kRead,
                             [&]() -> Result<Version> {
                               ADHOC_ASSIGN_OR_RETURN(
                                   auto found,
                                   QueryOne<Version>(*db_,
                                                     std::string("SELECT ") + kVersionColumns +
                                                         " FROM versions WHERE env = ? AND "
                                                         "image = ?",
                                                     ReadVersion, env, image));
                               if (!found) return NotFound("no version recorded");
                               return std::move(*found);
                             })
      .context("reading version of " + Quoted(image) + " in environment " + Quoted(env));
}

Result<std::vector<Version>> Store::ListVersions(const std::string& env) {
  return Atomically<std::vector<Version>>(Mode::kRead,
                                          [&] {
                                            return QueryAll<Version>(
                                                *db_,
                                                std::string("SELECT ") + kVersionColumns +
                                                    " FROM versions WHERE env = ? ORDER BY image",
                                                ReadVersion, env);
                                          })
      .context("listing versions of environment " + Quoted(env));
}

Status Store::DeleteVersion(const std::string& env, const std::string& image) {
  return RunAtomically(Mode::kWrite,
                       [&] {
                         return db_->Exec("DELETE FROM versions WHERE env = ? AND image = ?", env,
                                          image);
                       })
      .context("deleting version of " + Quoted(image) + " in environment " + Quoted(env));
}

// --- Randoms ---

Result<std::string> Store::GetOrCreateRandom(const std::string& env, const std::string& name,
                                             const std::function<std::string()>& generator) {
  return Atomically<std::string>(
             Mode::kWrite,
             [&]() -> Result<std::string> {
               ADHOC_RETURN_IF_ERROR(RequireEnvironment(env));
               ADHOC_ASSIGN_OR_RETURN(
                   auto found,
                   QueryOne<std::string>(
                       *db_, "SELECT value FROM randoms WHERE env = ? AND name = ?",
                       [](const sqlite::Statement& s) { return s.Text(0); }, env, name));
               if (found) return std::move(*found);
               std::string value = generator();
               ADHOC_RETURN_IF_ERROR(db_->Exec(
                   "INSERT INTO randoms (env, name, value) VALUES (?, ?, ?)", env, name, value));
               return value;
             })
      .context("making random " + Quoted(name) + " of environment " + Quoted(env));
}

Result<std::map<std::string, std::string>> Store::ListRandoms(const std::string& env) {
  using Pair = std::pair<std::string, std::string>;
  auto rows = Atomically<std::vector<Pair>>(Mode::kRead, [&] {
                return QueryAll<Pair>(
                    *db_, "SELECT name, value FROM randoms WHERE env = ? ORDER BY name",
                    [](const sqlite::Statement& s) { return Pair(s.Text(0), s.Text(1)); }, env);
              }).context("listing randoms of environment " + Quoted(env));
  if (!rows.ok()) return std::move(rows).error();
  return std::map<std::string, std::string>(rows->begin(), rows->end());
}

// --- Secrets ---

namespace {
std::string SecretWhat(const std::string& env, const std::string& name) {
  return "secret " + Quoted(name) +
         (env.empty() ? std::string(" of the project") : " of environment " + Quoted(env));
}
Secret ReadSecret(const sqlite::Statement& s) {
  return Secret{s.Text(0), s.Text(1), s.Bytes(2), s.Int(3)};
}
}  // namespace

Status Store::PutSecret(Secret secret) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         if (!secret.env.empty())
                           ADHOC_RETURN_IF_ERROR(RequireEnvironment(secret.env));
                         secret.updated_at = Now();
                         return db_->Exec(
                             "INSERT OR REPLACE INTO secrets (scope, name, ciphertext, "
                             "updated_at) VALUES (?, ?, ?, ?)",
                             secret.env, secret.name, secret.ciphertext, secret.updated_at);
                       })
      .context("recording " + SecretWhat(secret.env, secret.name));
}

Result<Secret> Store::GetSecret(const std::string& env, const std::string& name) {
  return Atomically<Secret>(Mode::kRead,
                            [&]() -> Result<Secret> {
                              ADHOC_ASSIGN_OR_RETURN(
                                  auto found,
                                  QueryOne<Secret>(*db_,
                                                   "SELECT scope, name, ciphertext, updated_at "
                                                   "FROM secrets WHERE scope = ? AND name = ?",
                                                   ReadSecret, env, name));
                              if (!found) return NotFound("no such secret");
                              return std::move(*found);
                            })
      .context("reading " + SecretWhat(env, name));
}

Result<std::vector<Secret>> Store::ListSecrets(const std::string& env) {
  return Atomically<std::vector<Secret>>(
             Mode::kRead,
             [&] {
               return QueryAll<Secret>(*db_,
                                       "SELECT scope, name, ciphertext, updated_at FROM secrets "
                                       "WHERE scope = ? ORDER BY name",
                                       ReadSecret, env);
             })
      .context("listing secrets");
}

Status Store::DeleteSecret(const std::string& env, const std::string& name) {
  return RunAtomically(Mode::kWrite,
                       [&] {
                         return db_->Exec("DELETE FROM secrets WHERE scope = ? AND name = ?", env,
                                          name);
                       })
      .context("deleting " + SecretWhat(env, name));
}

// --- Database credentials ---

Status Store::PutDatabaseCredentials(const DatabaseCredentials& c) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(c.env));
                         return db_->Exec(
                             "INSERT OR REPLACE INTO database_credentials (env, role, password, "
                             "database) VALUES (?, ?, ?, ?)",
                             c.env, c.role, c.password, c.database);
                       })
      .context("recording database credentials of environment " + Quoted(c.env));
}

Result<DatabaseCredentials> Store::GetDatabaseCredentials(const std::string& env) {
  return Atomically<DatabaseCredentials>(
             Mode::kRead,
             [&]() -> Result<DatabaseCredentials> {
               ADHOC_ASSIGN_OR_RETURN(
                   auto found,
                   QueryOne<DatabaseCredentials>(
                       *db_,
                       "SELECT env, role, password, database FROM database_credentials "
                       "WHERE env = ?",
                       [](const sqlite::Statement& s) {
                         return DatabaseCredentials{s.Text(0), s.Text(1), s.Text(2), s.Text(3)};
                       },
                       env));
               if (!found) return NotFound("none recorded");
               return std::move(*found);
             })
      .context("reading database credentials of environment " + Quoted(env));
}

Status Store::DeleteDatabaseCredentials(const std::string& env) {
  return RunAtomically(
             Mode::kWrite,
             [&] { return db_->Exec("DELETE FROM database_credentials WHERE env = ?", env); })
      .context("deleting database credentials of environment " + Quoted(env));
}

// --- Tasks ---

Result<std::string> Store::NextTaskId(const std::string& env, const std::string& process) {
  return Atomically<std::string>(
             Mode::kWrite,
             [&]() -> Result<std::string> {
               ADHOC_RETURN_IF_ERROR(RequireEnvironment(env));
               ADHOC_ASSIGN_OR_RETURN(
                   int64_t n,
                   db_->QueryInt("INSERT INTO task_counters (env, process, last) VALUES (?, ?, 1) "
                                 "ON CONFLICT(env, process) DO UPDATE SET last = last + 1 "
                                 "RETURNING last",
                                 env, process));
               return process + "-" + std::to_string(n);
             })
      .context("numbering a task of " + Quoted(process) + " in environment " + Quoted(env));
}

Status Store::PutTask(const Task& t) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(t.env));
                         std::optional<int64_t> exit_code;
                         if (t.exit_code) exit_code = *t.exit_code;
                         return db_->Exec(
                             std::string("INSERT OR REPLACE INTO tasks (") + kTaskColumns +
                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             t.env, t.id, t.process, t.kind, t.generation, t.address, t.port, t.pid,
                             t.start_time, t.shim_pid, t.shim_start_time, ToString(t.status),
                             t.restarts, exit_code, t.release_path, t.started_at, t.ended_at);
                       })
      .context("recording task " + Quoted(t.id) + " of environment " + Quoted(t.env));
}

Result<Task> Store::GetTask(const std::string& env, const std::string& id) {
  return Atomically<Task>(Mode::kRead,
                          [&]() -> Result<Task> {
                            ADHOC_ASSIGN_OR_RETURN(
                                auto found,
                                QueryOne<Task>(*db_,
                                               std::string("SELECT ") + kTaskColumns +
                                                   " FROM tasks WHERE env = ? AND id = ?",
                                               ReadTask, env, id));
                            if (!found) return NotFound("no such task");
                            return std::move(*found);
                          })
      .context("reading task " + Quoted(id) + " of environment " + Quoted(env));
}

Result<std::vector<Task>> Store::ListTasks(const std::string& env) {
  return Atomically<std::vector<Task>>(
             Mode::kRead,
             [&] {
               return QueryAll<Task>(*db_,
                                     std::string("SELECT ") + kTaskColumns +
                                         " FROM tasks WHERE env = ? ORDER BY started_at, id",
                                     ReadTask, env);
             })
      .context("listing tasks of environment " + Quoted(env));
}

Result<std::vector<Task>> Store::ListAllTasks() {
  return Atomically<std::vector<Task>>(Mode::kRead,
                                       [&] {
                                         return QueryAll<Task>(
                                             *db_,
                                             std::string("SELECT ") + kTaskColumns +
                                                 " FROM tasks ORDER BY env, started_at, id",
                                             ReadTask);
                                       })
      .context("listing tasks");
}

Status Store::DeleteTask(const std::string& env, const std::string& id) {
  return RunAtomically(
             Mode::kWrite,
             [&] { return db_->Exec("DELETE FROM tasks WHERE env = ? AND id = ?", env, id); })
      .context("deleting task " + Quoted(id) + " of environment " + Quoted(env));
}

// --- Routes ---

Status Store::ReplaceRoutes(const std::string& env, const std::vector<Route>& routes) {
  return RunAtomically(Mode::kWrite,
                       [&]() -> Status {
                         ADHOC_RETURN_IF_ERROR(RequireEnvironment(env));
                         ADHOC_RETURN_IF_ERROR(db_->Exec("DELETE FROM routes WHERE env = ?", env));
                         for (size_t i = 0; i < routes.size(); ++i) {
                           const Route& r = routes[i];
                           std::optional<int64_t> priority;
                           if (r.priority) priority = *r.priority;
                           ADHOC_RETURN_IF_ERROR(db_->Exec(
                               "INSERT INTO routes (env, position, hostname, pattern, priority, "
                               "service, kind, folder_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               env, static_cast<int64_t>(i), r.hostname, r.pattern, priority,
                               r.service, ToString(r.kind), r.folder_path));
                         }
                         return OkStatus();
                       })
      .context("replacing routes of environment " + Quoted(env));
}

Result<std::vector<Route>> Store::ListRoutes(const std::string& env) {
  return Atomically<std::vector<Route>>(Mode::kRead,
                                        [&] {
                                          return QueryAll<Route>(
                                              *db_,
                                              std::string("SELECT ") + kRouteColumns +
                                                  " FROM routes WHERE env = ? ORDER BY position",
                                              ReadRoute, env);
                                        })
      .context("listing routes of environment " + Quoted(env));
}

Result<std::vector<Route>> Store::ListAllRoutes() {
  return Atomically<std::vector<Route>>(
             Mode::kRead,
             [&] {
               return QueryAll<Route>(
                   *db_,
                   std::string("SELECT ") + kRouteColumns + " FROM routes ORDER BY env, position",
                   ReadRoute);
             })
      .context("listing routes");
}

// --- Address blocks ---

Status Store::AllocateBlock(const std::string& env, const std::string& block) {
  return RunAtomically(
             Mode::kWrite,
             [&]() -> Status {
               ADHOC_RETURN_IF_ERROR(RequireEnvironment(env));
               ADHOC_ASSIGN_OR_RETURN(
                   auto holder, QueryOne<std::string>(
                                    *db_, "SELECT env FROM address_blocks WHERE block = ?",
                                    [](const sqlite::Statement& s) { return s.Text(0); }, block));
               if (holder && *holder == env) return OkStatus();
               if (holder) return Conflict("it is held by environment " + Quoted(*holder));
               return db_->Exec(
                   "INSERT INTO address_blocks (block, env, allocated_at) VALUES (?, ?, ?)", block,
                   env, Now());
             })
      .context("allocating address block " + block + " to environment " + Quoted(env));
}

Status Store::ReleaseBlock(const std::string& block) {
  return RunAtomically(
             Mode::kWrite,
             [&] { return db_->Exec("DELETE FROM address_blocks WHERE block = ?", block); })
      .context("releasing address block " + block);
}

Result<std::vector<AddressBlock>> Store::ListBlocks() {
  return Atomically<std::vector<AddressBlock>>(
             Mode::kRead,
             [&] {
               return QueryAll<AddressBlock>(
                   *db_, "SELECT block, env, allocated_at FROM address_blocks ORDER BY block",
                   [](const sqlite::Statement& s) {
                     return AddressBlock{s.Text(0), s.Text(1), s.Int(2)};
                   });
             })
      .context("listing address blocks");
}

// --- Slots ---

Result<int> Store::AcquireSlot(const std::string& env) {
  return Atomically<int>(
             Mode::kWrite,
             [&]() -> Result<int> {
               ADHOC_RETURN_IF_ERROR(RequireEnvironment(env));
               ADHOC_ASSIGN_OR_RETURN(std::optional<int> mine, GetSlot(env));
               if (mine) return *mine;
               ADHOC_ASSIGN_OR_RETURN(
                   std::vector<int64_t> used,
                   QueryAll<int64_t>(*db_, "SELECT slot FROM slots ORDER BY slot",
                                     [](const sqlite::Statement& s) { return s.Int(0); }));
               int slot = 1;
               for (int64_t u : used) {
                 if (u > slot) break;
                 if (u == slot) ++slot;
               }
               ADHOC_RETURN_IF_ERROR(
                   db_->Exec("INSERT INTO slots (env, slot) VALUES (?, ?)", env, slot));
               return slot;
             })
      .context("taking a slot for environment " + Quoted(env));
}

Result<std::optional<int>> Store::GetSlot(const std::string& env) {
  return Atomically<std::optional<int>>(
             Mode::kRead,
             [&] {
               return QueryOne<int>(
                   *db_, "SELECT slot FROM slots WHERE env = ?",
                   [](const sqlite::Statement& s) { return static_cast<int>(s.Int(0)); }, env);
             })
      .context("reading the slot of environment " + Quoted(env));
}

Result<std::map<std::string, int>> Store::ListSlots() {
  using Pair = std::pair<std::string, int>;
  auto rows = Atomically<std::vector<Pair>>(Mode::kRead, [&] {
                return QueryAll<Pair>(*db_, "SELECT env, slot FROM slots ORDER BY env",
                                      [](const sqlite::Statement& s) {
                                        return Pair(s.Text(0), static_cast<int>(s.Int(1)));
                                      });
              }).context("listing slots");
  if (!rows.ok()) return std::move(rows).error();
  return std::map<std::string, int>(rows->begin(), rows->end());
}

}  // namespace adhoc::state
