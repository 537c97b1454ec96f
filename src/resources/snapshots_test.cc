#include "resources/snapshots.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "common/test_support.h"

namespace adhoc::resources {
namespace {

namespace fs = std::filesystem;
using adhoc::testutil::TempDir;

RespReply Bulk(const std::string& text) {
  RespReply r;
  r.type = RespReply::Type::kBulk;
  r.text = text;
  return r;
}
RespReply Int(int64_t v) {
  RespReply r;
  r.type = RespReply::Type::kInteger;
  r.integer = v;
  return r;
}
RespReply Ok() {
  RespReply r;
  r.type = RespReply::Type::kSimple;
  r.text = "OK";
  return r;
}

// A Redis of a few logical databases: DUMP's payload is "v:" + the value.
class FakeRedis : public RedisClient {
 public:
  struct Value {
    std::string value;
    int64_t ttl_ms = -1;
  };
  std::map<std::string, std::map<std::string, Value>> dbs;
  std::vector<std::string> log;
  std::string vanish_on_dump;  // a key that expires between SCAN and DUMP

  Result<std::vector<RespReply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands) override {
    std::vector<RespReply> out;
    for (const auto& c : commands) {
      log.push_back(c[0]);
      if (c[0] == "INFO") {
        std::string text = "# Keyspace\r\n";
        for (auto& [db, keys] : dbs)
          if (!keys.empty()) text += "db" + db + ":keys=" + std::to_string(keys.size()) + "\r\n";
        out.push_back(Bulk(text));
      } else if (c[0] == "SELECT") {
        db_ = c[1];
        out.push_back(Ok());
      } else if (c[0] == "SCAN") {
        RespReply r;
        r.type = RespReply::Type::kArray;
        r.elements.push_back(Bulk("0"));
        RespReply keys;
        keys.type = RespReply::Type::kArray;
        for (auto& [k, v] : dbs[db_]) keys.elements.push_back(Bulk(k));
        r.elements.push_back(keys);
        out.push_back(r);
      } else if (c[0] == "DUMP") {
        if (c[1] == vanish_on_dump) dbs[db_].erase(c[1]);
        auto it = dbs[db_].find(c[1]);
        out.push_back(it == dbs[db_].end() ? RespReply{} : Bulk("v:" + it->second.value));
      } else if (c[0] == "PTTL") {
        auto it = dbs[db_].find(c[1]);
        out.push_back(Int(it == dbs[db_].end() ? -2 : it->second.ttl_ms));
      } else if (c[0] == "FLUSHALL") {
        dbs.clear();
        out.push_back(Ok());
      } else if (c[0] == "RESTORE") {
        int64_t ttl = std::stoll(c[2]);
        dbs[db_][c[1]] = Value{c[3].substr(2), ttl == 0 ? -1 : ttl};
        out.push_back(Ok());
      } else {
        RespReply e;
        e.type = RespReply::Type::kError;
        e.text = "ERR unknown command " + c[0];
        out.push_back(e);
      }
    }
    return out;
  }

