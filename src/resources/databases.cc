#include "resources/databases.h"

#include <libpq-fe.h>
#include <openssl/rand.h>

#include "common/paths.h"

namespace adhoc::resources {
namespace {

constexpr char kMark[] = "adhoc:";  // every COMMENT adhoc writes starts with this

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class LibpqSession : public SqlSession {
 public:
  explicit LibpqSession(PGconn* conn) : conn_(conn) {}
  ~LibpqSession() override { PQfinish(conn_); }

  Result<std::vector<SqlRow>> Query(const std::string& sql,
                                    const std::vector<std::string>& params) override {
    PGresult* res;
    if (params.empty()) {
      res = PQexec(conn_, sql.c_str());
    } else {
      std::vector<const char*> values;
      for (const auto& p : params) values.push_back(p.c_str());
      res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0);
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> guard(res, &PQclear);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string msg = Trim(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
      if (msg.rfind("ERROR:  ", 0) == 0) msg = msg.substr(8);
      return Failed(msg);
    }
    std::vector<SqlRow> rows;
    for (int r = 0; r < PQntuples(res); ++r) {
      SqlRow row;
      for (int c = 0; c < PQnfields(res); ++c) row.emplace_back(PQgetvalue(res, r, c));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<std::string> EncryptPassword(const std::string& user,
                                      const std::string& password) override {
    char* verifier = PQencryptPasswordConn(conn_, password.c_str(), user.c_str(), "scram-sha-256");
    if (verifier == nullptr) return Failed("hashing a password: " + Trim(PQerrorMessage(conn_)));
    std::string out = verifier;
    PQfreemem(verifier);
    return out;
  }

 private:
  PGconn* conn_;
};

void IgnoreNotice(void*, const char*) {}

Status CheckDatabaseName(const std::string& name) {
  // PostgreSQL silently truncates names to 63 bytes; refuse instead.
  if (name.empty() || name.size() > 63 || name.find('\0') != std::string::npos)
    return BadInput("'" + name + "' is not a valid database name (1-63 bytes)");
  return OkStatus();
}

std::string MarkFor(const std::string& env) { return std::string(kMark) + "env=" + env; }

// The environment a role belongs to, if it is an environment role.
std::string EnvOfRole(const std::string& role) {
  if (role.rfind("env_", 0) != 0) return "";
  std::string env = role.substr(4);
  for (char& c : env)
    if (c == '_') c = '-';
  return env;
}

}  // namespace

Result<std::unique_ptr<SqlSession>> ConnectPostgres(const PostgresConnectParams& p) {
  std::string port = std::to_string(p.port);
  std::string timeout = std::to_string(p.connect_timeout.count());
  const char* keys[] = {
      "host", "port", "dbname", "user", "password", "connect_timeout", "application_name", nullptr};
  const char* values[] = {p.host.c_str(),
                          port.c_str(),
                          p.database.c_str(),
                          p.user.c_str(),
                          p.password.c_str(),
                          timeout.c_str(),
                          "adhoc",
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 0);
  if (conn == nullptr) return Failed("connecting to PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = Trim(PQerrorMessage(conn));
    PQfinish(conn);
    return Failed("connecting to database '" + p.database + "' as '" + p.user + "' at " + p.host +
                  ":" + port + ": " + msg);
  }
  PQsetNoticeProcessor(conn, &IgnoreNotice, nullptr);
  return std::unique_ptr<SqlSession>(std::make_unique<LibpqSession>(conn));
}

Result<std::unique_ptr<SqlSession>> ConnectPostgresAdmin(const std::filesystem::path& home,
                                                         int port, const std::string& database) {
  PostgresConnectParams p;
  p.host = paths::PostgresRun(home).string();
  p.port = port;
  p.database = database;
  return ConnectPostgres(p);
}

Result<std::string> RoleNameFor(const std::string& env) {
  bool valid = !env.empty() && env.size() <= 40 && env[0] >= 'a' && env[0] <= 'z';
  for (char c : env)
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!valid)
    return BadInput("'" + env +
                    "' is not an environment name ([a-z0-9-], 1-40, starting with a letter)");
  std::string role = "env_" + env;
  for (char& c : role)
    if (c == '-') c = '_';
  return role;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string q = "\"";
  for (char c : name) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string QuoteLiteral(const std::string& text) {
  std::string q = "'";
  for (char c : text) {
    if (c == '\'') q += '\'';
    q += c;
  }
  return q + "'";
}

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string RandomPassword(int length) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  constexpr unsigned kSize = sizeof(kAlphabet) - 1;  // 62
  std::string out;
  while (static_cast<int>(out.size()) < length) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1) abort();  // no entropy: nothing safe to do
    for (unsigned char b : buf) {
      // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
      if (b < 4 * kSize && static_cast<int>(out.size()) < length) out += kAlphabet[b % kSize];
    }
  }
  return out;
}

