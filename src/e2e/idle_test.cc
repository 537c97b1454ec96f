// Asleep when idle, never forgotten (issue 13), with real processes through the command line:
// an environment past its TTL is destroyed and only it; `ttl = "never"` is kept; `adhoc gc`
// removes a hand-made orphan database, role, folder and process and nothing else; an idle
// environment falls asleep (no process left at all, its worker notwithstanding), a request
// held by the router wakes it and is answered with its data, and its idle time counts from
// the end of its `up`; sleep and wake by hand.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "common/paths.h"
#include "common/unix_socket.h"
#include "e2e/sandbox.h"
#include "state/store.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class IdleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
  }

  void EnvFile(const std::string& env, const std::string& lines) {
    std::ofstream(box_.repo() / "envs" / (env + ".toml"))
        << "owner = \"test\"\n"
        << lines << "\n[versions]\nbackend = \"HEAD\"\nfrontend = \"HEAD\"\n";
  }

  void Up(const std::string& env) {
    CommandResult r = box_.Adhoc({"up", env});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // The status `ls` shows for `env` ("" when it is not listed).
  std::string Status(const std::string& env) {
    json ls = box_.AdhocJson({"ls"});
    if (!ls.is_object()) return "";
    for (const auto& e : ls["environments"])
      if (e["name"] == env) return e.value("status", "");
    return "";
  }

  // Waits up to `seconds` for `env`'s status to become `want`; whether it did.
  bool WaitForStatus(const std::string& env, const std::string& want, int seconds) {
    for (int i = 0; i < seconds * 5; ++i) {
      if (Status(env) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  // The statuses `ls` shows for `env`, looked at every 200 ms until `end`; a look that ends
  // after `end` does not count.
  std::set<std::string> StatusesUntil(const std::string& env,
                                      std::chrono::steady_clock::time_point end) {
    std::set<std::string> seen;
    while (std::chrono::steady_clock::now() < end) {
      std::string status = Status(env);
      if (std::chrono::steady_clock::now() < end) seen.insert(status);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return seen;
  }

  // The processes of `env` left after waiting up to `seconds` for none to be.
  std::vector<HomeProcess> ProcessesLeft(const std::string& env, int seconds = 30) {
    std::vector<HomeProcess> left;
    for (int i = 0; i < seconds * 10; ++i) {
      left = box_.HomeProcesses("/envs/" + env + "/");
      if (left.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return left;
  }

  // Requests the router has in flight to `env` (-1 when its feed does not say).
  int RouterInFlight(const std::string& env) {
    auto sock = UnixSocket::Connect(paths::RouterSocket(box_.home()));
    if (!sock.ok() || !sock->SendAll("{\"op\":\"stats\"}\n").ok()) return -1;
    std::string buffer;
    auto line = sock->ReadLine(buffer, UnixSocket::Clock::now() + std::chrono::seconds(10),
                               size_t{16} << 20);
    if (!line) return -1;
    json stats = json::parse(*line, nullptr, false);
    if (!stats.is_object() || !stats["envs"].contains(env)) return -1;
    return stats["envs"][env].value("in_flight", -1);
  }

  std::string Lines(const std::vector<HomeProcess>& processes) {
    std::string out;
    for (const auto& p : processes) out += "\n  " + std::to_string(p.pid) + " " + p.cmdline;
    return out;
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(IdleTest, TtlExpiryDestroysExactlyTheExpiredEnvironment) {
  EnvFile("brief", "ttl = \"4s\"");
  EnvFile("kept", "ttl = \"never\"");
  Up("alpha");  // ttl 1d
  Up("kept");
  Up("brief");
  ASSERT_EQ(box_.Http("alpha", "POST", "/api/items", "alpha-data").status, 201);
  // brief counts from its creation (no request): gone within seconds of its 4 s.
  bool gone = false;
  for (int i = 0; i < 150 && !gone; ++i) {
    gone = Status("brief").empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(gone) << box_.Adhoc({"ls"}).output;
  auto left = box_.Leftovers("brief");
  std::string all;
  for (const auto& l : left) all += "\n  " + l;
  EXPECT_TRUE(left.empty()) << "left of brief:" << all;
  // An event says why.
  auto store = state::Store::Open(paths::StateDb(box_.home()));
  ASSERT_TRUE(store.ok());
  state::EventQuery q;
  q.env = "brief";
  auto events = (*store)->ListEvents(q);
  ASSERT_TRUE(events.ok());
  std::string expired;
  for (const auto& e : *events)
    if (e.kind == "expired") expired = e.message;
  EXPECT_NE(expired.find("past its ttl of 4s"), std::string::npos) << expired;
  // Only brief: the others run on, with their data.
  EXPECT_EQ(Status("alpha"), "running");
  EXPECT_EQ(Status("kept"), "running");
  EXPECT_NE(box_.Http("alpha", "GET", "/api/items").body.find("alpha-data"), std::string::npos);
  EXPECT_EQ(box_.Http("kept", "GET", "/api/health").status, 200);
  json kept = box_.AdhocJson({"status", "kept"});
  EXPECT_FALSE(kept.contains("expires_ms")) << kept;
  // A gc finds nothing more to destroy: `never` is never collected.
  json gc = box_.AdhocJson({"gc", "--dry-run"});
  ASSERT_TRUE(gc.is_object());
  EXPECT_TRUE(gc["expired"].empty()) << gc;
}

TEST_F(IdleTest, GcRemovesAHandMadeOrphanAndNothingElse) {
  Up("alpha");
  ASSERT_EQ(box_.Http("alpha", "POST", "/api/items", "alpha-data").status, 201);
  // What a crash could leave: a database and role marked as adhoc's for an environment
  // without a record, its folder (with Redis data) and a process running in it.
  ASSERT_TRUE(box_.Sql("CREATE ROLE env_ghost LOGIN").empty());
  ASSERT_TRUE(box_.Sql("COMMENT ON ROLE env_ghost IS 'adhoc:env=ghost'").empty());
  ASSERT_TRUE(box_.Sql("CREATE DATABASE \"ghost-db\" OWNER env_ghost").empty());
  ASSERT_TRUE(box_.Sql("COMMENT ON DATABASE \"ghost-db\" IS 'adhoc:env=ghost'").empty());
  fs::path work = box_.home() / "envs/ghost/tasks/ghost-1/work";
  fs::create_directories(work);
  fs::create_directories(box_.home() / "envs/ghost/redis");
  std::ofstream(box_.home() / "envs/ghost/redis/dump.rdb") << "REDIS0011";
  std::string spawn =
      "cd '" + work.string() + "' && setsid sleep 600 >/dev/null 2>&1 < /dev/null &";
  ASSERT_EQ(std::system(spawn.c_str()), 0);
  std::vector<HomeProcess> ghost;
  for (int i = 0; i < 50 && ghost.empty(); ++i) {
    ghost = box_.HomeProcesses("/envs/ghost/");
    if (ghost.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ghost.size(), 1u) << Lines(ghost);
  auto alpha_processes = box_.HomeProcesses("/envs/alpha/");

  // --dry-run says what would go and removes nothing.
  json dry = box_.AdhocJson({"gc", "--dry-run"});
  ASSERT_TRUE(dry.is_object());
  std::set<std::string> kinds;
  for (const auto& g : dry["garbage"]) {
    EXPECT_EQ(g.value("env", ""), "ghost") << "only the ghost's things are garbage: " << g;
    kinds.insert(g.value("kind", ""));
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"database", "role", "folder", "process"})) << dry;
  EXPECT_EQ(box_.Sql("SELECT 1 FROM pg_roles WHERE rolname = 'env_ghost'").size(), 1u);
  EXPECT_TRUE(fs::exists(work));
  EXPECT_EQ(kill(ghost[0].pid, 0), 0);

  CommandResult text = box_.Adhoc({"gc"});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("removed database  ghost-db"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("removed role      env_ghost"), std::string::npos) << text.output;
  // Gone: every trace of the ghost.
  EXPECT_TRUE(box_.Sql("SELECT 1 FROM pg_database WHERE datname = 'ghost-db'").empty());
  EXPECT_TRUE(box_.Sql("SELECT 1 FROM pg_roles WHERE rolname = 'env_ghost'").empty());
  EXPECT_FALSE(fs::exists(box_.home() / "envs/ghost"));
  for (int i = 0; i < 50 && kill(ghost[0].pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_NE(kill(ghost[0].pid, 0), 0) << "the orphan process still runs";
  // Nothing else: alpha runs with its processes, database and data.
  EXPECT_EQ(box_.HomeProcesses("/envs/alpha/").size(), alpha_processes.size());
  EXPECT_NE(box_.Http("alpha", "GET", "/api/items").body.find("alpha-data"), std::string::npos);
  EXPECT_EQ(Status("alpha"), "running");
  // And a second gc has nothing to do.
  json again = box_.AdhocJson({"gc", "--dry-run"});
  ASSERT_TRUE(again.is_object());
  EXPECT_TRUE(again["garbage"].empty()) << again;
}

TEST_F(IdleTest, SleepAndWakeByHandKeepTheData) {
  Up("alpha");
  ASSERT_EQ(box_.Http("alpha", "POST", "/api/items", "before-sleep").status, 201);
  auto beats = box_.WaitFor("alpha", "/api/heartbeats", 20, [](const HttpAnswer& a) {
    return a.status == 200 && json::parse(a.body)["heartbeats"].get<int>() > 0;
  });
  ASSERT_EQ(beats.status, 200);
  int heartbeats = json::parse(beats.body)["heartbeats"];

  // A request in flight as it falls asleep is answered: the sleep waits for it (3 s, under
  // the service's 5 s drain).
  auto slow =
      std::async(std::launch::async, [&] { return box_.Http("alpha", "GET", "/api/slow"); });
  for (int i = 0; i < 500 && RouterInFlight("alpha") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(RouterInFlight("alpha"), 1) << "the slow request never reached the router";
  CommandResult slept = box_.Adhoc({"sleep", "alpha"});
  ASSERT_EQ(slept.exit_code, 0) << slept.output;
  HttpAnswer slow_answer = slow.get();
  EXPECT_EQ(slow_answer.status, 200) << slow_answer.body;
  EXPECT_EQ(Status("alpha"), "sleeping");
  // No process at all: services, worker and Redis.
  auto left = ProcessesLeft("alpha");
  EXPECT_TRUE(left.empty()) << Lines(left);
  json status = box_.AdhocJson({"status", "alpha"});
  EXPECT_EQ(status["status"], "sleeping") << status;
  EXPECT_EQ(box_.Adhoc({"sleep", "alpha"}).exit_code, 0) << "asleep already is fine";
  // Bad names and unknown environments.
  EXPECT_EQ(box_.Adhoc({"sleep", "Not_A_Name"}).exit_code, 2);
  EXPECT_EQ(box_.Adhoc({"wake", "nosuch"}).exit_code, 1);
  EXPECT_EQ(box_.Adhoc({"run", "alpha", "--", "true"}).exit_code, 1) << "asleep: wake it first";

  CommandResult woke = box_.Adhoc({"wake", "alpha"});
  ASSERT_EQ(woke.exit_code, 0) << woke.output;
  EXPECT_EQ(Status("alpha"), "running");
  auto items = box_.Http("alpha", "GET", "/api/items");
  EXPECT_EQ(items.status, 200);
  EXPECT_NE(items.body.find("before-sleep"), std::string::npos) << items.body;
  // Redis kept its data across the sleep (the worker counts on from where it was).
  auto after = box_.Http("alpha", "GET", "/api/heartbeats");
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_GE(json::parse(after.body)["heartbeats"].get<int>(), heartbeats);
}

TEST_F(IdleTest, ARequestStillBeingAnsweredKeepsItAwake) {
  // Begun before the idle time ran out and answered after it (longer than the service's 5 s
  // drain too): the environment stays awake while it is answered, then falls asleep.
  EnvFile("long", "sleep_after = \"2s\"");
  Up("long");
  auto slow = std::async(std::launch::async,
                         [&] { return box_.Http("long", "GET", "/api/slow?seconds=6"); });
  auto sent = std::chrono::steady_clock::now();
  for (int i = 0; i < 500 && RouterInFlight("long") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(RouterInFlight("long"), 1) << "the slow request never reached the router";
  EXPECT_EQ(StatusesUntil("long", sent + std::chrono::seconds(5)), std::set<std::string>{"running"})
      << box_.Adhoc({"ls"}).output;
  HttpAnswer answer = slow.get();
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_TRUE(WaitForStatus("long", "sleeping", 30)) << box_.Adhoc({"ls"}).output;
}

TEST_F(IdleTest, AnUpSlowerThanSleepAfterEndsAwakeAndIdleTimeCountsFromItsEnd) {
  // The seed task alone takes longer than sleep_after: counted from the environment's
  // creation, it would be idle long enough the moment `up` returns.
  EnvFile("slow", "sleep_after = \"4s\"\n[env]\nSEED_SECONDS = \"5\"");
  Up("slow");
  // For 2 s after `up` returns it stays awake (its idle clock started a little before that):
  // looked at every 200 ms, for as long as the machine was quick enough for it to mean
  // something.
  auto seen = StatusesUntil("slow", std::chrono::steady_clock::now() + std::chrono::seconds(2));
  // (Nothing seen: a machine too slow for any look to fall within the 2 s.)
  if (!seen.empty()) {
    EXPECT_EQ(seen, std::set<std::string>{"running"}) << box_.Adhoc({"ls"}).output;
  }
  ASSERT_EQ(box_.Http("slow", "POST", "/api/items", "while-awake").status, 201);
  // It still falls asleep once idle.
  EXPECT_TRUE(WaitForStatus("slow", "sleeping", 30)) << box_.Adhoc({"ls"}).output;
}

TEST_F(IdleTest, AnIdleEnvironmentFallsAsleepAndAHeldRequestWakesIt) {
  // The worker (like beat) works on in the background: it is not a request, so it does not
  // keep the environment awake.
  EnvFile("nap", "sleep_after = \"3s\"");
  Up("nap");
  ASSERT_EQ(box_.Http("nap", "POST", "/api/items", "kept-through-sleep").status, 201);
  ASSERT_TRUE(WaitForStatus("nap", "sleeping", 30)) << box_.Adhoc({"ls"}).output;
  auto left = ProcessesLeft("nap");
  EXPECT_TRUE(left.empty()) << "a sleeping environment runs no process:" << Lines(left);

  // Requests while it sleeps and while it wakes are held, then answered with its data.
  std::vector<std::future<HttpAnswer>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(
        std::async(std::launch::async, [&] { return box_.Http("nap", "GET", "/api/items"); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  for (auto& f : held) {
    HttpAnswer a = f.get();
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_NE(a.body.find("kept-through-sleep"), std::string::npos) << a.body;
  }
  EXPECT_EQ(Status("nap"), "running");
  // And it falls asleep again once idle.
  EXPECT_TRUE(WaitForStatus("nap", "sleeping", 30)) << box_.Adhoc({"ls"}).output;
}

}  // namespace
}  // namespace adhoc::e2e