 private:
  std::string db_ = "0";
};

TEST(RedisKeysTest, RoundTripKeepsEveryDatabaseAndTimeToLive) {
  TempDir dir;
  FakeRedis source;
  source.dbs["0"]["session"] = {"abc", 5000};
  source.dbs["1"]["celery"] = {"queue", -1};
  source.dbs["1"]["binary\r\nkey"] = {std::string("\0\x01\xff", 3), -1};
  fs::path file = dir.path() / "redis.keys";
  auto dumped = DumpRedisKeys(source, file);
  ASSERT_TRUE(dumped.ok()) << dumped.error().message();
  EXPECT_EQ(dumped->keys, 3);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  FakeRedis target;
  target.dbs["0"]["stale"] = {"old", -1};
  auto restored = RestoreRedisKeys(target, file);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  EXPECT_EQ(restored->keys, 3);
  EXPECT_EQ(target.dbs["0"].count("stale"), 0u) << "flushed first";
  EXPECT_EQ(target.dbs["0"]["session"].value, "abc");
  EXPECT_EQ(target.dbs["0"]["session"].ttl_ms, 5000);
  EXPECT_EQ(target.dbs["1"]["celery"].value, "queue");
  EXPECT_EQ(target.dbs["1"]["celery"].ttl_ms, -1);
  EXPECT_EQ(target.dbs["1"]["binary\r\nkey"].value, std::string("\0\x01\xff", 3));
}

TEST(RedisKeysTest, AKeyGoneSinceScanIsLeftOut) {
  TempDir dir;
  FakeRedis source;
  source.dbs["0"]["a"] = {"1", -1};
  source.dbs["0"]["b"] = {"2", 100};
  source.vanish_on_dump = "b";
  auto dumped = DumpRedisKeys(source, dir.path() / "k");
  ASSERT_TRUE(dumped.ok());
  EXPECT_EQ(dumped->keys, 1);
}

TEST(RedisKeysTest, ADamagedFileChangesNothing) {
  TempDir dir;
  FakeRedis target;
  target.dbs["0"]["keep"] = {"me", -1};
  fs::path file = dir.path() / "bad";
  std::ofstream(file) << "adhoc-redis-keys 1\n*3\r\n$7\r\nRESTORE\r\n$1\r\nk";
  auto restored = RestoreRedisKeys(target, file);
  ASSERT_FALSE(restored.ok());
  EXPECT_EQ(target.dbs["0"]["keep"].value, "me");
  std::ofstream(file) << "something else";
  EXPECT_EQ(RestoreRedisKeys(target, file).error().kind(), ErrorKind::kBadInput);
  std::ofstream(file) << "adhoc-redis-keys 1\n*1\r\n$8\r\nFLUSHALL\r\n";
  EXPECT_FALSE(RestoreRedisKeys(target, file).ok()) << "only SELECT and RESTORE are replayed";
  EXPECT_EQ(target.dbs["0"]["keep"].value, "me");
  EXPECT_EQ(RestoreRedisKeys(target, dir.path() / "missing").error().kind(), ErrorKind::kNotFound);
}

TEST(PlainDumpTest, RoleStatementsGoOutsideCopyData) {
  std::istringstream in(
      "SET statement_timeout = 0;\n"
      "CREATE TABLE public.post (id integer, body text);\n"
      "ALTER TABLE public.post OWNER TO ublog;\n"
      "COPY public.post (id, body) FROM stdin;\n"
      "1\tGRANT ALL ON everything TO me;\n"
      "2\tALTER TABLE x OWNER TO y;\n"
      "\\.\n"
      "REVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
      "GRANT SELECT ON TABLE public.post TO reader;\n"
      "COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL';\n"
      "SET SESSION AUTHORIZATION 'ublog';\n"
      "ALTER TABLE ONLY public.post ADD CONSTRAINT post_pkey PRIMARY KEY (id);\n");
  std::ostringstream out;
  FilterPlainDump(in, out);
  EXPECT_EQ(out.str(),
            "SET statement_timeout = 0;\n"
            "CREATE TABLE public.post (id integer, body text);\n"
            "COPY public.post (id, body) FROM stdin;\n"
            "1\tGRANT ALL ON everything TO me;\n"
            "2\tALTER TABLE x OWNER TO y;\n"
            "\\.\n"
            "ALTER TABLE ONLY public.post ADD CONSTRAINT post_pkey PRIMARY KEY (id);\n");
}

TEST(PgToolsTest, DumpsAndLoadsWithTheRightTool) {
  TempDir dir;
  std::vector<std::vector<std::string>> ran;
  PgTools tools;
  tools.bin_dir = "/pg/bin";
  tools.socket_dir = "/home/base/postgres/run";
  tools.port = 5433;
  tools.scratch_dir = dir.path();
  tools.exec = [&](const std::vector<std::string>& argv, const ExecOptions&) -> Result<ExecResult> {
    ran.push_back(argv);
    return ExecResult{0, false, ""};
  };
  auto dumped = DumpDatabase(tools, "demo-db", dir.path() / "database.dump");
  ASSERT_TRUE(dumped.ok()) << dumped.error().message();
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0][0], "/pg/bin/pg_dump");
  EXPECT_NE(std::find(ran[0].begin(), ran[0].end(), "-Fc"), ran[0].end());
  EXPECT_EQ(ran[0].back(), "demo-db");

  fs::path custom = dir.path() / "c.dump", plain = dir.path() / "p.sql";
  std::ofstream(custom) << "PGDMP\x01\x0e";
  std::ofstream(plain) << "CREATE TABLE t (i int);\nALTER TABLE t OWNER TO x;\n";
  ASSERT_TRUE(LoadDatabase(tools, custom, "new-db", "env_new").ok());
  EXPECT_EQ(ran[1][0], "/pg/bin/pg_restore");
  EXPECT_NE(std::find(ran[1].begin(), ran[1].end(), "--role=env_new"), ran[1].end());
  EXPECT_NE(std::find(ran[1].begin(), ran[1].end(), "--no-owner"), ran[1].end());
  ASSERT_TRUE(LoadDatabase(tools, plain, "new-db", "env_new").ok());
  EXPECT_EQ(ran[2][0], "/pg/bin/psql");
  EXPECT_NE(std::find(ran[2].begin(), ran[2].end(), "SET ROLE \"env_new\""), ran[2].end());
  EXPECT_NE(std::find(ran[2].begin(), ran[2].end(), "ON_ERROR_STOP=1"), ran[2].end());
  EXPECT_FALSE(fs::exists(ran[2].back())) << "the filtered copy is removed";

  EXPECT_EQ(LoadDatabase(tools, dir.path() / "missing.sql", "d", "r").error().kind(),
            ErrorKind::kNotFound);
  tools.exec = [](const std::vector<std::string>&, const ExecOptions&) -> Result<ExecResult> {
    return ExecResult{1, false, "pg_restore: error: relation exists\n"};
  };
  Status failed = LoadDatabase(tools, custom, "new-db", "env_new");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("relation exists"), std::string::npos);
}

