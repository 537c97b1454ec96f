// Per-environment databases and roles in the base's PostgreSQL cluster (DESIGN: one
// database and role per environment; the seed's "database per environment via a bastion").
//
// Isolation is enforced by grants: each environment's database allows CONNECT to its own
// role only (REVOKE ... FROM PUBLIC), and `postgres`/`template1` allow no environment role,
// so a role cannot connect to any other environment's database. Roles are plain LOGIN roles
// (no superuser, createdb or createrole). Everything adhoc creates carries a COMMENT
// starting with "adhoc:" so `adhoc gc` can find what no environment owns any more.
//
// All SQL goes through SqlSession, the narrow interface over one libpq connection (a fake
// in the logic tests). Passwords are hashed client-side (SCRAM) so they never appear in
// the server's log.
//
// Thread-safety: a SqlSession and the EnvironmentDatabases using it are used by one
// thread at a time.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::resources {

using SqlRow = std::vector<std::string>;  // text values; NULL reads as ""

// One SQL session.
class SqlSession {
 public:
  virtual ~SqlSession() = default;
  // Runs one statement (parameters as $1, $2...; none for utility statements such as
  // CREATE DATABASE, which cannot take them) and returns its rows.
  virtual Result<std::vector<SqlRow>> Query(const std::string& sql,
                                            const std::vector<std::string>& params = {}) = 0;
  // The SCRAM-SHA-256 verifier of `password` for `user`, for CREATE/ALTER ROLE ... PASSWORD.
  virtual Result<std::string> EncryptPassword(const std::string& user,
                                              const std::string& password) = 0;
};

struct PostgresConnectParams {
  std::string host;  // an address, or a Unix socket folder (absolute path)
  int port = 5432;
  std::string database = "postgres";
  std::string user = "postgres";
  std::string password;  // empty: none
  std::chrono::seconds connect_timeout{10};
};

// A libpq connection. Server notices are dropped (DROP ... IF EXISTS talks).
Result<std::unique_ptr<SqlSession>> ConnectPostgres(const PostgresConnectParams& params);

// The admin connection of a home's cluster: `postgres` over the private Unix socket
// folder paths::PostgresRun(home), to `database`.
Result<std::unique_ptr<SqlSession>> ConnectPostgresAdmin(const std::filesystem::path& home,
                                                         int port,
                                                         const std::string& database = "postgres");

struct PostgresCredentials {
  std::string host;  // the cluster's TCP address, as environments reach it
  int port = 5432;
  std::string database;
  std::string user;
  std::string password;  // empty when an existing role was kept without a new password
  std::string url;       // postgres://user:password@host:port/database (parts URL-encoded)
};

// One thing adhoc made in the cluster, as found by ListEnvironmentDatabases.
struct ManagedObject {
  enum class Kind { kDatabase, kRole };
  Kind kind;
  std::string name;
  std::string env;    // the environment it was made for; empty for shared ones (templates)
  std::string owner;  // a database's owner role; empty for roles
};

// The role of an environment: "env_" + its name with '-' as '_' (names are DNS labels,
// so this is reversible). BadInput for a name that is not a valid environment name.
Result<std::string> RoleNameFor(const std::string& env);

// "..." with inner quotes doubled; the only way names reach SQL text.
std::string QuoteIdentifier(const std::string& name);
// '...' with inner quotes doubled (standard_conforming_strings is on since 9.1).
std::string QuoteLiteral(const std::string& text);
// RFC 3986 percent-encoding of everything but unreserved characters.
std::string UrlEncode(const std::string& text);
// 32 characters of [A-Za-z0-9] from OpenSSL's RAND_bytes (unbiased).
std::string RandomPassword(int length = 32);

class EnvironmentDatabases {
 public:
  // `admin` is a superuser session (not owned; outlives this object). `public_host` and
  // `public_port` are the cluster's TCP address written into credentials.
  EnvironmentDatabases(SqlSession& admin, std::string public_host, int public_port);

  // Creates the environment's role (LOGIN, random password) and `database` owned by it,
  // with CONNECT for that role only. Idempotent: an existing role is kept, with a new
  // password only when `new_password` (else the returned password is empty); an existing
  // database owned by the role is kept. Conflict when the database belongs to another role.
  // With `make_database` false, only the role is made: the database comes later (a copy of a
  // template, templates.h), under the returned credentials' name.
  Result<PostgresCredentials> CreateEnvironmentDatabase(const std::string& env,
                                                        const std::string& database,
                                                        bool new_password = false,
                                                        bool make_database = true);

  // Drops `database` (forcing out its connections), then the environment's role unless it
  // still owns another database. No error when either is already gone.
  Status DropEnvironmentDatabase(const std::string& env, const std::string& database);

  // Drops the environment's role alone (its database already gone); no error if absent.
  Status DropEnvironmentRole(const std::string& env);

  // `new_database` as a copy of `template_database` (which must have no connections),
  // owned by `owner`, with the same grants as an environment's database.
  Status CloneDatabase(const std::string& template_database, const std::string& new_database,
                       const std::string& owner);

  // `made`, a database made by the superuser (a template's spare copy), renamed `database` and
  // handed to `owner` with the same grants as an environment's database, all at once or not at
  // all (it fails, changing nothing, while anyone is connected to `made`).
  Status AdoptDatabase(const std::string& made, const std::string& database,
                       const std::string& owner);

  Result<bool> DatabaseExists(const std::string& database);
  Result<bool> RoleExists(const std::string& role);

  // The databases of `env`: marked for it, or owned by its role (one whose creation was cut
  // short before it was marked).
  Result<std::vector<std::string>> DatabasesOf(const std::string& env);

  // Every database and role carrying adhoc's mark.
  Result<std::vector<ManagedObject>> ListEnvironmentDatabases();

  // Bytes on disk (pg_database_size) of every environment's databases, summed per
  // environment, in one query.
  Result<std::map<std::string, uint64_t>> DatabaseSizes();

  // For tests: the password source (default RandomPassword()).
  void set_password_source(std::function<std::string()> source) {
    password_source_ = std::move(source);
  }

 private:
  Status LockDownSharedDatabases();
  Status RestrictToOwner(const std::string& database, const std::string& role,
                         const std::string& env);

  SqlSession& admin_;
  std::string public_host_;
  int public_port_;
  std::function<std::string()> password_source_;
};

}  // namespace adhoc::resources
