// Migrated template databases (issue 12): the tasks marked `cache = "database"` run once per
// backend release on a template database, and each new environment on that release starts
// from a `CREATE DATABASE ... TEMPLATE` copy instead of running them again.
//
// A template is a database and a role of the same name, "adhoc_tpl_<key>" (the key is the
// caller's: the release and the cached tasks' inputs). The database belongs to the cluster's
// superuser; the role only creates in its `public` schema and owns what the tasks make, so a
// copy's objects can be handed to an environment's role (REASSIGN OWNED) without touching
// anything shared. Once built, the database takes no connections (datallowconn = false: a copy
// needs a template nobody is connected to) and the role cannot log in. Its COMMENT says
// "adhoc:template=<key> ready release=<image>/<release key>"; one being built says
// "building", and the next build of that key removes it first.
//
// A template also keeps one *spare*: "adhoc_spr_<key>", a copy made ahead of need (MakeSpare,
// off any operation's path), owned by the superuser, open to no role, marked
// "adhoc:spare=<key>". CopyInto renames it into the environment's database instead of copying
// (a few milliseconds against CREATE DATABASE's 100-300), and the caller makes the next one.
// The spare goes with its template (Remove) and is counted in its size (List).
//
// Thread-safety: one session is used by one thread at a time; building one key twice at once
// is the caller's to prevent (LocalResources holds a lock per key).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "resources/databases.h"

namespace adhoc::resources {

struct DatabaseTemplate {
  std::string key;
  std::string database;  // and its role: the same name
  std::string release;   // "<image>/<release key>" it was built for
  bool ready = false;
  uint64_t bytes = 0;
};

// "adhoc_tpl_" + key. BadInput unless key is 8-32 lowercase hex digits.
Result<std::string> TemplateName(const std::string& key);

// "adhoc_spr_" + key, the same checks.
Result<std::string> SpareName(const std::string& key);

// Connects to a database of the cluster as its superuser (the admin session reaches only one).
using AdminConnector =
    std::function<Result<std::unique_ptr<SqlSession>>(const std::string& database)>;

class DatabaseTemplates {
 public:
  // `admin` is a superuser session on the `postgres` database; `public_host`/`public_port`
  // go into the build's credentials.
  DatabaseTemplates(SqlSession& admin, AdminConnector connect, std::string public_host,
                    int public_port);

  // Whether `key`'s template is built and ready to copy.
  Result<bool> Ready(const std::string& key);

  // Removes what an earlier build of `key` left, then makes its database and role (LOGIN,
  // a fresh password) for the cached tasks to run on. `release` is recorded for `adhoc gc`.
  Result<PostgresCredentials> BeginBuild(const std::string& key, const std::string& release);

  // The build succeeded: no more connections, the role cannot log in, marked ready.
  Status FinishBuild(const std::string& key);

  // Drops `key`'s spare, database (forcing out connections) and role; nothing to drop is fine.
  Status Remove(const std::string& key);

  // Replaces the environment's `database` (created empty by this operation; nothing else
  // may be in it) with a copy of `key`'s ready template, owned by the environment's role, its
  // objects handed to that role, with an environment database's grants. The spare is that
  // copy when there is one; returns whether it was (the caller then makes the next).
  Result<bool> CopyInto(const std::string& key, const std::string& env,
                        const std::string& database);

  // Makes `key`'s spare when its template is ready and it has none (one left half made is made
  // again); returns whether one was made. One caller per key at a time, as for builds.
  Result<bool> MakeSpare(const std::string& key);

  // Whether `key` has a spare ready to take.
  Result<bool> HasSpare(const std::string& key);

  // Removes every template whose build never finished (its builder died); returns how many.
  // Only for when no build can be running: the control plane's recovery, before any operation.
  Result<int> RemoveUnfinished();

  // Every template of the cluster, ready or not, with its size (its spare's included). A spare
  // whose template is gone is listed as an unfinished template of its key.
  Result<std::vector<DatabaseTemplate>> List();

  void set_password_source(std::function<std::string()> source) {
    password_source_ = std::move(source);
  }

 private:
  SqlSession& admin_;
  AdminConnector connect_;
  std::string public_host_;
  int public_port_;
  std::function<std::string()> password_source_;
};

}  // namespace adhoc::resources