EnvironmentDatabases::EnvironmentDatabases(SqlSession& admin, std::string public_host,
                                           int public_port)
    : admin_(admin),
      public_host_(std::move(public_host)),
      public_port_(public_port),
      password_source_([] { return RandomPassword(); }) {}

Result<bool> EnvironmentDatabases::DatabaseExists(const std::string& database) {
  ADHOC_ASSIGN_OR_RETURN(auto rows,
                         admin_.Query("SELECT 1 FROM pg_database WHERE datname = $1", {database}));
  return !rows.empty();
}

Result<bool> EnvironmentDatabases::RoleExists(const std::string& role) {
  ADHOC_ASSIGN_OR_RETURN(auto rows,
                         admin_.Query("SELECT 1 FROM pg_roles WHERE rolname = $1", {role}));
  return !rows.empty();
}

Status EnvironmentDatabases::LockDownSharedDatabases() {
  // New databases grant CONNECT to PUBLIC; the shared ones must not let env roles in. Two
  // environments created at once would update the same catalog rows ("tuple concurrently
  // updated"): one statement string is one transaction, and its advisory lock serializes them.
  return Status(
             admin_.Query("SELECT pg_advisory_xact_lock(7242001); "
                          "REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC"))
      .context("closing the shared databases to environment roles");
}

namespace {

// An environment database's grants and mark, as one statement string (one transaction).
std::string RestrictToOwnerSql(const std::string& database, const std::string& role,
                               const std::string& env) {
  const std::string db = QuoteIdentifier(database);
  return "REVOKE ALL ON DATABASE " + db + " FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE " +
         db + " TO " + QuoteIdentifier(role) + "; COMMENT ON DATABASE " + db + " IS " +
         QuoteLiteral(env.empty() ? kMark : MarkFor(env));
}

}  // namespace

Status EnvironmentDatabases::RestrictToOwner(const std::string& database, const std::string& role,
                                             const std::string& env) {
  return Status(admin_.Query(RestrictToOwnerSql(database, role, env)));
}

Result<PostgresCredentials> EnvironmentDatabases::CreateEnvironmentDatabase(
    const std::string& env, const std::string& database, bool new_password, bool make_database) {
  const std::string what = "creating database '" + database + "' for environment '" + env + "'";
  auto fail = [&](Error e) { return e.context(what); };
  auto role_name = RoleNameFor(env);
  if (!role_name.ok()) return fail(role_name.error());
  const std::string role = *role_name;
  if (auto s = CheckDatabaseName(database); !s.ok()) return fail(s.error());
  if (auto s = LockDownSharedDatabases(); !s.ok()) return fail(s.error());

  auto role_exists = RoleExists(role);
  if (!role_exists.ok()) return fail(role_exists.error());
  PostgresCredentials creds{public_host_, public_port_, database, role, "", ""};
  if (!*role_exists || new_password) {
    creds.password = password_source_();
    auto verifier = admin_.EncryptPassword(role, creds.password);
    if (!verifier.ok()) return fail(verifier.error());
    std::string sql = *role_exists ? "ALTER ROLE " + QuoteIdentifier(role) + " WITH LOGIN"
                                   : "CREATE ROLE " + QuoteIdentifier(role) +
                                         " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE";
    auto made = admin_.Query(sql + " PASSWORD " + QuoteLiteral(*verifier));
    if (!made.ok()) return fail(std::move(made).error().context("role '" + role + "'"));
  }
  // A role made by this call goes again if a later step fails: nothing left behind.
  auto undo = [&](Error e) {
    if (!*role_exists) (void)admin_.Query("DROP ROLE IF EXISTS " + QuoteIdentifier(role));
    return fail(std::move(e));
  };
  if (auto s = admin_.Query("COMMENT ON ROLE " + QuoteIdentifier(role) + " IS " +
                            QuoteLiteral(MarkFor(env)));
      !s.ok())
    return undo(s.error());

  auto owner = admin_.Query(
      "SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
      "WHERE d.datname = $1",
      {database});
  if (!owner.ok()) return undo(owner.error());
  if (!make_database && !owner->empty() && (*owner)[0][0] != role)
    return undo(Conflict("the database exists and belongs to role '" + (*owner)[0][0] + "'"));
  bool made_database = false;
  if (!make_database) {
    // The copy that makes it restricts it to the role.
  } else if (owner->empty()) {
    auto made = admin_.Query("CREATE DATABASE " + QuoteIdentifier(database) + " OWNER " +
                             QuoteIdentifier(role) + " ENCODING 'UTF8'");
    if (!made.ok()) return undo(made.error());
    made_database = true;
  } else if ((*owner)[0][0] != role) {
    return undo(Conflict("the database exists and belongs to role '" + (*owner)[0][0] + "'"));
  }
  if (auto s = make_database ? RestrictToOwner(database, role, env) : OkStatus(); !s.ok()) {
    if (made_database)
      (void)admin_.Query("DROP DATABASE IF EXISTS " + QuoteIdentifier(database) + " WITH (FORCE)");
    return undo(s.error());
  }
  if (!creds.password.empty())
    creds.url = "postgres://" + UrlEncode(role) + ":" + UrlEncode(creds.password) + "@" +
                public_host_ + ":" + std::to_string(public_port_) + "/" + UrlEncode(database);
  else
    creds.url = "postgres://" + UrlEncode(role) + "@" + public_host_ + ":" +
                std::to_string(public_port_) + "/" + UrlEncode(database);
  return creds;
}

