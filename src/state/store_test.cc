#include "state/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/paths.h"
#include "state/test_support.h"

namespace adhoc::state {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    store_ = std::move(opened).value();
  }

  Environment MakeEnvironment(const std::string& name) {
    Environment env;
    env.name = name;
    env.status = EnvStatus::kCreating;
    env.owner = "brian";
    env.ttl_seconds = 3 * 24 * 3600;
    env.sleep_after_seconds = 1800;
    env.address_block = "127.23.4.0/24";
    env.hostname = name + ".localhost";
    env.url = "http://" + name + ".localhost:8080";
    env.spec_json = R"({"services":["gunicorn"]})";
    env.env_file_hash = "sha256:abc";
    return env;
  }

  void AddEnvironment(const std::string& name) {
    auto put = store_->PutEnvironment(MakeEnvironment(name));
    ASSERT_TRUE(put.ok()) << put.error().message();
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>(1'000'000);
  std::unique_ptr<Store> store_;
};

// The state file holds every environment's credentials.
TEST(StoreFileTest, TheStateFileAndItsWalAreTheOwnersOnly) {
  TempDir dir;
  const fs::path db = paths::StateDb(dir.path());
  {
    auto store = Store::Open(db);
    ASSERT_TRUE(store.ok()) << store.error().message();
    Environment e;
    e.name = "demo";
    ASSERT_TRUE((*store)->PutEnvironment(e).ok());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      fs::path f = db;
      f += suffix;
      ASSERT_TRUE(fs::exists(f)) << f;
      EXPECT_EQ(fs::status(f).permissions() & fs::perms(0777), fs::perms(0600)) << f;
    }
  }
  // A file made by an older adhoc (0644) is tightened when opened.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::path f = db;
    f += suffix;
    if (fs::exists(f)) fs::permissions(f, fs::perms(0644));
  }
  auto again = Store::Open(db);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(fs::status(db).permissions() & fs::perms(0777), fs::perms(0600));
}

TEST_F(StoreTest, EnvironmentRoundTripsWithStampedTimes) {
  Environment env = MakeEnvironment("demo");
  env.last_request_at = 777;
  auto put = store_->PutEnvironment(env);
  ASSERT_TRUE(put.ok()) << put.error().message();

  auto got = store_->GetEnvironment("demo");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->name, "demo");
  EXPECT_EQ(got->status, EnvStatus::kCreating);
  EXPECT_EQ(got->owner, "brian");
  EXPECT_EQ(got->created_at, 1'000'000);
  EXPECT_EQ(got->updated_at, 1'000'000);
  EXPECT_EQ(got->last_request_at, 777);
  EXPECT_EQ(got->ttl_seconds, 3 * 24 * 3600);
  EXPECT_EQ(got->sleep_after_seconds, 1800);
  EXPECT_EQ(got->address_block, "127.23.4.0/24");
  EXPECT_EQ(got->hostname, "demo.localhost");
  EXPECT_EQ(got->url, "http://demo.localhost:8080");
  EXPECT_EQ(got->spec_json, R"({"services":["gunicorn"]})");
  EXPECT_EQ(got->env_file_hash, "sha256:abc");

  // An update keeps the birth time and moves updated_at.
  clock_->Advance(5000);
  Environment changed = *got;
  changed.status = EnvStatus::kRunning;
  changed.created_at = 0;
  changed.sleep_after_seconds.reset();
  ASSERT_TRUE(store_->PutEnvironment(changed).ok());
  got = store_->GetEnvironment("demo");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, EnvStatus::kRunning);
  EXPECT_EQ(got->created_at, 1'000'000);
  EXPECT_EQ(got->updated_at, 1'005'000);
  EXPECT_FALSE(got->sleep_after_seconds.has_value());
}

TEST_F(StoreTest, ListStatusRequestAndDeleteEnvironments) {
  AddEnvironment("zeta");
  AddEnvironment("alpha");
  auto list = store_->ListEnvironments();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[1].name, "zeta");

  ASSERT_TRUE(store_->SetEnvironmentStatus("alpha", EnvStatus::kSleeping).ok());
  ASSERT_TRUE(store_->RecordRequest("alpha", 5000).ok());
  ASSERT_TRUE(store_->RecordRequest("alpha", 4000).ok());  // older news never goes back
  auto alpha = store_->GetEnvironment("alpha");
  ASSERT_TRUE(alpha.ok());
  EXPECT_EQ(alpha->status, EnvStatus::kSleeping);
  EXPECT_EQ(alpha->last_request_at, 5000);

  ASSERT_TRUE(store_->DeleteEnvironment("alpha").ok());
  auto gone = store_->GetEnvironment("alpha");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(gone.error().message(),
            "reading environment 'alpha': environment 'alpha' is not recorded");
  auto found = store_->FindEnvironment("alpha");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  auto again = store_->DeleteEnvironment("alpha");
  EXPECT_EQ(again.error().kind(), ErrorKind::kNotFound);
}

