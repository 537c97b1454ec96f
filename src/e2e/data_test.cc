// Data on μblog (examples/ublog) with real PostgreSQL, Redis, gunicorn, Celery and nginx:
// snapshots round-trip rows and Redis keys; an env file's `data` starts a new environment from a
// snapshot (on a newer backend, whose migration then runs), another environment or a plain SQL
// dump; reset returns an environment to its start data with its services left running; bad
// names and missing sources are clear errors that leave nothing behind.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/exec.h"
#include "common/paths.h"
#include "e2e/sandbox.h"
#include "resources/databases.h"
#include "resources/postgres_cluster.h"
#include "resources/redis.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json Json(const HttpAnswer& a) {
  auto j = json::parse(a.body, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

// The address and password of an environment's Redis, from its redis.conf.
struct RedisAt {
  std::string host;
  std::string password;
};

RedisAt RedisOf(const Sandbox& box, const std::string& env) {
  std::ifstream conf(paths::RedisDir(box.home(), env) / "redis.conf");
  RedisAt at;
  std::string line;
  while (std::getline(conf, line)) {
    std::istringstream words(line);
    std::string key, value;
    words >> key >> value;
    if (value.size() >= 2 && value.front() == '"') value = value.substr(1, value.size() - 2);
    if (key == "bind") at.host = value;
    if (key == "requirepass") at.password = value;
  }
  return at;
}

// One Redis command on `db` of env's Redis; the reply's text (or integer as text).
std::string Redis(const Sandbox& box, const std::string& env, const std::string& db,
                  const std::vector<std::string>& command) {
  RedisAt at = RedisOf(box, env);
  auto r = resources::RedisCommands(at.host, 6379, at.password, {{"SELECT", db}, command});
  if (!r.ok()) return "ERROR " + r.error().message();
  if (r->type == resources::RespReply::Type::kInteger) return std::to_string(r->integer);
  if (r->type == resources::RespReply::Type::kNull) return "(nil)";
  return r->text;
}

// The cluster's port, from its socket's name in the private socket folder.
int PostgresPort(const Sandbox& box) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths::PostgresRun(box.home()), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(".s.PGSQL.", 0) == 0 && name.find(".lock") == std::string::npos)
      return std::atoi(name.c_str() + 9);
  }
  return 0;
}