Status EnvironmentDatabases::DropEnvironmentDatabase(const std::string& env,
                                                     const std::string& database) {
  const std::string what = "dropping database '" + database + "' of environment '" + env + "'";
  auto role = RoleNameFor(env);
  if (!role.ok()) return Status(role).context(what);
  if (auto s = CheckDatabaseName(database); !s.ok()) return std::move(s).context(what);
  auto owner = admin_.Query(
      "SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
      "WHERE d.datname = $1",
      {database});
  if (!owner.ok()) return Status(owner).context(what);
  if (!owner->empty() && (*owner)[0][0] != *role)
    return Conflict("it belongs to role '" + (*owner)[0][0] + "', not to '" + *role + "'")
        .context(what);
  // WITH (FORCE) ends the environment's open connections first (PostgreSQL 13+).
  if (auto s =
          admin_.Query("DROP DATABASE IF EXISTS " + QuoteIdentifier(database) + " WITH (FORCE)");
      !s.ok())
    return Status(s).context(what);
  // The role goes with its last database (its start copy for `adhoc reset` may remain).
  auto left = admin_.Query(
      "SELECT count(*) FROM pg_database d, pg_authid a WHERE d.datdba = a.oid AND a.rolname = $1",
      {*role});
  if (!left.ok()) return Status(left).context(what);
  if (!left->empty() && !left->front().empty() && left->front()[0] != "0") return OkStatus();
  if (auto s = admin_.Query("DROP ROLE IF EXISTS " + QuoteIdentifier(*role)); !s.ok())
    return Status(s).context(what + ": role '" + *role + "'");
  return OkStatus();
}

Status EnvironmentDatabases::DropEnvironmentRole(const std::string& env) {
  auto role = RoleNameFor(env);
  if (!role.ok()) return Status(role).context("dropping the role of '" + env + "'");
  return admin_.Query("DROP ROLE IF EXISTS " + QuoteIdentifier(*role)).ok()
             ? OkStatus()
             : Failed("dropping role '" + *role + "' of '" + env + "' failed");
}

Status EnvironmentDatabases::CloneDatabase(const std::string& template_database,
                                           const std::string& new_database,
                                           const std::string& owner) {
  const std::string what =
      "cloning database '" + template_database + "' into '" + new_database + "'";
  if (auto s = CheckDatabaseName(template_database); !s.ok()) return std::move(s).context(what);
  if (auto s = CheckDatabaseName(new_database); !s.ok()) return std::move(s).context(what);
  auto exists = RoleExists(owner);
  if (!exists.ok()) return Status(exists).context(what);
  if (!*exists) return NotFound("no role '" + owner + "'").context(what);
  if (auto s = LockDownSharedDatabases(); !s.ok()) return std::move(s).context(what);
  if (auto s =
          admin_.Query("CREATE DATABASE " + QuoteIdentifier(new_database) + " TEMPLATE " +
                       QuoteIdentifier(template_database) + " OWNER " + QuoteIdentifier(owner));
      !s.ok())
    return Status(s).context(what);
  if (auto s = RestrictToOwner(new_database, owner, EnvOfRole(owner)); !s.ok()) {
    (void)admin_.Query("DROP DATABASE IF EXISTS " + QuoteIdentifier(new_database) +
                       " WITH (FORCE)");
    return std::move(s).context(what);
  }
  return OkStatus();
}

