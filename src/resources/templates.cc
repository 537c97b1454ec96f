#include "resources/templates.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace adhoc::resources {
namespace {

constexpr char kTemplateMark[] = "adhoc:template=";
constexpr char kSpareMark[] = "adhoc:spare=";

std::string Comment(const std::string& key, const char* state, const std::string& release) {
  return std::string(kTemplateMark) + key + " " + state + " release=" + release;
}

}  // namespace

Result<std::string> TemplateName(const std::string& key) {
  bool valid = key.size() >= 8 && key.size() <= 32;
  for (char c : key) valid = valid && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!valid) return BadInput("'" + key + "' is not a template key (8-32 lowercase hex digits)");
  return "adhoc_tpl_" + key;
}

Result<std::string> SpareName(const std::string& key) {
  ADHOC_RETURN_IF_ERROR(TemplateName(key));
  return "adhoc_spr_" + key;
}

DatabaseTemplates::DatabaseTemplates(SqlSession& admin, AdminConnector connect,
                                     std::string public_host, int public_port)
    : admin_(admin),
      connect_(std::move(connect)),
      public_host_(std::move(public_host)),
      public_port_(public_port),
      password_source_([] { return RandomPassword(); }) {}

Result<bool> DatabaseTemplates::Ready(const std::string& key) {
  ADHOC_ASSIGN_OR_RETURN(std::string name, TemplateName(key));
  ADHOC_ASSIGN_OR_RETURN(auto rows,
                         admin_.Query("SELECT shobj_description(oid, 'pg_database'), "
                                      "datallowconn::text FROM pg_database WHERE datname = $1",
                                      {name}));
  if (rows.empty() || rows[0].size() < 2) return false;
  return rows[0][0].rfind(Comment(key, "ready", ""), 0) == 0 && rows[0][1] == "false";
}

Result<PostgresCredentials> DatabaseTemplates::BeginBuild(const std::string& key,
                                                          const std::string& release) {
  ADHOC_ASSIGN_OR_RETURN(std::string name, TemplateName(key));
  const std::string what = "making template database '" + name + "'";
  ADHOC_RETURN_IF_ERROR(std::move(Remove(key)).context(what));
  const std::string id = QuoteIdentifier(name);
  PostgresCredentials creds{public_host_, public_port_, name, name, password_source_(), ""};
  auto fail = [&](Error e) {
    (void)Remove(key);
    return std::move(e).context(what);
  };
  auto verifier = admin_.EncryptPassword(name, creds.password);
  if (!verifier.ok()) return fail(verifier.error());
  const std::vector<std::string> statements = {
      "CREATE ROLE " + id + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD " +
          QuoteLiteral(*verifier),
      "COMMENT ON ROLE " + id + " IS " + QuoteLiteral(Comment(key, "building", release)),
      "CREATE DATABASE " + id + " ENCODING 'UTF8'",
      "COMMENT ON DATABASE " + id + " IS " + QuoteLiteral(Comment(key, "building", release)),
      "REVOKE ALL ON DATABASE " + id + " FROM PUBLIC",
      "GRANT CONNECT, TEMPORARY ON DATABASE " + id + " TO " + id,
  };
  for (const auto& sql : statements)
    if (auto s = admin_.Query(sql); !s.ok()) return fail(s.error());
  auto inside = connect_(name);
  if (!inside.ok()) return fail(inside.error());
  if (auto s = (*inside)->Query("GRANT USAGE, CREATE ON SCHEMA public TO " + id); !s.ok())
    return fail(s.error());
  return creds;
}