// Records statements; "being accessed" for the first clone of a busy database.
class RecordingSql : public SqlSession {
 public:
  std::vector<std::string> statements;
  bool busy = false;
  bool copy_exists = true;
  Result<std::vector<SqlRow>> Query(const std::string& sql,
                                    const std::vector<std::string>&) override {
    statements.push_back(sql);
    if (sql.rfind("SELECT 1 FROM pg_database", 0) == 0)
      return copy_exists ? std::vector<SqlRow>{{"1"}} : std::vector<SqlRow>{};
    if (busy && sql.rfind("CREATE DATABASE", 0) == 0) {
      busy = false;
      return Failed("source database \"demo-db\" is being accessed by other users");
    }
    return std::vector<SqlRow>{};
  }
  Result<std::string> EncryptPassword(const std::string&, const std::string&) override {
    return std::string("x");
  }
  int Find(const std::string& prefix) const {
    for (size_t i = 0; i < statements.size(); ++i)
      if (statements[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    return -1;
  }
};

TEST(StartCopyTest, MadeClosedToConnectionsAndMarked) {
  RecordingSql sql;
  ASSERT_TRUE(MakeStartCopy(sql, "demo", "env_demo", "demo-db", "adhoc-start-demo").ok());
  EXPECT_GE(
      sql.Find("CREATE DATABASE \"adhoc-start-demo\" TEMPLATE \"demo-db\" OWNER \"env_demo\""), 0);
  EXPECT_GE(sql.Find("COMMENT ON DATABASE \"adhoc-start-demo\" IS 'adhoc:env=demo'"), 0);
  EXPECT_EQ(sql.statements.back(),
            "ALTER DATABASE \"adhoc-start-demo\" WITH ALLOW_CONNECTIONS false");
  EXPECT_EQ(sql.Find("SELECT pg_terminate_backend"), -1) << "nobody was disturbed";
}

TEST(StartCopyTest, ABusyDatabaseIsClosedForTheCopyThenOpenedAgain) {
  RecordingSql sql;
  sql.busy = true;
  ASSERT_TRUE(MakeStartCopy(sql, "demo", "env_demo", "demo-db", "adhoc-start-demo").ok());
  int closed = sql.Find("ALTER DATABASE \"demo-db\" WITH ALLOW_CONNECTIONS false");
  int ended = sql.Find("SELECT pg_terminate_backend");
  int opened = sql.Find("ALTER DATABASE \"demo-db\" WITH ALLOW_CONNECTIONS true");
  ASSERT_GE(closed, 0);
  EXPECT_GT(ended, closed);
  EXPECT_GT(opened, ended);
}

TEST(StartCopyTest, SwapClonesThenDropsThenRenames) {
  RecordingSql sql;
  ASSERT_TRUE(SwapInStartCopy(sql, "demo", "env_demo", "adhoc-start-demo", "demo-db").ok());
  int clone = sql.Find("CREATE DATABASE \"adhoc-reset-demo\" TEMPLATE \"adhoc-start-demo\"");
  int drop = sql.Find("DROP DATABASE IF EXISTS \"demo-db\" WITH (FORCE)");
  int rename = sql.Find("ALTER DATABASE \"adhoc-reset-demo\" RENAME TO \"demo-db\"");
  ASSERT_GE(clone, 0);
  EXPECT_GT(drop, clone);
  EXPECT_GT(rename, drop);

  RecordingSql none;
  none.copy_exists = false;
  Status missing = SwapInStartCopy(none, "demo", "env_demo", "adhoc-start-demo", "demo-db");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(none.Find("DROP DATABASE IF EXISTS \"demo-db\""), -1) << "the live one is untouched";
}

}  // namespace
}  // namespace adhoc::resources
