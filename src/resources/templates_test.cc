// Template databases on a real cluster: what a build makes can be copied into an environment's
// database, whose role then owns (and can alter) every object; a failed build leaves nothing.
#include "resources/templates.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "resources/test_support.h"

namespace adhoc::resources {
namespace {
using ::testing::HasSubstr;

constexpr char kKey[] = "0123456789abcdef";

TEST(TemplateNameTest, OnlyHexKeysMakeNames) {
  EXPECT_EQ(*TemplateName(kKey), "adhoc_tpl_0123456789abcdef");
  EXPECT_FALSE(TemplateName("short").ok());
  EXPECT_FALSE(TemplateName("0123456789ABCDEF").ok());
  EXPECT_FALSE(TemplateName("01234567\"; DROP DATABASE postgres; --").ok());
}

class DatabaseTemplatesTest : public test_servers::RealClusterTest {
 protected:
  void SetUp() override {
    RealClusterTest::SetUp();
    if (HasFatalFailure()) return;
    dbs_ = std::make_unique<EnvironmentDatabases>(*admin_, cluster_->listen_address(),
                                                  cluster_->port());
    templates_ = std::make_unique<DatabaseTemplates>(
        *admin_,
        [this](const std::string& database) {
          return ConnectPostgresAdmin(home_, cluster_->port(), database);
        },
        cluster_->listen_address(), cluster_->port());
  }
  void TearDown() override {
    templates_.reset();
    dbs_.reset();
    RealClusterTest::TearDown();
  }

  // A build that does what a migration does: a table with a sequence, an index, rows.
  void Build() {
    auto creds = templates_->BeginBuild(kKey, "backend/tree1");
    ASSERT_TRUE(creds.ok()) << creds.error().message();
    {
      auto s = ConnectAs(*creds, creds->database);
      ASSERT_TRUE(s.ok()) << s.error().message();
      auto made = (*s)->Query(
          "CREATE TABLE posts (id serial PRIMARY KEY, title text); "
          "CREATE INDEX posts_title ON posts (title); "
          "INSERT INTO posts (title) VALUES ('first'), ('second')");
      ASSERT_TRUE(made.ok()) << made.error().message();
    }
    auto finished = templates_->FinishBuild(kKey);
    ASSERT_TRUE(finished.ok()) << finished.error().message();
    last_build_ = *creds;
  }