TEST_F(StoreTest, VersionsRoundTripPerImage) {
  AddEnvironment("demo");
  ASSERT_TRUE(
      store_->PutVersion({"demo", "backend", "v1.0.0", "c1", "t1", "/r/backend/t1", 0}).ok());
  ASSERT_TRUE(
      store_->PutVersion({"demo", "frontend", "v2.0.0", "c2", "t2", "/r/frontend/t2", 42}).ok());
  clock_->Advance(10);
  ASSERT_TRUE(
      store_->PutVersion({"demo", "backend", "v1.1.0", "c3", "t3", "/r/backend/t3", 0}).ok());

  auto backend = store_->GetVersion("demo", "backend");
  ASSERT_TRUE(backend.ok());
  EXPECT_EQ(backend->ref, "v1.1.0");
  EXPECT_EQ(backend->commit, "c3");
  EXPECT_EQ(backend->tree, "t3");
  EXPECT_EQ(backend->release_path, "/r/backend/t3");
  EXPECT_EQ(backend->deployed_at, 1'000'010);
  auto all = store_->ListVersions("demo");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].image, "frontend");
  EXPECT_EQ((*all)[1].deployed_at, 42);

  ASSERT_TRUE(store_->DeleteVersion("demo", "frontend").ok());
  EXPECT_EQ(store_->GetVersion("demo", "frontend").error().kind(), ErrorKind::kNotFound);
}

TEST_F(StoreTest, RecordsOfAnUnknownEnvironmentAreRefused) {
  auto version = store_->PutVersion({"ghost", "backend", "v1", "c", "t", "/r", 0});
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(version.error().message().find("environment 'ghost' is not recorded"),
            std::string::npos);
  EXPECT_FALSE(store_->AllocateBlock("ghost", "127.1.0.0/24").ok());
  EXPECT_FALSE(store_->AcquireSlot("ghost").ok());
}

TEST_F(StoreTest, RandomIsMadeOnceAndStaysStable) {
  AddEnvironment("demo");
  AddEnvironment("other");
  int calls = 0;
  auto generator = [&] { return "value-" + std::to_string(++calls); };
  auto first = store_->GetOrCreateRandom("demo", "secret_key", generator);
  auto second = store_->GetOrCreateRandom("demo", "secret_key", generator);
  auto other = store_->GetOrCreateRandom("other", "secret_key", generator);
  ASSERT_TRUE(first.ok() && second.ok() && other.ok());
  EXPECT_EQ(*first, "value-1");
  EXPECT_EQ(*second, "value-1");
  EXPECT_EQ(*other, "value-2");
  EXPECT_EQ(calls, 2);
  auto randoms = store_->ListRandoms("demo");
  ASSERT_TRUE(randoms.ok());
  EXPECT_EQ(randoms->at("secret_key"), "value-1");
}

TEST_F(StoreTest, SecretsKeepTheirBytesPerScope) {
  AddEnvironment("demo");
  std::vector<uint8_t> bytes = {0x00, 0xff, 0x10, 0x00, 0x7f};
  ASSERT_TRUE(store_->PutSecret({"", "demo_password", bytes, 0}).ok());
  ASSERT_TRUE(store_->PutSecret({"demo", "demo_password", {0x01}, 0}).ok());
  ASSERT_TRUE(store_->PutSecret({"demo", "empty", {}, 0}).ok());

  auto project = store_->GetSecret("", "demo_password");
  ASSERT_TRUE(project.ok()) << project.error().message();
  EXPECT_EQ(project->ciphertext, bytes);
  EXPECT_EQ(project->updated_at, 1'000'000);
  auto scoped = store_->GetSecret("demo", "demo_password");
  ASSERT_TRUE(scoped.ok());
  EXPECT_EQ(scoped->ciphertext, std::vector<uint8_t>{0x01});
  auto empty = store_->GetSecret("demo", "empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->ciphertext.empty());
  auto listed = store_->ListSecrets("demo");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);

  ASSERT_TRUE(store_->DeleteSecret("", "demo_password").ok());
  auto missing = store_->GetSecret("", "demo_password");
  EXPECT_EQ(missing.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message(),
            "reading secret 'demo_password' of the project: no such secret");
}

