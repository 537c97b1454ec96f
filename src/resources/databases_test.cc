#include "resources/databases.h"

#include <unistd.h>

#include <atomic>
#include <map>

#include "common/paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "resources/postgres_cluster.h"
#include "resources/snapshots.h"
#include "resources/test_support.h"

namespace adhoc::resources {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- Logic, against a fake session --------------------------------------------------

// Records every statement; answers queries whose text contains a key with its rows.
class FakeSql : public SqlSession {
 public:
  Result<std::vector<SqlRow>> Query(const std::string& sql,
                                    const std::vector<std::string>& params) override {
    std::string line = sql;
    for (const auto& p : params) line += " [" + p + "]";
    statements.push_back(line);
    for (const auto& [key, rows] : answers)
      if (sql.find(key) != std::string::npos) return rows;
    return std::vector<SqlRow>{};
  }
  Result<std::string> EncryptPassword(const std::string& user,
                                      const std::string& password) override {
    return "SCRAM-SHA-256$fake:" + user;
  }
  bool Ran(const std::string& fragment) const {
    for (const auto& s : statements)
      if (s.find(fragment) != std::string::npos) return true;
    return false;
  }
  std::string All() const {
    std::string all;
    for (const auto& s : statements) all += s + "\n";
    return all;
  }

  std::vector<std::string> statements;
  std::map<std::string, std::vector<SqlRow>> answers;
};

TEST(DatabaseNamesTest, RoleNameFollowsTheEnvironment) {
  EXPECT_EQ(*RoleNameFor("feature-abc"), "env_feature_abc");
  EXPECT_FALSE(RoleNameFor("Feature").ok());
  EXPECT_FALSE(RoleNameFor("1abc").ok());
  EXPECT_FALSE(RoleNameFor("a\"; DROP ROLE postgres; --").ok());
  EXPECT_EQ(RoleNameFor("").error().kind(), ErrorKind::kBadInput);
}

TEST(DatabaseNamesTest, QuotingAndUrlEncoding) {
  EXPECT_EQ(QuoteIdentifier("feature-abc-db"), "\"feature-abc-db\"");
  EXPECT_EQ(QuoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(UrlEncode("a b/c:d@e%"), "a%20b%2Fc%3Ad%40e%25");
  EXPECT_EQ(UrlEncode("Az09-._~"), "Az09-._~");
}

TEST(DatabaseNamesTest, RandomPasswordsAre32AlphanumericsAndDiffer) {
  std::string a = RandomPassword();
  std::string b = RandomPassword();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            std::string::npos);
  EXPECT_NE(a, b);
}

TEST(EnvironmentDatabasesLogicTest, CreatesRoleAndDatabaseClosedToOthers) {
  FakeSql sql;
  EnvironmentDatabases dbs(sql, "127.5.0.2", 5432);
  dbs.set_password_source([] { return std::string("p@ss/word"); });
  auto creds = dbs.CreateEnvironmentDatabase("feature-abc", "feature-abc-db");
  ASSERT_TRUE(creds.ok()) << creds.error().message();
  EXPECT_EQ(creds->user, "env_feature_abc");
  EXPECT_EQ(creds->password, "p@ss/word");
  EXPECT_EQ(creds->url, "postgres://env_feature_abc:p%40ss%2Fword@127.5.0.2:5432/feature-abc-db");
  const std::string all = sql.All();
  EXPECT_THAT(all, HasSubstr("CREATE ROLE \"env_feature_abc\" LOGIN NOSUPERUSER NOCREATEDB "
                             "NOCREATEROLE PASSWORD 'SCRAM-SHA-256$fake:env_feature_abc'"));
  EXPECT_THAT(all, HasSubstr("CREATE DATABASE \"feature-abc-db\" OWNER \"env_feature_abc\""));
  EXPECT_THAT(all, HasSubstr("REVOKE ALL ON DATABASE \"feature-abc-db\" FROM PUBLIC"));
  EXPECT_THAT(all, HasSubstr("GRANT CONNECT, TEMPORARY ON DATABASE \"feature-abc-db\" TO "
                             "\"env_feature_abc\""));
  EXPECT_THAT(all, HasSubstr("ON DATABASE postgres, template1 FROM PUBLIC"));
  EXPECT_THAT(all, HasSubstr("COMMENT ON DATABASE \"feature-abc-db\" IS 'adhoc:env=feature-abc'"));
  EXPECT_THAT(all, Not(HasSubstr("p@ss/word"))) << "the plain password must never reach SQL";
}

TEST(EnvironmentDatabasesLogicTest, ExistingRoleKeepsItsPasswordUnlessAsked) {
  FakeSql sql;
  sql.answers["FROM pg_roles WHERE rolname"] = {{"1"}};
  sql.answers["JOIN pg_roles r"] = {{"env_demo"}};
  EnvironmentDatabases dbs(sql, "127.5.0.2", 5432);
  auto kept = dbs.CreateEnvironmentDatabase("demo", "demo-db");
  ASSERT_TRUE(kept.ok()) << kept.error().message();
  EXPECT_EQ(kept->password, "");
  EXPECT_FALSE(sql.Ran("CREATE ROLE"));
  EXPECT_FALSE(sql.Ran("ALTER ROLE"));
  EXPECT_FALSE(sql.Ran("CREATE DATABASE"));

  auto renewed = dbs.CreateEnvironmentDatabase("demo", "demo-db", /*new_password=*/true);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->password.size(), 32u);
  EXPECT_TRUE(sql.Ran("ALTER ROLE \"env_demo\" WITH LOGIN PASSWORD"));
}

