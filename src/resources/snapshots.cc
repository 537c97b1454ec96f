#include "resources/snapshots.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/paths.h"
#include "resources/postgres_cluster.h"

namespace adhoc::resources {

namespace fs = std::filesystem;

namespace {

constexpr char kKeysHeader[] = "adhoc-redis-keys 1\n";
constexpr size_t kBatch = 500;  // keys per round trip

// A file opened for writing, created 0600 (an older one replaced).
Result<std::ofstream> OpenPrivate(const fs::path& file) {
  std::error_code ec;
  fs::remove(file, ec);
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Failed("creating " + file.string() + ": " + strerror(errno));
  fchmod(fd, 0600);
  close(fd);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return Failed("writing " + file.string());
  return out;
}

class RealRedisClient : public RedisClient {
 public:
  RealRedisClient(std::string host, int port, std::string password)
      : host_(std::move(host)), port_(port), password_(std::move(password)) {}
  Result<std::vector<RespReply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands) override {
    return RedisPipeline(host_, port_, password_, commands);
  }

 private:
  std::string host_;
  int port_;
  std::string password_;
};

// The logical databases holding keys, from INFO keyspace ("db1:keys=3,expires=0,...").
Result<std::vector<std::string>> DatabasesWithKeys(RedisClient& redis) {
  ADHOC_ASSIGN_OR_RETURN(auto replies, redis.Pipeline({{"INFO", "keyspace"}}));
  if (replies.size() != 1 || replies[0].type != RespReply::Type::kBulk)
    return Failed("INFO keyspace: unexpected reply " +
                  (replies.empty() ? std::string("(none)") : replies[0].text));
  std::vector<std::string> out;
  std::istringstream lines(replies[0].text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("db", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string index = line.substr(2, colon - 2);
    if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos)
      out.push_back(index);
  }
  return out;
}

Status CheckReply(const RespReply& r, const std::string& what) {
  if (r.type == RespReply::Type::kError) return Failed(what + ": " + r.text);
  return OkStatus();
}

}  // namespace

std::unique_ptr<RedisClient> MakeRedisClient(std::string host, int port, std::string password) {
  return std::make_unique<RealRedisClient>(std::move(host), port, std::move(password));
}

Result<RedisKeysCount> DumpRedisKeys(RedisClient& redis, const fs::path& file) {
  const std::string what = "saving Redis keys into " + file.string();
  auto fail = [&](Error e) { return std::move(e).context(what); };
  auto dbs = DatabasesWithKeys(redis);
  if (!dbs.ok()) return fail(dbs.error());
  auto out = OpenPrivate(file);
  if (!out.ok()) return fail(out.error());
  *out << kKeysHeader;
  RedisKeysCount count;
  for (const std::string& db : *dbs) {
    *out << EncodeRespCommand({"SELECT", db});
    std::string cursor = "0";
    do {
      auto scanned = redis.Pipeline({{"SELECT", db}, {"SCAN", cursor, "COUNT", "1000"}});
      if (!scanned.ok()) return fail(scanned.error());
      if (scanned->size() != 2 || scanned->at(1).type != RespReply::Type::kArray ||
          scanned->at(1).elements.size() != 2)
        return fail(Failed("SCAN: unexpected reply"));
      cursor = scanned->at(1).elements[0].text;
      std::vector<std::string> keys;
      for (const auto& k : scanned->at(1).elements[1].elements) keys.push_back(k.text);
      for (size_t start = 0; start < keys.size(); start += kBatch) {
        size_t end = std::min(keys.size(), start + kBatch);
        std::vector<std::vector<std::string>> commands = {{"SELECT", db}};
        for (size_t i = start; i < end; ++i) {
          commands.push_back({"DUMP", keys[i]});
          commands.push_back({"PTTL", keys[i]});
        }
        auto replies = redis.Pipeline(commands);
        if (!replies.ok()) return fail(replies.error());
        if (replies->size() != commands.size()) return fail(Failed("DUMP: replies missing"));
        for (size_t i = start; i < end; ++i) {
          const RespReply& dump = (*replies)[1 + 2 * (i - start)];
          const RespReply& ttl = (*replies)[2 + 2 * (i - start)];
          if (auto s = CheckReply(dump, "DUMP"); !s.ok()) return fail(s.error());
          // Gone since SCAN found it (expired or deleted): nothing to keep.
          if (dump.type == RespReply::Type::kNull || ttl.integer == -2) continue;
          int64_t ms = ttl.type == RespReply::Type::kInteger && ttl.integer > 0 ? ttl.integer : 0;
          *out << EncodeRespCommand({"RESTORE", keys[i], std::to_string(ms), dump.text, "REPLACE"});
          ++count.keys;
        }
      }
    } while (cursor != "0");
  }
  out->close();
  if (!*out) return fail(Failed("writing failed"));
  std::error_code ec;
  count.bytes = static_cast<int64_t>(fs::file_size(file, ec));
  return count;
}