TEST_F(StoreTest, DatabaseCredentialsRoundTrip) {
  AddEnvironment("demo");
  ASSERT_TRUE(store_->PutDatabaseCredentials({"demo", "demo-role", "pw", "demo-db"}).ok());
  auto got = store_->GetDatabaseCredentials("demo");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->role, "demo-role");
  EXPECT_EQ(got->password, "pw");
  EXPECT_EQ(got->database, "demo-db");
  ASSERT_TRUE(store_->DeleteDatabaseCredentials("demo").ok());
  EXPECT_EQ(store_->GetDatabaseCredentials("demo").error().kind(), ErrorKind::kNotFound);
}

TEST_F(StoreTest, TasksRoundTripIncludingLargeStartTimes) {
  AddEnvironment("demo");
  auto id = store_->NextTaskId("demo", "gunicorn");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "gunicorn-1");
  EXPECT_EQ(*store_->NextTaskId("demo", "gunicorn"), "gunicorn-2");
  EXPECT_EQ(*store_->NextTaskId("demo", "migrate"), "migrate-1");

  Task task;
  task.env = "demo";
  task.id = "gunicorn-1";
  task.process = "gunicorn";
  task.kind = "service";
  task.generation = "backend@v1.0.0";
  task.address = "127.23.4.2";
  task.port = 8000;
  task.pid = 4242;
  task.start_time = (uint64_t{1} << 63) + 5;  // survives the signed column
  task.shim_pid = 4241;
  task.shim_start_time = 123456789;
  task.status = TaskStatus::kHealthy;
  task.restarts = 2;
  task.release_path = "/r/backend/t1";
  task.started_at = 900;
  ASSERT_TRUE(store_->PutTask(task).ok());

  auto got = store_->GetTask("demo", "gunicorn-1");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->process, "gunicorn");
  EXPECT_EQ(got->kind, "service");
  EXPECT_EQ(got->generation, "backend@v1.0.0");
  EXPECT_EQ(got->address, "127.23.4.2");
  EXPECT_EQ(got->port, 8000);
  EXPECT_EQ(got->pid, 4242);
  EXPECT_EQ(got->start_time, (uint64_t{1} << 63) + 5);
  EXPECT_EQ(got->shim_pid, 4241);
  EXPECT_EQ(got->shim_start_time, 123456789u);
  EXPECT_EQ(got->status, TaskStatus::kHealthy);
  EXPECT_EQ(got->restarts, 2);
  EXPECT_FALSE(got->exit_code.has_value());
  EXPECT_EQ(got->release_path, "/r/backend/t1");
  EXPECT_EQ(got->started_at, 900);
  EXPECT_FALSE(got->ended_at.has_value());

  task.status = TaskStatus::kExited;
  task.exit_code = 0;
  task.ended_at = 1000;
  ASSERT_TRUE(store_->PutTask(task).ok());
  got = store_->GetTask("demo", "gunicorn-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, TaskStatus::kExited);
  EXPECT_EQ(got->exit_code, 0);
  EXPECT_EQ(got->ended_at, 1000);

  AddEnvironment("other");
  Task other = task;
  other.env = "other";  // the same id in another environment is another task
  ASSERT_TRUE(store_->PutTask(other).ok());
  EXPECT_EQ(store_->ListTasks("demo")->size(), 1u);
  EXPECT_EQ(store_->ListAllTasks()->size(), 2u);
  ASSERT_TRUE(store_->DeleteTask("demo", "gunicorn-1").ok());
  EXPECT_TRUE(store_->ListTasks("demo")->empty());
}

TEST_F(StoreTest, RoutesAreReplacedAsAWholeAndKeepTheirOrder) {
  AddEnvironment("demo");
  AddEnvironment("other");
  std::vector<Route> routes = {
      {"", "demo.localhost", "/api/*", std::nullopt, "gunicorn", RouteKind::kService, ""},
      {"", "demo.localhost", "/static/*", 5, "", RouteKind::kFolder, "/h/envs/demo/static"},
      {"", "demo.localhost", "/*", std::nullopt, "web-ui", RouteKind::kService, ""},
  };
  ASSERT_TRUE(store_->ReplaceRoutes("demo", routes).ok());
  ASSERT_TRUE(store_->ReplaceRoutes("other", {routes[2]}).ok());

  auto got = store_->ListRoutes("demo");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].env, "demo");
  EXPECT_EQ((*got)[0].pattern, "/api/*");
  EXPECT_FALSE((*got)[0].priority.has_value());
  EXPECT_EQ((*got)[1].kind, RouteKind::kFolder);
  EXPECT_EQ((*got)[1].priority, 5);
  EXPECT_EQ((*got)[1].folder_path, "/h/envs/demo/static");
  EXPECT_EQ((*got)[2].service, "web-ui");
  EXPECT_EQ(store_->ListAllRoutes()->size(), 4u);

  ASSERT_TRUE(store_->ReplaceRoutes("demo", {routes[0]}).ok());
  EXPECT_EQ(store_->ListRoutes("demo")->size(), 1u);
  EXPECT_EQ(store_->ListAllRoutes()->size(), 2u);
}