TEST(EnvironmentDatabasesLogicTest, ADatabaseOfAnotherRoleIsAConflictAndLeavesNothing) {
  FakeSql sql;
  sql.answers["JOIN pg_roles r"] = {{"env_other"}};
  EnvironmentDatabases dbs(sql, "127.5.0.2", 5432);
  auto creds = dbs.CreateEnvironmentDatabase("demo", "shared-db");
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.error().kind(), ErrorKind::kConflict);
  EXPECT_THAT(creds.error().message(),
              HasSubstr("creating database 'shared-db' for environment 'demo'"));
  EXPECT_TRUE(sql.Ran("DROP ROLE IF EXISTS \"env_demo\"")) << sql.All();
  EXPECT_FALSE(sql.Ran("CREATE DATABASE"));
}

TEST(EnvironmentDatabasesLogicTest, DropRefusesADatabaseOfAnotherEnvironment) {
  FakeSql sql;
  sql.answers["JOIN pg_roles r"] = {{"env_other"}};
  EnvironmentDatabases dbs(sql, "127.5.0.2", 5432);
  auto s = dbs.DropEnvironmentDatabase("demo", "other-db");
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(sql.Ran("DROP DATABASE"));
}

// ---- Real PostgreSQL -----------------------------------------------------------------

class EnvironmentDatabasesTest : public test_servers::RealClusterTest {
 protected:
  void SetUp() override {
    RealClusterTest::SetUp();
    if (HasFatalFailure()) return;
    dbs_ = std::make_unique<EnvironmentDatabases>(*admin_, cluster_->listen_address(),
                                                  cluster_->port());
  }
  void TearDown() override {
    dbs_.reset();
    RealClusterTest::TearDown();
  }

  std::unique_ptr<EnvironmentDatabases> dbs_;
};

TEST_F(EnvironmentDatabasesTest, EnvironmentsCannotReachEachOthersDatabases) {
  auto a = dbs_->CreateEnvironmentDatabase("env-a", "env-a-db");
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto b = dbs_->CreateEnvironmentDatabase("env-b", "env-b-db");
  ASSERT_TRUE(b.ok()) << b.error().message();

  for (const auto& [own, other] : {std::pair{*a, *b}, std::pair{*b, *a}}) {
    auto mine = ConnectAs(own, own.database);
    ASSERT_TRUE(mine.ok()) << mine.error().message();
    auto created = (*mine)->Query("CREATE TABLE posts (id serial PRIMARY KEY, title text)");
    EXPECT_TRUE(created.ok()) << created.error().message();
    EXPECT_TRUE((*mine)->Query("INSERT INTO posts (title) VALUES ($1)", {"hello"}).ok());

    auto theirs = ConnectAs(own, other.database);
    ASSERT_FALSE(theirs.ok()) << own.user << " reached " << other.database;
    EXPECT_THAT(theirs.error().message(), HasSubstr("permission denied"));
    for (const char* shared : {"postgres", "template1"}) {
      auto s = ConnectAs(own, shared);
      EXPECT_FALSE(s.ok()) << own.user << " reached " << shared;
    }
    PostgresCredentials wrong = own;
    wrong.password = other.password;
    EXPECT_FALSE(ConnectAs(wrong, own.database).ok()) << "another env's password must fail";
  }
}