Result<RedisKeysCount> RestoreRedisKeys(RedisClient& redis, const fs::path& file) {
  const std::string what = "restoring Redis keys from " + file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFound("no keys file " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  std::string data = text.str();
  if (data.rfind(kKeysHeader, 0) != 0)
    return BadInput(file.string() + " is not a Redis keys file written by adhoc").context(what);
  // Parsed whole before anything is flushed: a damaged file changes nothing.
  std::vector<std::vector<std::string>> commands;
  size_t pos = sizeof(kKeysHeader) - 1;
  while (pos < data.size()) {
    size_t used = 0;
    auto reply = ParseRespReply(std::string_view(data).substr(pos), &used);
    if (!reply.ok() || !*reply || (*reply)->type != RespReply::Type::kArray)
      return BadInput(file.string() + " is damaged at byte " + std::to_string(pos)).context(what);
    std::vector<std::string> command;
    for (const auto& e : (*reply)->elements) command.push_back(e.text);
    if (command.empty() || (command[0] != "SELECT" && command[0] != "RESTORE"))
      return BadInput(file.string() + " holds a command other than SELECT and RESTORE")
          .context(what);
    commands.push_back(std::move(command));
    pos += used;
  }
  RedisKeysCount count;
  count.bytes = static_cast<int64_t>(data.size());
  auto flushed = redis.Pipeline({{"FLUSHALL"}});
  if (!flushed.ok()) return std::move(flushed).error().context(what);
  if (auto s = CheckReply(flushed->at(0), "FLUSHALL"); !s.ok())
    return std::move(s).context(what).error();
  std::string db = "0";
  for (size_t start = 0; start < commands.size(); start += kBatch) {
    size_t end = std::min(commands.size(), start + kBatch);
    // Each round starts in the database the previous one ended in.
    std::vector<std::vector<std::string>> batch = {{"SELECT", db}};
    for (size_t i = start; i < end; ++i) {
      batch.push_back(commands[i]);
      if (commands[i][0] == "SELECT" && commands[i].size() == 2) db = commands[i][1];
      if (commands[i][0] == "RESTORE") ++count.keys;
    }
    auto replies = redis.Pipeline(batch);
    if (!replies.ok()) return std::move(replies).error().context(what);
    for (size_t i = 0; i < replies->size(); ++i)
      if (auto s = CheckReply((*replies)[i], batch[i][0]); !s.ok())
        return std::move(s).context(what).error();
  }
  return count;
}

// ---- PostgreSQL's tools ----------------------------------------------------------------

Result<PgTools> PgToolsFor(const fs::path& home, int port) {
  ADHOC_ASSIGN_OR_RETURN(auto bin, FindPostgresBinDir());
  PgTools tools;
  tools.bin_dir = bin;
  tools.socket_dir = paths::PostgresRun(home);
  tools.port = port;
  tools.scratch_dir = paths::IncomingSnapshotsDir(home);
  std::error_code ec;
  fs::create_directories(tools.scratch_dir, ec);
  for (const fs::path& dir : {paths::SnapshotsDir(home), tools.scratch_dir})
    if (chmod(dir.c_str(), 0700) != 0)
      return Failed("making " + dir.string() + " private: " + strerror(errno));
  return tools;
}

namespace {

Result<std::string> RunTool(const PgTools& tools, const std::string& tool,
                            std::vector<std::string> args) {
  std::vector<std::string> argv = {(tools.bin_dir / tool).string(),
                                   "-h",
                                   tools.socket_dir.string(),
                                   "-p",
                                   std::to_string(tools.port),
                                   "-U",
                                   "postgres"};
  argv.insert(argv.end(), args.begin(), args.end());
  ExecOptions options;
  options.env =
      std::map<std::string, std::string>{{"PATH", tools.bin_dir.string() + ":/usr/bin:/bin"},
                                         {"LANG", "C.UTF-8"},
                                         {"PGCONNECT_TIMEOUT", "10"},
                                         {"PGAPPNAME", "adhoc"}};
  options.timeout = std::chrono::hours(1);
  auto result = tools.exec ? tools.exec(argv, options) : Exec(argv, options);
  if (!result.ok()) return std::move(result).error().context(tool);
  if (result->exit_code != 0)
    return Failed(tool + " exited with status " + std::to_string(result->exit_code) + ": " +
                  LastLines(result->output, 5));
  return result->output;
}

// One line of a plain dump that names roles, in pg_dump's own form.
bool NamesRoles(const std::string& line) {
  auto starts = [&](const char* prefix) { return line.rfind(prefix, 0) == 0; };
  if (starts("GRANT ") || starts("REVOKE ") || starts("SET SESSION AUTHORIZATION") ||
      starts("COMMENT ON EXTENSION ") || starts("ALTER DEFAULT PRIVILEGES "))
    return true;
  return starts("ALTER ") && line.find(" OWNER TO ") != std::string::npos && !line.empty() &&
         line.back() == ';';
}

}  // namespace

Result<int64_t> DumpDatabase(const PgTools& tools, const std::string& database,
                             const fs::path& file) {
  const std::string what = "saving database '" + database + "'";
  {
    auto made = OpenPrivate(file);  // 0600 before pg_dump writes into it
    if (!made.ok()) return std::move(made).error().context(what);
  }
  auto dumped = RunTool(tools, "pg_dump", {"-Fc", "-Z", "1", "-f", file.string(), database});
  if (!dumped.ok()) {
    std::error_code ec;
    fs::remove(file, ec);
    return std::move(dumped).error().context(what);
  }
  std::error_code ec;
  return static_cast<int64_t>(fs::file_size(file, ec));
}

bool IsCustomFormatDump(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[5] = {};
  in.read(magic, 5);
  return in.gcount() == 5 && std::string(magic, 5) == "PGDMP";
}

void FilterPlainDump(std::istream& in, std::ostream& out) {
  std::string line;
  bool in_copy = false;
  while (std::getline(in, line)) {
    bool eof = in.eof();
    if (in_copy) {
      if (line == "\\.") in_copy = false;
    } else if (line.rfind("COPY ", 0) == 0 && line.find(" FROM stdin;") != std::string::npos) {
      in_copy = true;
    } else if (NamesRoles(line)) {
      continue;
    }
    out << line;
    if (!eof) out << '\n';
  }
}

Status LoadDatabase(const PgTools& tools, const fs::path& file, const std::string& database,
                    const std::string& role) {
  const std::string what = "loading " + file.string() + " into database '" + database + "'";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return NotFound("no file " + file.string()).context(what);
  if (IsCustomFormatDump(file)) {
    auto restored = RunTool(tools, "pg_restore",
                            {"--no-owner", "--no-privileges", "--role=" + role, "--exit-on-error",
                             "--single-transaction", "-d", database, file.string()});
    return Status(restored).context(what);
  }
  // Plain SQL: filtered into a private file, then run as the role in one transaction.
  fs::path filtered = (tools.scratch_dir.empty() ? fs::temp_directory_path() : tools.scratch_dir) /
                      ("load-" + std::to_string(getpid()) + "-" + RandomPassword(8) + ".sql");
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) return Failed("cannot read " + file.string()).context(what);
    auto out = OpenPrivate(filtered);
    if (!out.ok()) return std::move(out).error().context(what);
    FilterPlainDump(in, *out);
    out->close();
  }
  auto loaded =
      RunTool(tools, "psql",
              {"-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", database, "-c",
               "SET ROLE " + QuoteIdentifier(role), "-f", filtered.string()});
  fs::remove(filtered, ec);
  return Status(loaded).context(what);
}