TEST_F(StoreTest, AddressBlocksAreUniqueAndNameTheirHolder) {
  AddEnvironment("demo");
  AddEnvironment("other");
  ASSERT_TRUE(store_->AllocateBlock("demo", "127.23.4.0/24").ok());
  EXPECT_TRUE(store_->AllocateBlock("demo", "127.23.4.0/24").ok());  // idempotent
  auto taken = store_->AllocateBlock("other", "127.23.4.0/24");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().kind(), ErrorKind::kConflict);
  EXPECT_EQ(taken.error().message(),
            "allocating address block 127.23.4.0/24 to environment 'other': it is held by "
            "environment 'demo'");
  ASSERT_TRUE(store_->AllocateBlock("other", "127.23.5.0/24").ok());
  auto blocks = store_->ListBlocks();
  ASSERT_TRUE(blocks.ok());
  ASSERT_EQ(blocks->size(), 2u);
  EXPECT_EQ((*blocks)[0].env, "demo");
  EXPECT_EQ((*blocks)[0].allocated_at, 1'000'000);

  ASSERT_TRUE(store_->ReleaseBlock("127.23.4.0/24").ok());
  EXPECT_TRUE(store_->AllocateBlock("other", "127.23.4.0/24").ok());
}

TEST_F(StoreTest, SlotsTakeTheLowestFreeAndAreNotReusedWhileTheEnvironmentLives) {
  for (const char* name : {"a", "b", "c"}) AddEnvironment(name);
  EXPECT_EQ(*store_->AcquireSlot("a"), 1);
  EXPECT_EQ(*store_->AcquireSlot("b"), 2);
  EXPECT_EQ(*store_->AcquireSlot("a"), 1);  // its own, again
  ASSERT_TRUE(store_->DeleteEnvironment("a").ok());
  EXPECT_EQ(*store_->AcquireSlot("c"), 1);  // a's slot freed with it
  AddEnvironment("d");
  EXPECT_EQ(*store_->AcquireSlot("d"), 3);
  auto slots = store_->ListSlots();
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(slots->size(), 3u);
  EXPECT_EQ(slots->at("b"), 2);
  EXPECT_EQ(**store_->GetSlot("c"), 1);
}

TEST_F(StoreTest, DeletingAnEnvironmentRemovesEverythingScopedToIt) {
  AddEnvironment("demo");
  ASSERT_TRUE(store_->PutVersion({"demo", "backend", "v1", "c", "t", "/r", 0}).ok());
  ASSERT_TRUE(store_->GetOrCreateRandom("demo", "k", [] { return "v"; }).ok());
  ASSERT_TRUE(store_->PutSecret({"demo", "s", {1}, 0}).ok());
  ASSERT_TRUE(store_->PutSecret({"", "project", {1}, 0}).ok());
  ASSERT_TRUE(store_->PutDatabaseCredentials({"demo", "r", "p", "d"}).ok());
  Task task;
  task.env = "demo";
  task.id = "gunicorn-1";
  ASSERT_TRUE(store_->PutTask(task).ok());
  ASSERT_TRUE(store_->ReplaceRoutes("demo", {Route{.pattern = "/*", .service = "web"}}).ok());
  ASSERT_TRUE(store_->AllocateBlock("demo", "127.9.0.0/24").ok());
  ASSERT_TRUE(store_->AcquireSlot("demo").ok());
  ASSERT_TRUE(store_->NextTaskId("demo", "gunicorn").ok());

  ASSERT_TRUE(store_->DeleteEnvironment("demo").ok());
  AddEnvironment("demo");  // a new life starts from nothing
  EXPECT_TRUE(store_->ListVersions("demo")->empty());
  EXPECT_TRUE(store_->ListRandoms("demo")->empty());
  EXPECT_TRUE(store_->ListSecrets("demo")->empty());
  EXPECT_EQ(store_->ListSecrets("")->size(), 1u);  // project secrets stay
  EXPECT_FALSE(store_->GetDatabaseCredentials("demo").ok());
  EXPECT_TRUE(store_->ListTasks("demo")->empty());
  EXPECT_TRUE(store_->ListRoutes("demo")->empty());
  EXPECT_TRUE(store_->ListBlocks()->empty());
  EXPECT_FALSE(store_->GetSlot("demo")->has_value());
  EXPECT_EQ(*store_->NextTaskId("demo", "gunicorn"), "gunicorn-1");
}