TEST_F(EnvironmentDatabasesTest, RecreateIsIdempotentAndRenewsThePasswordOnlyWhenAsked) {
  auto first = dbs_->CreateEnvironmentDatabase("demo", "demo-db");
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto again = dbs_->CreateEnvironmentDatabase("demo", "demo-db");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->password, "");
  EXPECT_TRUE(ConnectAs(*first, "demo-db").ok()) << "the first password still works";

  auto renewed = dbs_->CreateEnvironmentDatabase("demo", "demo-db", /*new_password=*/true);
  ASSERT_TRUE(renewed.ok()) << renewed.error().message();
  EXPECT_NE(renewed->password, first->password);
  EXPECT_TRUE(ConnectAs(*renewed, "demo-db").ok());
  EXPECT_FALSE(ConnectAs(*first, "demo-db").ok());
}

TEST_F(EnvironmentDatabasesTest, DropLeavesNoDatabaseRoleOrFiles) {
  auto c = dbs_->CreateEnvironmentDatabase("gone", "gone-db");
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto oid = admin_->Query("SELECT oid FROM pg_database WHERE datname = 'gone-db'");
  ASSERT_TRUE(oid.ok() && oid->size() == 1);
  fs::path files = paths::PostgresData(home_) / "base" / (*oid)[0][0];
  EXPECT_TRUE(fs::exists(files));

  ASSERT_TRUE(dbs_->DropEnvironmentDatabase("gone", "gone-db").ok());
  EXPECT_FALSE(*dbs_->DatabaseExists("gone-db"));
  EXPECT_FALSE(*dbs_->RoleExists("env_gone"));
  EXPECT_FALSE(fs::exists(files));
  auto again = dbs_->DropEnvironmentDatabase("gone", "gone-db");
  EXPECT_TRUE(again.ok()) << again.error().message();
}

// Reset's start copy on a real cluster (snapshots.h): a clone closed to connections, swapped
// in for the live database; the role stays while it owns a database.
TEST_F(EnvironmentDatabasesTest, AStartCopyIsSwappedInAndTheRoleGoesWithTheLastDatabase) {
  auto c = dbs_->CreateEnvironmentDatabase("demo", "demo-db");
  ASSERT_TRUE(c.ok()) << c.error().message();
  {
    auto mine = ConnectAs(*c, "demo-db");
    ASSERT_TRUE(mine.ok()) << mine.error().message();
    ASSERT_TRUE((*mine)->Query("CREATE TABLE posts (title text)").ok());
    ASSERT_TRUE((*mine)->Query("INSERT INTO posts VALUES ('sample')").ok());
    // Connected while the copy is made: closed for that moment, its connection ended.
    ASSERT_TRUE(MakeStartCopy(*admin_, "demo", "env_demo", "demo-db", "adhoc-start-demo").ok());
  }
  auto closed = admin_->Query(
      "SELECT datallowconn, shobj_description(oid, 'pg_database') FROM pg_database "
      "WHERE datname = 'adhoc-start-demo'");
  ASSERT_TRUE(closed.ok() && closed->size() == 1);
  EXPECT_EQ((*closed)[0][0], "f");
  EXPECT_EQ((*closed)[0][1], "adhoc:env=demo");
  {
    auto mine = ConnectAs(*c, "demo-db");
    ASSERT_TRUE(mine.ok()) << "open again: " << mine.error().message();
    ASSERT_TRUE((*mine)->Query("INSERT INTO posts VALUES ('added later')").ok());
    EXPECT_FALSE(ConnectAs(*c, "adhoc-start-demo").ok());
    ASSERT_TRUE(SwapInStartCopy(*admin_, "demo", "env_demo", "adhoc-start-demo", "demo-db").ok());
    EXPECT_FALSE((*mine)->Query("SELECT 1").ok()) << "its connection was ended";
  }
  auto mine = ConnectAs(*c, "demo-db");
  ASSERT_TRUE(mine.ok()) << mine.error().message();
  auto rows = (*mine)->Query("SELECT title FROM posts");
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0][0], "sample");
  EXPECT_TRUE((*mine)->Query("INSERT INTO posts VALUES ('writable')").ok());
  mine->reset();

  ASSERT_TRUE(dbs_->DropEnvironmentDatabase("demo", "demo-db").ok());
  EXPECT_TRUE(*dbs_->RoleExists("env_demo")) << "its start copy still belongs to it";
  ASSERT_TRUE(dbs_->DropEnvironmentDatabase("demo", "adhoc-start-demo").ok());
  EXPECT_FALSE(*dbs_->RoleExists("env_demo"));
}