Status DatabaseTemplates::FinishBuild(const std::string& key) {
  ADHOC_ASSIGN_OR_RETURN(std::string name, TemplateName(key));
  const std::string id = QuoteIdentifier(name);
  ADHOC_ASSIGN_OR_RETURN(auto rows,
                         admin_.Query("SELECT shobj_description(oid, 'pg_database') FROM "
                                      "pg_database WHERE datname = $1",
                                      {name}));
  if (rows.empty()) return NotFound("template database '" + name + "' is gone");
  std::string release;
  if (size_t at = rows[0][0].find(" release="); at != std::string::npos)
    release = rows[0][0].substr(at + 9);
  {
    // The role keeps what it owns and nothing else: a copy hands those objects over and
    // needs no other privilege of it undone.
    ADHOC_ASSIGN_OR_RETURN(auto inside, connect_(name));
    ADHOC_RETURN_IF_ERROR(inside->Query("REVOKE ALL ON SCHEMA public FROM " + id));
  }
  const std::vector<std::string> statements = {
      "ALTER ROLE " + id + " NOLOGIN",
      "REVOKE ALL ON DATABASE " + id + " FROM " + id,
      "ALTER DATABASE " + id + " WITH ALLOW_CONNECTIONS false",
      // Tasks have exited; anything still connected (a child they left) goes.
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " +
          QuoteLiteral(name),
      "COMMENT ON DATABASE " + id + " IS " + QuoteLiteral(Comment(key, "ready", release)),
  };
  for (const auto& sql : statements)
    ADHOC_RETURN_IF_ERROR(
        std::move(Status(admin_.Query(sql))).context("closing template database '" + name + "'"));
  return OkStatus();
}

Status DatabaseTemplates::Remove(const std::string& key) {
  ADHOC_ASSIGN_OR_RETURN(std::string name, TemplateName(key));
  const std::string id = QuoteIdentifier(name);
  const std::string what = "removing template database '" + name + "'";
  ADHOC_ASSIGN_OR_RETURN(std::string spare, SpareName(key));
  // The spare first: its objects belong to the template's role too. Neither takes connections,
  // and DROP ... WITH (FORCE) needs none to end.
  for (const std::string& db : {QuoteIdentifier(spare), id})
    ADHOC_RETURN_IF_ERROR(
        std::move(Status(admin_.Query("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")))
            .context(what));
  return std::move(Status(admin_.Query("DROP ROLE IF EXISTS " + id))).context(what);
}

Result<bool> DatabaseTemplates::CopyInto(const std::string& key, const std::string& env,
                                         const std::string& database) {
  ADHOC_ASSIGN_OR_RETURN(std::string name, TemplateName(key));
  ADHOC_ASSIGN_OR_RETURN(std::string role, RoleNameFor(env));
  const std::string what = "copying template database '" + name + "' into '" + database + "'";
  ADHOC_ASSIGN_OR_RETURN(bool ready, Ready(key));
  if (!ready) return NotFound("it is not built").context(what);
  ADHOC_ASSIGN_OR_RETURN(auto owner,
                         admin_.Query("SELECT r.rolname FROM pg_database d JOIN pg_roles r ON "
                                      "r.oid = d.datdba WHERE d.datname = $1",
                                      {database}));
  if (!owner.empty() && owner[0][0] != role)
    return Conflict("'" + database + "' belongs to role '" + owner[0][0] + "'").context(what);
  ADHOC_RETURN_IF_ERROR(std::move(Status(admin_.Query("DROP DATABASE IF EXISTS " +
                                                      QuoteIdentifier(database) + " WITH (FORCE)")))
                            .context(what));
  EnvironmentDatabases dbs(admin_, public_host_, public_port_);
  // The spare, when there is one and nobody is connected to it (a rename needs that);
  // otherwise a copy made now.
  ADHOC_ASSIGN_OR_RETURN(std::string spare, SpareName(key));
  ADHOC_ASSIGN_OR_RETURN(bool has_spare, HasSpare(key));
  const bool from_spare = has_spare && dbs.AdoptDatabase(spare, database, role).ok();
  if (!from_spare) ADHOC_RETURN_IF_ERROR(dbs.CloneDatabase(name, database, role));
  auto handed = [&]() -> Status {
    ADHOC_ASSIGN_OR_RETURN(auto inside, connect_(database));
    return Status(inside->Query("REASSIGN OWNED BY " + QuoteIdentifier(name) + " TO " +
                                QuoteIdentifier(role)));
  }();
  if (!handed.ok()) {
    (void)admin_.Query("DROP DATABASE IF EXISTS " + QuoteIdentifier(database) + " WITH (FORCE)");
    return std::move(handed).context(what + ": handing its objects to '" + role + "'").error();
  }
  return from_spare;
}