TEST_F(StoreTest, TransactCommitsAllOrNothing) {
  Status failed = store_->Transact([&](Store& tx) -> Status {
    ADHOC_RETURN_IF_ERROR(tx.PutEnvironment(MakeEnvironment("demo")));
    ADHOC_RETURN_IF_ERROR(tx.PutVersion({"demo", "backend", "v1", "c", "t", "/r", 0}));
    return Failed("the build broke");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(), "the build broke");
  EXPECT_FALSE(store_->FindEnvironment("demo")->has_value());

  Status ok = store_->Transact([&](Store& tx) -> Status {
    ADHOC_RETURN_IF_ERROR(tx.PutEnvironment(MakeEnvironment("demo")));
    return tx.PutVersion({"demo", "backend", "v1", "c", "t", "/r", 0});
  });
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_TRUE(store_->GetVersion("demo", "backend").ok());
}

TEST_F(StoreTest, AFailedStepInsideATransactionRollsBackOnlyItself) {
  AddEnvironment("demo");
  AddEnvironment("other");
  ASSERT_TRUE(store_->AllocateBlock("other", "127.9.0.0/24").ok());
  Status st = store_->Transact([&](Store& tx) -> Status {
    ADHOC_RETURN_IF_ERROR(tx.SetEnvironmentStatus("demo", EnvStatus::kRunning));
    // Fails inside (a conflict); the caller chooses to carry on.
    EXPECT_FALSE(tx.AllocateBlock("demo", "127.9.0.0/24").ok());
    return tx.AllocateBlock("demo", "127.10.0.0/24");
  });
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(store_->GetEnvironment("demo")->status, EnvStatus::kRunning);
  EXPECT_EQ(store_->ListBlocks()->size(), 2u);
}

TEST_F(StoreTest, AnExceptionInsideATransactionBecomesAnErrorAndRollsBack) {
  Status st = store_->Transact([&](Store& tx) -> Status {
    ADHOC_RETURN_IF_ERROR(tx.PutEnvironment(MakeEnvironment("demo")));
    throw std::runtime_error("boom");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("boom"), std::string::npos);
  EXPECT_FALSE(store_->FindEnvironment("demo")->has_value());
  // The store is still usable afterwards.
  AddEnvironment("demo");
}

TEST_F(StoreTest, TwoStoresOnTheSameFileSeeEachOthersWrites) {
  auto second = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
  ASSERT_TRUE(second.ok()) << second.error().message();
  AddEnvironment("demo");
  auto seen = (*second)->GetEnvironment("demo");
  ASSERT_TRUE(seen.ok()) << seen.error().message();
  EXPECT_EQ(seen->owner, "brian");
  ASSERT_TRUE((*second)->SetEnvironmentStatus("demo", EnvStatus::kRunning).ok());
  EXPECT_EQ(store_->GetEnvironment("demo")->status, EnvStatus::kRunning);
}

TEST_F(StoreTest, ConcurrentWritersThroughTwoConnectionsAllSucceed) {
  auto second = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
  ASSERT_TRUE(second.ok());
  AddEnvironment("demo");
  constexpr int kWrites = 150;
  std::atomic<int> failures{0};
  std::string first_failure;
  std::mutex failure_mu;
  auto writer = [&](Store* store, const std::string& prefix) {
    for (int i = 0; i < kWrites; ++i) {
      Status st = store->Transact([&](Store& tx) -> Status {
        ADHOC_RETURN_IF_ERROR(tx.AppendEvent("demo", "test", prefix + std::to_string(i)));
        return tx.RecordRequest("demo", i);
      });
      if (!st.ok()) {
        failures++;
        std::lock_guard lock(failure_mu);
        if (first_failure.empty()) first_failure = st.error().message();
      }
    }
  };
  std::thread a(writer, store_.get(), "a");
  std::thread b(writer, second->get(), "b");
  std::thread c(writer, store_.get(), "c");  // shares a connection with `a`
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  auto events = store_->ListEvents({.env = "demo", .limit = 0});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 3u * kWrites);
}

}  // namespace
}  // namespace adhoc::state
