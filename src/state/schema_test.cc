#include "state/schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "common/paths.h"
#include "state/store.h"
#include "state/test_support.h"

namespace adhoc::state {
namespace {

using testing::ReadBytes;
using testing::TempDir;

// Runs `sql` on the file at `path` with the plain SQLite API, as another program would.
void RawExec(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  std::string text = message ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << text;
}

int64_t RawQueryInt(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  int64_t value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

TEST(SchemaTest, MigrationsAreNumberedInOrder) {
  int expected = 1;
  for (const Migration& m : Migrations()) EXPECT_EQ(m.version, expected++);
  EXPECT_EQ(CurrentSchemaVersion(), expected - 1);
  EXPECT_GE(CurrentSchemaVersion(), 2);
}

TEST(SchemaTest, OpenCreatesFileAndFolderAtCurrentSchemaInWalMode) {
  TempDir dir;
  auto path = paths::StateDb(dir.path() / "home" / "nested");
  auto store = Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  EXPECT_TRUE(std::filesystem::exists(path));
  store->reset();
  EXPECT_EQ(RawQueryInt(path, "PRAGMA user_version"), CurrentSchemaVersion());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SchemaTest, MigratesARealSchemaOneFileToCurrentKeepingItsRows) {
  TempDir dir;
  auto path = paths::StateDb(dir.path());
  // What an adhoc that knew only migration 1 would have left behind.
  RawExec(path, std::string(Migrations()[0].sql) +
                    "PRAGMA user_version = 1;"
                    "INSERT INTO environments VALUES ('old', 'running', 'brian', 10, 20, NULL, "
                    "3600, NULL, '127.1.0.0/24', 'old.localhost', 'http://old.localhost:8080', "
                    "'{}', 'abc');");
  ASSERT_EQ(RawQueryInt(path, "PRAGMA user_version"), 1);

  auto clock = std::make_shared<FakeClock>();
  auto store = Store::Open(path, {.clock = clock});
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto old = (*store)->GetEnvironment("old");
  ASSERT_TRUE(old.ok()) << old.error().message();
  EXPECT_EQ(old->owner, "brian");
  EXPECT_EQ(old->ttl_seconds, 3600);
  EXPECT_EQ(old->status, EnvStatus::kRunning);
  // Tables of later migrations exist and work.
  auto op = (*store)->BeginOperation("old", "deploy", "{}", {"build"});
  ASSERT_TRUE(op.ok()) << op.error().message();
  auto slot = (*store)->AcquireSlot("old");
  ASSERT_TRUE(slot.ok()) << slot.error().message();
  EXPECT_EQ(*slot, 1);
  store->reset();
  EXPECT_EQ(RawQueryInt(path, "PRAGMA user_version"), CurrentSchemaVersion());
}

TEST(SchemaTest, MigrationFiveAddsExpiryWarningsToAVersionFourFile) {
  TempDir dir;
  auto path = paths::StateDb(dir.path());
  // What an adhoc that knew migrations 1-4 left behind: an environment.
  std::string sql;
  for (const Migration& m : Migrations())
    if (m.version <= 4) sql += m.sql;
  RawExec(path, sql +
                    "PRAGMA user_version = 4;"
                    "INSERT INTO environments VALUES ('old', 'running', 'brian', 10, 20, NULL, "
                    "3600, NULL, '127.1.0.0/24', 'old.localhost', 'http://old.localhost:8080', "
                    "'{}', 'abc');");
  auto store = Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  ASSERT_TRUE((*store)->PutExpiryWarning({"old", 3'600'010, 0}).ok());
  EXPECT_EQ((*store)->ListExpiryWarnings()->at("old").expires_at, 3'600'010);
  EXPECT_EQ((*store)->GetEnvironment("old")->owner, "brian");
  store->reset();
  EXPECT_EQ(RawQueryInt(path, "PRAGMA user_version"), 5);
  EXPECT_EQ(RawQueryInt(path, "SELECT count(*) FROM expiry_warnings"), 1);
}

TEST(SchemaTest, ReopeningACurrentFileChangesNothing) {
  TempDir dir;
  auto path = paths::StateDb(dir.path());
  {
    auto store = Store::Open(path);
    ASSERT_TRUE(store.ok());
    Environment env;
    env.name = "demo";
    ASSERT_TRUE((*store)->PutEnvironment(env).ok());
  }
  auto store = Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  EXPECT_TRUE((*store)->GetEnvironment("demo").ok());
}

TEST(SchemaTest, RefusesAFileFromANewerAdhocAndLeavesItByteIdentical) {
  for (const char* journal_mode : {"DELETE", "WAL"}) {
    SCOPED_TRACE(journal_mode);
    TempDir dir;
    auto path = paths::StateDb(dir.path());
    const int newer = CurrentSchemaVersion() + 4;
    RawExec(path, std::string("PRAGMA journal_mode = ") + journal_mode +
                      "; CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('kept');"
                      "PRAGMA user_version = " +
                      std::to_string(newer) + ";");
    const std::string before = ReadBytes(path);
    ASSERT_FALSE(before.empty());

    auto store = Store::Open(path);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().message(),
              "state file " + path.string() + " was written by a newer adhoc (schema " +
                  std::to_string(newer) + "; this adhoc knows up to " +
                  std::to_string(CurrentSchemaVersion()) + "): upgrade adhoc");
    EXPECT_EQ(store.error().exit_code(), 1);
    EXPECT_EQ(ReadBytes(path), before);
    EXPECT_EQ(RawQueryInt(path, "PRAGMA user_version"), newer);
  }
}

TEST(SchemaTest, AFileThatIsNotADatabaseIsRefusedWithItsName) {
  TempDir dir;
  auto path = paths::StateDb(dir.path());
  {
    std::ofstream out(path);
    out << "this is not a database, just some text that is long enough to matter\n";
  }
  const std::string before = ReadBytes(path);
  auto store = Store::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message().find(path.string()), std::string::npos)
      << store.error().message();
  EXPECT_EQ(ReadBytes(path), before);
}

}  // namespace
}  // namespace adhoc::state