Status EnvironmentDatabases::AdoptDatabase(const std::string& made, const std::string& database,
                                           const std::string& owner) {
  const std::string what =
      "handing database '" + made + "' to '" + owner + "' as '" + database + "'";
  if (auto s = CheckDatabaseName(made); !s.ok()) return std::move(s).context(what);
  if (auto s = CheckDatabaseName(database); !s.ok()) return std::move(s).context(what);
  if (auto s = LockDownSharedDatabases(); !s.ok()) return std::move(s).context(what);
  // One transaction: a control plane killed half way leaves either the spare untouched or an
  // environment database marked as such (its undo drops it), never one that no one owns.
  return Status(admin_.Query("ALTER DATABASE " + QuoteIdentifier(made) + " RENAME TO " +
                             QuoteIdentifier(database) + "; ALTER DATABASE " +
                             QuoteIdentifier(database) + " OWNER TO " + QuoteIdentifier(owner) +
                             "; " + RestrictToOwnerSql(database, owner, EnvOfRole(owner))))
      .context(what);
}

Result<std::vector<std::string>> EnvironmentDatabases::DatabasesOf(const std::string& env) {
  ADHOC_ASSIGN_OR_RETURN(std::string role, RoleNameFor(env));
  ADHOC_ASSIGN_OR_RETURN(
      auto rows, admin_.Query("SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = "
                              "d.datdba WHERE r.rolname = $1 OR "
                              "shobj_description(d.oid, 'pg_database') = $2 ORDER BY 1",
                              {role, MarkFor(env)}));
  std::vector<std::string> out;
  for (const SqlRow& row : rows)
    if (!row.empty()) out.push_back(row[0]);
  return out;
}

Result<std::vector<ManagedObject>> EnvironmentDatabases::ListEnvironmentDatabases() {
  auto rows = admin_.Query(
      "SELECT 'database', d.datname, shobj_description(d.oid, 'pg_database'), r.rolname "
      "FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
      "WHERE shobj_description(d.oid, 'pg_database') LIKE 'adhoc:%' "
      "UNION ALL "
      "SELECT 'role', rolname, shobj_description(oid, 'pg_authid'), '' FROM pg_roles "
      "WHERE shobj_description(oid, 'pg_authid') LIKE 'adhoc:%' "
      "ORDER BY 1, 2");
  if (!rows.ok()) return std::move(rows).error().context("listing adhoc's databases and roles");
  std::vector<ManagedObject> out;
  for (const SqlRow& row : *rows) {
    if (row.size() < 4) continue;
    ManagedObject o;
    o.kind = row[0] == "role" ? ManagedObject::Kind::kRole : ManagedObject::Kind::kDatabase;
    o.name = row[1];
    const std::string env_mark = MarkFor("");
    if (row[2].rfind(env_mark, 0) == 0) o.env = row[2].substr(env_mark.size());
    o.owner = row[3];
    out.push_back(std::move(o));
  }
  return out;
}

Result<std::map<std::string, uint64_t>> EnvironmentDatabases::DatabaseSizes() {
  const std::string env_mark = MarkFor("");
  auto rows = admin_.Query(
      "SELECT shobj_description(oid, 'pg_database'), pg_database_size(oid) FROM pg_database "
      "WHERE shobj_description(oid, 'pg_database') LIKE $1",
      {env_mark + "%"});
  if (!rows.ok()) return std::move(rows).error().context("measuring adhoc's databases");
  std::map<std::string, uint64_t> out;
  for (const SqlRow& row : *rows) {
    if (row.size() < 2 || row[0].rfind(env_mark, 0) != 0) continue;
    try {
      out[row[0].substr(env_mark.size())] += std::stoull(row[1]);
    } catch (const std::exception&) {
    }
  }
  return out;
}

}  // namespace adhoc::resources