// Rows of `query` on one database of the cluster, as its superuser.
std::vector<std::string> SqlOn(const Sandbox& box, const std::string& database,
                               const std::string& query) {
  resources::PostgresConnectParams p;
  p.host = paths::PostgresRun(box.home()).string();
  p.port = PostgresPort(box);
  p.database = database;
  auto session = resources::ConnectPostgres(p);
  if (!session.ok()) return {"ERROR " + session.error().message()};
  auto rows = (*session)->Query(query);
  if (!rows.ok()) return {"ERROR " + rows.error().message()};
  std::vector<std::string> out;
  for (const auto& row : *rows) out.push_back(row.empty() ? "" : row[0]);
  return out;
}

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromScript(fs::path(ADHOC_SOURCE_DIR) / "examples/ublog/make-repo.sh");
    ASSERT_TRUE(fs::exists(box_.repo() / "adhoc.toml"));
  }

  void WriteEnvFile(const std::string& env, const std::string& data,
                    const std::string& backend = "v1.0.0") {
    std::ofstream(box_.repo() / "envs" / (env + ".toml"))
        << "owner = \"test\"\n"
        << (data.empty() ? "" : "data = \"" + data + "\"\n") << "[versions]\nbackend = \""
        << backend << "\"\nfrontend = \"v2.0.0\"\n";
  }

  int Posts(const std::string& env) {
    return Json(box_.Http(env, "GET", "/api/drf/fbv/posts/")).value("count", -1);
  }

  // A post made through the API (as the demo user); its path.
  std::string AddPost(const std::string& env, const std::string& body) {
    auto login = box_.Http(env, "POST", "/api/auth/token/",
                           R"({"email": "demo@example.com", "password": "demo"})",
                           {{"Content-Type", "application/json"}});
    EXPECT_EQ(login.status, 200) << login.body;
    std::string token = Json(login).value("token", "");
    auto created =
        box_.Http(env, "POST", "/api/drf/fbv/posts/", json{{"body", body}}.dump(),
                  {{"Authorization", "Token " + token}, {"Content-Type", "application/json"}});
    EXPECT_EQ(created.status, 201) << created.body;
    return "/api/drf/fbv/posts/" + std::to_string(Json(created).value("id", 0)) + "/";
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(DataTest, ASnapshotRoundTripsRowsAndRedisKeysAndIsRemovable) {
  WriteEnvFile("demo", "");
  CommandResult up = box_.Adhoc({"up", "demo"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  ASSERT_EQ(Posts("demo"), 20);
  std::string saved = AddPost("demo", "Saved in a snapshot");
  ASSERT_EQ(Redis(box_, "demo", "0", {"SET", "greeting", "hello from demo"}), "OK");
  ASSERT_EQ(Redis(box_, "demo", "3", {"SET", "other-db", "kept too"}), "OK");
  ASSERT_EQ(Redis(box_, "demo", "0", {"SET", "expiring", "soon", "PX", "600000"}), "OK");
  auto pids = box_.TaskPids("demo");

  CommandResult snap = box_.Adhoc({"snapshot", "demo", "preprod"});
  ASSERT_EQ(snap.exit_code, 0) << snap.output;
  EXPECT_NE(snap.output.find("saved as snapshot preprod"), std::string::npos) << snap.output;
  EXPECT_EQ(box_.TaskPids("demo"), pids) << "taking it disturbed nothing";
  EXPECT_EQ(Posts("demo"), 21);
  fs::path dir = paths::SnapshotDir(box_.home(), "preprod");
  EXPECT_TRUE(fs::exists(dir / "database.dump"));
  EXPECT_EQ(fs::status(dir / "database.dump").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all);

  json listed = box_.AdhocJson({"snapshots"});
  ASSERT_TRUE(listed.is_object()) << listed;
  ASSERT_EQ(listed["snapshots"].size(), 1u) << listed;
  EXPECT_EQ(listed["snapshots"][0]["env"], "demo");
  EXPECT_GT(listed["snapshots"][0]["size_bytes"].get<int64_t>(), 1000);
  EXPECT_GE(listed["snapshots"][0]["redis_keys"].get<int64_t>(), 3);
  EXPECT_EQ(listed["snapshots"][0]["versions"][0]["ref"], "v1.0.0") << listed;
  CommandResult text = box_.Adhoc({"snapshots"});
  EXPECT_NE(text.output.find("preprod"), std::string::npos) << text.output;
  EXPECT_EQ(box_.Adhoc({"snapshot", "demo", "preprod"}).exit_code, 1) << "a name is taken once";

  // A new environment from it: the rows and keys as they were, without new sample posts.
  ASSERT_EQ(Redis(box_, "demo", "0", {"SET", "greeting", "changed later"}), "OK");
  WriteEnvFile("copy", "snapshot:preprod");
  CommandResult copy = box_.Adhoc({"up", "copy"});
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  EXPECT_NE(copy.output.find("loaded from snapshot preprod"), std::string::npos) << copy.output;
  EXPECT_EQ(copy.output.find("sample-data"), std::string::npos) << copy.output;
  EXPECT_EQ(Posts("copy"), 21);
  EXPECT_EQ(Json(box_.Http("copy", "GET", saved)).value("body", ""), "Saved in a snapshot");
  EXPECT_EQ(Redis(box_, "copy", "0", {"GET", "greeting"}), "hello from demo");
  EXPECT_EQ(Redis(box_, "copy", "3", {"GET", "other-db"}), "kept too");
  long long ttl = std::atoll(Redis(box_, "copy", "0", {"PTTL", "expiring"}).c_str());
  EXPECT_GT(ttl, 0) << "its time to live came along";
  EXPECT_LE(ttl, 600000);
  // The copy's objects are its own role's: it can write.
  AddPost("copy", "Written in the copy");
  EXPECT_EQ(Posts("copy"), 22);
  EXPECT_EQ(Posts("demo"), 21) << "the copy is a copy";

  CommandResult rm = box_.Adhoc({"snapshots", "rm", "preprod"});
  ASSERT_EQ(rm.exit_code, 0) << rm.output;
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(box_.AdhocJson({"snapshots"})["snapshots"].empty());
  EXPECT_EQ(box_.Adhoc({"snapshots", "rm", "preprod"}).exit_code, 1);
}

TEST_F(DataTest, ResetReturnsToTheStartDataWithTheServicesRunning) {
  WriteEnvFile("demo", "");
  ASSERT_EQ(box_.Adhoc({"up", "demo"}).exit_code, 0);
  ASSERT_EQ(Posts("demo"), 20);
  // A key that was there when creation finished (Celery's queue binding), deleted, comes back.
  std::string start_key;
  for (const std::string db : {"0", "1", "2"}) {
    std::string k = Redis(box_, "demo", db, {"RANDOMKEY"});
    if (k != "(nil)" && k.rfind("ERROR", 0) != 0) {
      start_key = db + " " + k;
      ASSERT_EQ(Redis(box_, "demo", db, {"DEL", k}), "1");
      break;
    }
  }
  std::string added = AddPost("demo", "Gone after the reset");
  ASSERT_EQ(Redis(box_, "demo", "0", {"SET", "added-later", "x"}), "OK");
  ASSERT_EQ(Posts("demo"), 21);
  auto pids = box_.TaskPids("demo");

  CommandResult reset = box_.Adhoc({"reset", "demo"});
  ASSERT_EQ(reset.exit_code, 0) << reset.output;
  EXPECT_NE(reset.output.find("back to its start data"), std::string::npos) << reset.output;
  EXPECT_EQ(Posts("demo"), 20) << "the sample posts stay, the added one is gone";
  EXPECT_EQ(box_.Http("demo", "GET", added).status, 404);
  EXPECT_EQ(Redis(box_, "demo", "0", {"EXISTS", "added-later"}), "0");
  if (!start_key.empty()) {
    std::string db = start_key.substr(0, 1), key = start_key.substr(2);
    EXPECT_EQ(Redis(box_, "demo", db, {"EXISTS", key}), "1") << key;
  }
  EXPECT_EQ(box_.TaskPids("demo"), pids) << "no service was restarted";
  // And it still works as before: a new post, then a second reset.
  AddPost("demo", "After the reset");
  EXPECT_EQ(Posts("demo"), 21);
  ASSERT_EQ(box_.Adhoc({"reset", "demo"}).exit_code, 0);
  EXPECT_EQ(Posts("demo"), 20);

  // Destroy takes the start copy with everything else.
  ASSERT_EQ(box_.Adhoc({"destroy", "demo"}).exit_code, 0);
  EXPECT_TRUE(box_.Sql("SELECT 1 FROM pg_database WHERE datname = 'adhoc-start-demo'").empty());
  EXPECT_TRUE(box_.Leftovers("demo").empty());
}

TEST_F(DataTest, APlainSqlDumpLoadsAsTheEnvironmentsOwn) {
  WriteEnvFile("demo", "");
  ASSERT_EQ(box_.Adhoc({"up", "demo"}).exit_code, 0);
  AddPost("demo", "From the dump");
  // A plain SQL dump, as a team would make of pre-production (pg_dump's default format).
  auto bin = resources::FindPostgresBinDir();
  ASSERT_TRUE(bin.ok());
  fs::create_directories(box_.repo() / "dumps");
  ExecOptions o;
  o.env = std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}};
  auto dumped = Exec({(*bin / "pg_dump").string(), "-h", paths::PostgresRun(box_.home()).string(),
                      "-p", std::to_string(PostgresPort(box_)), "-U", "postgres", "-f",
                      (box_.repo() / "dumps/preprod.sql").string(), "demo-db"},
                     o);
  ASSERT_TRUE(dumped.ok() && dumped->exit_code == 0) << (dumped.ok() ? dumped->output : "");
  std::ifstream sql(box_.repo() / "dumps/preprod.sql");
  std::string text((std::istreambuf_iterator<char>(sql)), std::istreambuf_iterator<char>());
  ASSERT_NE(text.find("OWNER TO env_demo"), std::string::npos) << "a dump that names its owner";

  WriteEnvFile("fromfile", "file:dumps/preprod.sql");
  CommandResult fromfile = box_.Adhoc({"up", "fromfile"});
  ASSERT_EQ(fromfile.exit_code, 0) << fromfile.output;
  EXPECT_EQ(Posts("fromfile"), 21);
  EXPECT_EQ(
      SqlOn(box_, "fromfile-db", "SELECT tableowner FROM pg_tables WHERE tablename = 'blog_post'"),
      std::vector<std::string>{"env_fromfile"});
}

TEST_F(DataTest, ASnapshotOfOlderCodeGetsTheNewerMigrations) {
  WriteEnvFile("demo", "");
  ASSERT_EQ(box_.Adhoc({"up", "demo"}).exit_code, 0);
  AddPost("demo", "Before the migration");
  // A snapshot of v1.0.0's data, used by v1.1.0: its migration (total_views) is applied.
  ASSERT_EQ(box_.Adhoc({"snapshot", "demo", "old"}).exit_code, 0);
  WriteEnvFile("newer", "snapshot:old", "v1.1.0");
  CommandResult newer = box_.Adhoc({"up", "newer"});
  ASSERT_EQ(newer.exit_code, 0) << newer.output;
  EXPECT_NE(newer.output.find("0002_post_total_views"), std::string::npos) << newer.output;
  EXPECT_EQ(Posts("newer"), 21);
  EXPECT_EQ(SqlOn(box_, "newer-db",
                  "SELECT column_name FROM information_schema.columns "
                  "WHERE table_name = 'blog_post' AND column_name = 'total_views'"),
            std::vector<std::string>{"total_views"});
}

TEST_F(DataTest, BadNamesAndMissingSourcesAreClearErrorsThatLeaveNothing) {
  CommandResult bad = box_.Adhoc({"snapshot", "demo", "Bad_Name"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("snapshot name"), std::string::npos) << bad.output;
  EXPECT_EQ(box_.Adhoc({"snapshots", "rm", "../state"}).exit_code, 2);
  EXPECT_EQ(box_.Adhoc({"snapshots", "delete", "x"}).exit_code, 2);
  CommandResult nosuch = box_.Adhoc({"snapshot", "nosuch", "x"});
  EXPECT_EQ(nosuch.exit_code, 1) << nosuch.output;
  EXPECT_NE(nosuch.output.find("no environment 'nosuch'"), std::string::npos) << nosuch.output;
  EXPECT_EQ(box_.Adhoc({"reset", "nosuch"}).exit_code, 1);

  for (const std::string data : {"snapshot:missing", "env:missing", "file:missing.sql"}) {
    WriteEnvFile("demo", data);
    CommandResult up = box_.Adhoc({"up", "demo"});
    EXPECT_EQ(up.exit_code, 1) << data << "\n" << up.output;
    EXPECT_NE(up.output.find("missing"), std::string::npos) << up.output;
    // Nothing was made, not even the base: no router answers at all (status 0), which is no
    // route either.
    std::string left;
    for (const auto& l : box_.Leftovers("demo"))
      if (l != "a route: GET / answers 0") left += l + "; ";
    EXPECT_EQ(left, "") << data;
  }
  // A file outside the project folder is refused, not read.
  WriteEnvFile("demo", "file:../../../etc/passwd");
  CommandResult outside = box_.Adhoc({"up", "demo"});
  EXPECT_NE(outside.exit_code, 0) << outside.output;
  EXPECT_NE(outside.output.find("inside the project folder"), std::string::npos) << outside.output;
  EXPECT_EQ(outside.output.find("root:"), std::string::npos) << outside.output;
}

}  // namespace
}  // namespace adhoc::e2e