  std::unique_ptr<EnvironmentDatabases> dbs_;
  std::unique_ptr<DatabaseTemplates> templates_;
  PostgresCredentials last_build_;
};

TEST_F(DatabaseTemplatesTest, ACopyBelongsToTheEnvironmentWhoseRoleCanMigrateIt) {
  EXPECT_FALSE(*templates_->Ready(kKey));
  ASSERT_NO_FATAL_FAILURE(Build());
  EXPECT_TRUE(*templates_->Ready(kKey));
  EXPECT_FALSE(ConnectAs(last_build_, last_build_.database).ok())
      << "a built template takes no connections";

  auto app = dbs_->CreateEnvironmentDatabase("app", "app-db");
  ASSERT_TRUE(app.ok()) << app.error().message();
  auto copied = templates_->CopyInto(kKey, "app", "app-db");
  ASSERT_TRUE(copied.ok()) << copied.error().message();

  auto s = ConnectAs(*app, "app-db");
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto rows = (*s)->Query("SELECT count(*) FROM posts");
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  EXPECT_EQ((*rows)[0][0], "2");
  // The next version's migration: alter the table, use its sequence, add a table.
  auto migrated = (*s)->Query(
      "ALTER TABLE posts ADD COLUMN body text; "
      "INSERT INTO posts (title) VALUES ('third'); "
      "DROP INDEX posts_title; "
      "CREATE TABLE comments (id serial PRIMARY KEY)");
  EXPECT_TRUE(migrated.ok()) << migrated.error().message();
  auto owners = (*s)->Query(
      "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
      "WHERE c.relnamespace = 'public'::regnamespace AND r.rolname <> 'env_app'");
  ASSERT_TRUE(owners.ok());
  EXPECT_EQ((*owners)[0][0], "0") << "every object belongs to the environment's role";

  // The template is untouched by the copy's changes, and another role cannot reach the copy.
  auto other = dbs_->CreateEnvironmentDatabase("other", "other-db");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(ConnectAs(*other, "app-db").ok());
  ASSERT_TRUE(templates_->CopyInto(kKey, "other", "other-db").ok());
  auto theirs = ConnectAs(*other, "other-db");
  ASSERT_TRUE(theirs.ok());
  auto columns = (*theirs)->Query(
      "SELECT count(*) FROM information_schema.columns WHERE table_name = 'posts'");
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ((*columns)[0][0], "2") << "the first copy's migration did not reach the template";

  auto listed = templates_->List();
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, kKey);
  EXPECT_EQ((*listed)[0].release, "backend/tree1");
  EXPECT_TRUE((*listed)[0].ready);
  EXPECT_GT((*listed)[0].bytes, 0u);
}

TEST_F(DatabaseTemplatesTest, AnUnfinishedBuildIsNotReadyAndIsRemovedByTheNextOne) {
  auto creds = templates_->BeginBuild(kKey, "backend/tree1");
  ASSERT_TRUE(creds.ok()) << creds.error().message();
  EXPECT_FALSE(*templates_->Ready(kKey));
  auto listed = templates_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_FALSE((*listed)[0].ready);
  auto app = dbs_->CreateEnvironmentDatabase("app", "app-db");
  ASSERT_TRUE(app.ok());
  EXPECT_FALSE(templates_->CopyInto(kKey, "app", "app-db").ok())
      << "a template being built cannot be copied";

  ASSERT_NO_FATAL_FAILURE(Build());  // begins again over the leftover
  EXPECT_TRUE(*templates_->Ready(kKey));

  ASSERT_TRUE(templates_->Remove(kKey).ok());
  EXPECT_FALSE(*dbs_->DatabaseExists("adhoc_tpl_0123456789abcdef"));
  EXPECT_FALSE(*dbs_->RoleExists("adhoc_tpl_0123456789abcdef"));
  EXPECT_TRUE(templates_->Remove(kKey).ok()) << "removing what is gone is fine";
}

TEST_F(DatabaseTemplatesTest, RemovingUnfinishedBuildsKeepsTheReadyTemplates) {
  ASSERT_NO_FATAL_FAILURE(Build());
  ASSERT_TRUE(templates_->BeginBuild("fedcba9876543210", "backend/tree2").ok());
  auto removed = templates_->RemoveUnfinished();
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(*dbs_->DatabaseExists("adhoc_tpl_fedcba9876543210"));
  EXPECT_FALSE(*dbs_->RoleExists("adhoc_tpl_fedcba9876543210"));
  EXPECT_TRUE(*templates_->Ready(kKey));
}

TEST_F(DatabaseTemplatesTest, CopyingOverAnotherEnvironmentsDatabaseIsAConflict) {
  ASSERT_NO_FATAL_FAILURE(Build());
  ASSERT_TRUE(dbs_->CreateEnvironmentDatabase("owner", "taken-db").ok());
  ASSERT_TRUE(dbs_->CreateEnvironmentDatabase("thief", "thief-db").ok());
  auto s = templates_->CopyInto(kKey, "thief", "taken-db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kConflict);
  EXPECT_THAT(s.error().message(), HasSubstr("env_owner"));
  EXPECT_TRUE(*dbs_->DatabaseExists("taken-db"));
}

TEST_F(DatabaseTemplatesTest, ASpareIsTakenByTheNextCopyClosedToOthersAndGoesWithItsTemplate) {
  EXPECT_FALSE(*templates_->MakeSpare(kKey)) << "no template, no spare";
  ASSERT_NO_FATAL_FAILURE(Build());
  auto made = templates_->MakeSpare(kKey);
  ASSERT_TRUE(made.ok()) << made.error().message();
  EXPECT_TRUE(*made);
  EXPECT_TRUE(*templates_->HasSpare(kKey));
  EXPECT_FALSE(*templates_->MakeSpare(kKey)) << "one spare per template";

  // No role reaches a spare.
  auto app = dbs_->CreateEnvironmentDatabase("app", "app-db");
  ASSERT_TRUE(app.ok()) << app.error().message();
  EXPECT_FALSE(ConnectAs(*app, "adhoc_spr_0123456789abcdef").ok());
  auto listed = templates_->List();
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  ASSERT_EQ(listed->size(), 1u) << "the spare is counted with its template, not beside it";
  EXPECT_TRUE((*listed)[0].ready);

  auto copied = templates_->CopyInto(kKey, "app", "app-db");
  ASSERT_TRUE(copied.ok()) << copied.error().message();
  EXPECT_TRUE(*copied) << "the spare was the copy";
  EXPECT_FALSE(*templates_->HasSpare(kKey));
  EXPECT_FALSE(*dbs_->DatabaseExists("adhoc_spr_0123456789abcdef"));
  auto s = ConnectAs(*app, "app-db");
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto rows = (*s)->Query("SELECT count(*) FROM posts");
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  EXPECT_EQ((*rows)[0][0], "2");
  EXPECT_TRUE((*s)->Query("ALTER TABLE posts ADD COLUMN body text").ok())
      << "the environment's role owns what the spare held";
  auto other = dbs_->CreateEnvironmentDatabase("other", "other-db");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(ConnectAs(*other, "app-db").ok());

  // Without a spare the copy is made as before.
  auto second = templates_->CopyInto(kKey, "other", "other-db");
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_FALSE(*second);

  ASSERT_TRUE(*templates_->MakeSpare(kKey));
  ASSERT_TRUE(templates_->Remove(kKey).ok());
  EXPECT_FALSE(*dbs_->DatabaseExists("adhoc_spr_0123456789abcdef"));
  EXPECT_FALSE(*dbs_->DatabaseExists("adhoc_tpl_0123456789abcdef"));
  EXPECT_FALSE(*dbs_->RoleExists("adhoc_tpl_0123456789abcdef"));
}

TEST_F(DatabaseTemplatesTest, ASpareInUseIsLeftWholeAndTheCopyIsMadeInstead) {
  ASSERT_NO_FATAL_FAILURE(Build());
  ASSERT_TRUE(*templates_->MakeSpare(kKey));
  // As `up` does before a copy: the role only.
  ASSERT_TRUE(dbs_->CreateEnvironmentDatabase("app", "app-db", false, false).ok());
  // Someone connected to the spare: its rename, and so its whole hand-over, is refused.
  auto inside = ConnectPostgresAdmin(home_, cluster_->port(), "adhoc_spr_0123456789abcdef");
  ASSERT_TRUE(inside.ok()) << inside.error().message();
  auto adopted = dbs_->AdoptDatabase("adhoc_spr_0123456789abcdef", "app-db", "env_app");
  EXPECT_FALSE(adopted.ok());
  EXPECT_TRUE(*templates_->HasSpare(kKey)) << "nothing of the hand-over happened";
  EXPECT_FALSE(*dbs_->DatabaseExists("app-db"));

  auto copied = templates_->CopyInto(kKey, "app", "app-db");
  ASSERT_TRUE(copied.ok()) << copied.error().message();
  EXPECT_FALSE(*copied) << "copied from the template instead";
  EXPECT_TRUE(*templates_->HasSpare(kKey));
}

TEST_F(DatabaseTemplatesTest, AHalfMadeSpareIsNeverTakenAndAnOrphanedOneIsRemoved) {
  ASSERT_NO_FATAL_FAILURE(Build());
  // As a MakeSpare cut short before its mark.
  ASSERT_TRUE(admin_
                  ->Query("CREATE DATABASE adhoc_spr_0123456789abcdef TEMPLATE "
                          "adhoc_tpl_0123456789abcdef")
                  .ok());
  EXPECT_FALSE(*templates_->HasSpare(kKey));
  ASSERT_TRUE(dbs_->CreateEnvironmentDatabase("app", "app-db").ok());
  auto copied = templates_->CopyInto(kKey, "app", "app-db");
  ASSERT_TRUE(copied.ok()) << copied.error().message();
  EXPECT_FALSE(*copied);
  auto made = templates_->MakeSpare(kKey);
  ASSERT_TRUE(made.ok()) << made.error().message();
  EXPECT_TRUE(*made) << "made again over the half-made one";
  EXPECT_TRUE(*templates_->HasSpare(kKey));

  // A spare whose template is gone (removed while it was being made) is an unfinished entry.
  ASSERT_TRUE(admin_->Query("CREATE DATABASE adhoc_spr_fedcba9876543210").ok());
  ASSERT_TRUE(admin_
                  ->Query("COMMENT ON DATABASE adhoc_spr_fedcba9876543210 IS "
                          "'adhoc:spare=fedcba9876543210'")
                  .ok());
  auto listed = templates_->List();
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].key, "fedcba9876543210");
  EXPECT_EQ((*listed)[1].database, "adhoc_spr_fedcba9876543210");
  EXPECT_FALSE((*listed)[1].ready);
  auto removed = templates_->RemoveUnfinished();
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(*dbs_->DatabaseExists("adhoc_spr_fedcba9876543210"));
  EXPECT_TRUE(*templates_->HasSpare(kKey)) << "the ready template's spare stays";
}

}  // namespace
}  // namespace adhoc::resources