// ---- Copies in the cluster -------------------------------------------------------------

std::string StartCopyName(const std::string& env) { return "adhoc-start-" + env; }
std::string ResetCloneName(const std::string& env) { return "adhoc-reset-" + env; }

namespace {

// `copy` as a clone of `source` with an environment database's grants and mark. PostgreSQL
// 15's default strategy (WAL_LOG) copies the database through the WAL: its cost follows its
// own size, where FILE_COPY's two checkpoints would flush every environment's dirty pages of
// the shared cluster (for μblog both took 180-420 ms on a loaded 2-core machine).
Status Clone(SqlSession& admin, const std::string& env, const std::string& role,
             const std::string& source, const std::string& copy, const std::string& options = "") {
  const std::string c = QuoteIdentifier(copy);
  ADHOC_RETURN_IF_ERROR(admin.Query("DROP DATABASE IF EXISTS " + c + " WITH (FORCE)"));
  ADHOC_RETURN_IF_ERROR(admin.Query("CREATE DATABASE " + c + " TEMPLATE " +
                                    QuoteIdentifier(source) + " OWNER " + QuoteIdentifier(role) +
                                    options));
  auto finish = [&]() -> Status {
    ADHOC_RETURN_IF_ERROR(admin.Query("REVOKE ALL ON DATABASE " + c + " FROM PUBLIC"));
    ADHOC_RETURN_IF_ERROR(
        admin.Query("GRANT CONNECT, TEMPORARY ON DATABASE " + c + " TO " + QuoteIdentifier(role)));
    return Status(
        admin.Query("COMMENT ON DATABASE " + c + " IS " + QuoteLiteral("adhoc:env=" + env)));
  };
  if (Status s = finish(); !s.ok()) {
    (void)admin.Query("DROP DATABASE IF EXISTS " + c + " WITH (FORCE)");
    return s;
  }
  return OkStatus();
}

bool BeingAccessed(const Error& e) {
  return e.message().find("is being accessed by other users") != std::string::npos;
}

}  // namespace