Result<bool> DatabaseTemplates::HasSpare(const std::string& key) {
  ADHOC_ASSIGN_OR_RETURN(std::string spare, SpareName(key));
  ADHOC_ASSIGN_OR_RETURN(auto rows, admin_.Query("SELECT shobj_description(oid, 'pg_database') "
                                                 "FROM pg_database WHERE datname = $1",
                                                 {spare}));
  return !rows.empty() && !rows[0].empty() && rows[0][0] == kSpareMark + key;
}

Result<bool> DatabaseTemplates::MakeSpare(const std::string& key) {
  ADHOC_ASSIGN_OR_RETURN(std::string name, TemplateName(key));
  ADHOC_ASSIGN_OR_RETURN(std::string spare, SpareName(key));
  const std::string what = "making a spare copy of template database '" + name + "'";
  ADHOC_ASSIGN_OR_RETURN(bool ready, Ready(key));
  if (!ready) return false;
  ADHOC_ASSIGN_OR_RETURN(bool has, HasSpare(key));
  if (has) return false;
  const std::string id = QuoteIdentifier(spare);
  // Not marked yet: an earlier attempt stopped half way.
  ADHOC_RETURN_IF_ERROR(
      std::move(Status(admin_.Query("DROP DATABASE IF EXISTS " + id + " WITH (FORCE)")))
          .context(what));
  // Marked last: only a whole copy, closed to every role, is ever taken.
  const std::vector<std::string> statements = {
      "CREATE DATABASE " + id + " TEMPLATE " + QuoteIdentifier(name),
      "REVOKE ALL ON DATABASE " + id + " FROM PUBLIC",
      "COMMENT ON DATABASE " + id + " IS " + QuoteLiteral(kSpareMark + key),
  };
  for (const auto& sql : statements)
    if (auto s = admin_.Query(sql); !s.ok()) {
      (void)admin_.Query("DROP DATABASE IF EXISTS " + id + " WITH (FORCE)");
      return std::move(Status(s)).context(what).error();
    }
  return true;
}

Result<int> DatabaseTemplates::RemoveUnfinished() {
  ADHOC_ASSIGN_OR_RETURN(auto all, List());
  int removed = 0;
  for (const DatabaseTemplate& t : all) {
    if (t.ready) continue;
    ADHOC_RETURN_IF_ERROR(Remove(t.key));
    ++removed;
  }
  return removed;
}

Result<std::vector<DatabaseTemplate>> DatabaseTemplates::List() {
  ADHOC_ASSIGN_OR_RETURN(
      auto rows, admin_.Query("SELECT datname, shobj_description(oid, 'pg_database'), "
                              "datallowconn::text, pg_database_size(oid) FROM pg_database "
                              "WHERE shobj_description(oid, 'pg_database') LIKE $1 "
                              "OR shobj_description(oid, 'pg_database') LIKE $2 ORDER BY 1",
                              {std::string(kTemplateMark) + "%", std::string(kSpareMark) + "%"}));
  auto bytes_of = [](const SqlRow& row) -> uint64_t {
    try {
      return std::stoull(row[3]);
    } catch (const std::exception&) {
      return 0;
    }
  };
  std::vector<DatabaseTemplate> out;
  std::map<std::string, uint64_t> spares;  // key -> bytes
  for (const SqlRow& row : rows) {
    if (row.size() < 4) continue;
    if (row[1].rfind(kSpareMark, 0) == 0) {
      spares[row[1].substr(sizeof(kSpareMark) - 1)] += bytes_of(row);
      continue;
    }
    DatabaseTemplate t;
    t.database = row[0];
    std::istringstream words(row[1].substr(sizeof(kTemplateMark) - 1));
    std::string state, release;
    words >> t.key >> state >> release;
    if (release.rfind("release=", 0) == 0) t.release = release.substr(8);
    t.ready = state == "ready" && row[2] == "false";
    t.bytes = bytes_of(row);
    out.push_back(std::move(t));
  }
  for (auto& [key, bytes] : spares) {
    auto of = std::find_if(out.begin(), out.end(), [&](const auto& t) { return t.key == key; });
    if (of != out.end()) {
      of->bytes += bytes;
    } else if (auto spare = SpareName(key); spare.ok()) {
      out.push_back({key, *spare, "", false, bytes});
    }
  }
  return out;
}

}  // namespace adhoc::resources