TEST_F(EnvironmentDatabasesTest, DropSucceedsWhileAClientIsConnected) {
  auto c = dbs_->CreateEnvironmentDatabase("busy", "busy-db");
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto client = ConnectAs(*c, "busy-db");
  ASSERT_TRUE(client.ok()) << client.error().message();
  ASSERT_TRUE((*client)->Query("SELECT 1").ok());

  auto dropped = dbs_->DropEnvironmentDatabase("busy", "busy-db");
  ASSERT_TRUE(dropped.ok()) << dropped.error().message();
  EXPECT_FALSE(*dbs_->DatabaseExists("busy-db"));
  EXPECT_FALSE(*dbs_->RoleExists("env_busy"));
  EXPECT_FALSE((*client)->Query("SELECT 1").ok()) << "the client was forced out";
}

TEST_F(EnvironmentDatabasesTest, CloneAndListFindWhatAdhocMade) {
  auto a = dbs_->CreateEnvironmentDatabase("source", "source-db");
  ASSERT_TRUE(a.ok()) << a.error().message();
  {
    auto s = ConnectAs(*a, "source-db");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Query("CREATE TABLE t AS SELECT 42 AS answer").ok());
  }
  auto b = dbs_->CreateEnvironmentDatabase("copy", "copy-db");
  ASSERT_TRUE(b.ok());
  auto cloned = dbs_->CloneDatabase("source-db", "copy-db-2", "env_copy");
  ASSERT_TRUE(cloned.ok()) << cloned.error().message();
  auto as_b = ConnectAs(*b, "copy-db-2");
  ASSERT_TRUE(as_b.ok()) << as_b.error().message();
  auto tables = (*as_b)->Query("SELECT count(*) FROM pg_tables WHERE tablename = 't'");
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ((*tables)[0][0], "1") << "the clone carries the template's tables";
  EXPECT_FALSE(ConnectAs(*a, "copy-db-2").ok()) << "the clone is closed to other roles";

  auto listed = dbs_->ListEnvironmentDatabases();
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  std::map<std::string, ManagedObject> by_name;
  for (const auto& o : *listed) by_name[o.name] = o;
  ASSERT_TRUE(by_name.count("source-db"));
  EXPECT_EQ(by_name["source-db"].env, "source");
  EXPECT_EQ(by_name["source-db"].owner, "env_source");
  ASSERT_TRUE(by_name.count("copy-db-2"));
  EXPECT_EQ(by_name["copy-db-2"].env, "copy");
  ASSERT_TRUE(by_name.count("env_copy"));
  EXPECT_EQ(by_name["env_copy"].kind, ManagedObject::Kind::kRole);
  EXPECT_FALSE(by_name.count("postgres"));
}

TEST_F(EnvironmentDatabasesTest, AnEnvironmentsDatabasesIncludeOneNotMarkedYet) {
  ASSERT_TRUE(dbs_->CreateEnvironmentDatabase("cut", "cut-db").ok());
  ASSERT_TRUE(dbs_->CreateEnvironmentDatabase("other", "other-db").ok());
  // A creation cut short between CREATE DATABASE and its COMMENT.
  ASSERT_TRUE(admin_->Query("CREATE DATABASE \"cut-half\" OWNER env_cut").ok());
  auto found = dbs_->DatabasesOf("cut");
  ASSERT_TRUE(found.ok()) << found.error().message();
  EXPECT_EQ(*found, (std::vector<std::string>{"cut-db", "cut-half"}));
}

}  // namespace
}  // namespace adhoc::resources