Result<bool> StartCopyExists(SqlSession& admin, const std::string& copy) {
  ADHOC_ASSIGN_OR_RETURN(auto rows,
                         admin.Query("SELECT 1 FROM pg_database WHERE datname = $1", {copy}));
  return !rows.empty();
}

Status RecreateEmpty(SqlSession& admin, const std::string& env, const std::string& role,
                     const std::string& database) {
  return Clone(admin, env, role, "template0", database, " ENCODING 'UTF8'")
      .context("emptying database '" + database + "'");
}

Status MakeStartCopy(SqlSession& admin, const std::string& env, const std::string& role,
                     const std::string& live, const std::string& copy) {
  const std::string what = "keeping the start data of database '" + live + "'";
  // CREATE DATABASE waits 5 s for the template's other sessions before it gives up: asked
  // first, a busy database goes straight to being closed for the moment of the copy.
  auto sessions = admin.Query(
      "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
      {live});
  bool busy = sessions.ok() && !sessions->empty() && !sessions->front().empty() &&
              sessions->front()[0] != "0";
  Status cloned = busy ? Status(Failed("is being accessed by other users"))
                       : Clone(admin, env, role, live, copy);
  if (!cloned.ok() && BeingAccessed(cloned.error())) {
    // A process of the environment holds a connection: closed to new ones for the moment of
    // the copy, its connections ended, and open again whatever happens.
    const std::string l = QuoteIdentifier(live);
    Status closed = admin.Query("ALTER DATABASE " + l + " WITH ALLOW_CONNECTIONS false");
    if (closed.ok()) {
      (void)admin.Query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE datname = $1 AND pid <> pg_backend_pid()",
          {live});
      cloned = Clone(admin, env, role, live, copy);
    }
    Status opened = admin.Query("ALTER DATABASE " + l + " WITH ALLOW_CONNECTIONS true");
    if (cloned.ok() && !opened.ok()) cloned = opened;
  }
  if (!cloned.ok()) return std::move(cloned).context(what);
  return Status(admin.Query("ALTER DATABASE " + QuoteIdentifier(copy) +
                            " WITH ALLOW_CONNECTIONS false"))
      .context(what);
}

Status SwapInStartCopy(SqlSession& admin, const std::string& env, const std::string& role,
                       const std::string& copy, const std::string& live) {
  const std::string what = "resetting database '" + live + "'";
  ADHOC_ASSIGN_OR_RETURN(bool exists, StartCopyExists(admin, copy));
  if (!exists) return NotFound("its start copy '" + copy + "' is missing").context(what);
  const std::string clone = ResetCloneName(env);
  ADHOC_RETURN_IF_ERROR(Clone(admin, env, role, copy, clone).context(what));
  // From here the live database goes: WITH (FORCE) ends the environment's connections.
  ADHOC_RETURN_IF_ERROR(
      admin.Query("DROP DATABASE IF EXISTS " + QuoteIdentifier(live) + " WITH (FORCE)")
          .context(what));
  return Status(admin.Query("ALTER DATABASE " + QuoteIdentifier(clone) + " RENAME TO " +
                            QuoteIdentifier(live)))
      .context(what);
}

}  // namespace adhoc::resources
