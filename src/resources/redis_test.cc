#include "resources/redis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <optional>

#include "common/paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "resources/test_support.h"
#include "runtime/process.h"

namespace adhoc::resources {
namespace {

using test_servers::UniqueLoopback;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

// ---- Pure pieces ----------------------------------------------------------------------

TEST(RedisConfigTest, BindsTheEnvAddressWithAPasswordAndSavesOnlyAtShutdown) {
  RedisOptions o;
  o.host = "127.9.0.3";
  o.password = "secret";
  std::string conf = RenderRedisConfig(o, "/h/envs/a/redis");
  for (const char* line :
       {"bind 127.9.0.3\n", "port 6379\n", "protected-mode yes\n", "requirepass \"secret\"\n",
        "dir \"/h/envs/a/redis\"\n", "dbfilename dump.rdb\n", "daemonize yes\n",
        "pidfile \"/h/envs/a/redis/redis.pid\"\n", "logfile \"/h/envs/a/redis/redis.log\"\n",
        "save \"\"\n", "shutdown-on-sigterm save\n"})
    EXPECT_THAT(conf, HasSubstr(line));
}

TEST(RedisConfigTest, KeepsAnAppendOnlyFileSyncedEverySecond) {
  std::string conf = RenderRedisConfig({.host = "127.9.0.3", .password = "p"}, "/h/r");
  EXPECT_THAT(conf, HasSubstr("appendonly yes\n"));
  EXPECT_THAT(conf, HasSubstr("appendfsync everysec\n"));
  EXPECT_THAT(conf, HasSubstr("appenddirname \"appendonlydir\"\n"));
  EXPECT_EQ(conf.find("appendonly no"), std::string::npos);
}

TEST(RedisConfigTest, BoundsMemoryWithoutEvictingAndBoundsClients) {
  std::string conf = RenderRedisConfig({.host = "127.9.0.3", .password = "p"}, "/h/r");
  EXPECT_THAT(conf, HasSubstr("maxmemory " + std::to_string(kDefaultRedisMemoryMiB) + "mb\n"));
  EXPECT_THAT(conf, HasSubstr("maxmemory-policy noeviction\n"));
  EXPECT_THAT(conf, HasSubstr("maxclients 512\n"));
  std::string sized =
      RenderRedisConfig({.host = "127.9.0.3", .password = "p", .memory_mib = 256}, "/h/r");
  EXPECT_THAT(sized, HasSubstr("maxmemory 256mb\n"));
}

TEST(RespTest, EncodesCommandsAsArraysOfBulkStrings) {
  EXPECT_EQ(EncodeRespCommand({"SET", "k", "a b"}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n");
}

TEST(RespTest, ParsesEveryReplyType) {
  size_t used = 0;
  auto simple = ParseRespReply("+PONG\r\n", &used);
  ASSERT_TRUE(simple.ok() && *simple);
  EXPECT_EQ((*simple)->type, RespReply::Type::kSimple);
  EXPECT_EQ((*simple)->text, "PONG");
  EXPECT_EQ(used, 7u);

  auto error = ParseRespReply("-WRONGPASS invalid\r\n", &used);
  EXPECT_EQ((*error)->type, RespReply::Type::kError);
  EXPECT_EQ((*error)->text, "WRONGPASS invalid");

  auto integer = ParseRespReply(":-42\r\n", &used);
  EXPECT_EQ((*integer)->integer, -42);

  auto bulk = ParseRespReply("$5\r\na\r\nbc\r\n+next\r\n", &used);
  EXPECT_EQ((*bulk)->type, RespReply::Type::kBulk);
  EXPECT_EQ((*bulk)->text, "a\r\nbc");
  EXPECT_EQ(used, 11u);

  auto null = ParseRespReply("$-1\r\n", &used);
  EXPECT_EQ((*null)->type, RespReply::Type::kNull);

  auto array = ParseRespReply("*2\r\n:1\r\n$1\r\nx\r\n", &used);
  ASSERT_EQ((*array)->elements.size(), 2u);
  EXPECT_EQ((*array)->elements[1].text, "x");
}

TEST(RespTest, IncompleteInputAsksForMoreAndGarbageIsAnError) {
  size_t used = 0;
  for (const char* partial : {"", "+PON", "$5\r\nab", "*2\r\n:1\r\n"}) {
    auto r = ParseRespReply(partial, &used);
    ASSERT_TRUE(r.ok()) << partial;
    EXPECT_FALSE(r->has_value()) << partial;
  }
  EXPECT_FALSE(ParseRespReply("?what\r\n", &used).ok());
  EXPECT_FALSE(ParseRespReply(":12x\r\n", &used).ok());
}

TEST(ProcessStartTimeTest, KnowsLiveProcessesAndForgetsReapedOnes) {
  EXPECT_TRUE(runtime::ProcessStartTime(getpid()).has_value());
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status;
  waitpid(child, &status, 0);
  EXPECT_FALSE(runtime::ProcessStartTime(child).has_value());
}

// ---- Real Redis -------------------------------------------------------------------------

class TempHome {
 public:
  TempHome() {
    std::string tmpl = (fs::temp_directory_path() / "adhoc-redis-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempHome() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class RedisGuard {
 public:
  explicit RedisGuard(RedisInstance& r) : r_(r) {}
  ~RedisGuard() { (void)r_.Destroy(); }

 private:
  RedisInstance& r_;
};

Result<RespReply> Ask(const RedisCredentials& c, std::vector<std::string> command,
                      const std::string& password) {
  return RedisCommands(c.host, c.port, password, {std::move(command)});
}

std::string ReadWhole(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

pid_t RecordedPid(const RedisInstance& r) {
  std::ifstream in(r.dir() / "redis.proc");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

TEST(RedisInstanceTest, EachInstanceAcceptsOnlyItsOwnPassword) {
  TempHome home;
  RedisInstance a(home.path(), "env-a", {.host = UniqueLoopback()});
  RedisGuard guard_a(a);
  RedisInstance b(home.path(), "env-b", {.host = UniqueLoopback()});
  RedisGuard guard_b(b);
  auto started_a = a.Start();
  ASSERT_TRUE(started_a.ok()) << started_a.error().message();
  auto started_b = b.Start();
  ASSERT_TRUE(started_b.ok()) << started_b.error().message();

  RedisCredentials ca = a.credentials(), cb = b.credentials();
  EXPECT_EQ(ca.password.size(), 32u);
  EXPECT_NE(ca.password, cb.password);
  EXPECT_EQ(ca.url, "redis://:" + ca.password + "@" + ca.host + ":6379/0");
  for (const auto& [own, other] : {std::pair{ca, cb}, std::pair{cb, ca}}) {
    auto pong = Ask(own, {"PING"}, own.password);
    ASSERT_TRUE(pong.ok()) << pong.error().message();
    EXPECT_EQ(pong->text, "PONG");
    auto refused = Ask(own, {"PING"}, other.password);
    ASSERT_TRUE(refused.ok()) << refused.error().message();
    EXPECT_EQ(refused->type, RespReply::Type::kError);
    EXPECT_THAT(refused->text, HasSubstr("WRONGPASS"));
    auto anonymous = Ask(own, {"PING"}, "");
    ASSERT_TRUE(anonymous.ok());
    EXPECT_THAT(anonymous->text, HasSubstr("NOAUTH"));
  }
  EXPECT_EQ(fs::status(a.dir()).permissions(), fs::perms(0700));
}

TEST(RedisInstanceTest, StartIsIdempotentAndDataSurvivesStopStart) {
  TempHome home;
  RedisInstance r(home.path(), "keep", {.host = UniqueLoopback()});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  pid_t first = RecordedPid(r);
  ASSERT_TRUE(r.Start().ok());
  EXPECT_EQ(RecordedPid(r), first) << "a second Start must not start another server";

  RedisCredentials c = r.credentials();
  auto set = Ask(c, {"SET", "greeting", "hello"}, c.password);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->text, "OK");

  auto stopped = r.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.error().message();
  EXPECT_FALSE(*r.Running());
  EXPECT_FALSE(runtime::ProcessStartTime(first).has_value());
  EXPECT_TRUE(fs::exists(r.dir() / "dump.rdb"));
  EXPECT_TRUE(r.Stop().ok()) << "stopping a stopped server is a no-op";

  auto restarted = r.Start();
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  EXPECT_EQ(r.credentials().password, c.password) << "the password is kept across restarts";
  auto get = Ask(c, {"GET", "greeting"}, c.password);
  ASSERT_TRUE(get.ok()) << get.error().message();
  EXPECT_EQ(get->type, RespReply::Type::kBulk);
  EXPECT_EQ(get->text, "hello");
}

TEST(RedisInstanceTest, AdoptFindsTheServerAfterACallerRestart) {
  TempHome home;
  std::string host = UniqueLoopback();
  RedisInstance first(home.path(), "adopt", {.host = host});
  RedisGuard guard(first);
  ASSERT_TRUE(first.Start().ok());

  RedisInstance later(home.path(), "adopt", {.host = host});
  auto adopted = later.Adopt();
  ASSERT_TRUE(adopted.ok()) << adopted.error().message();
  EXPECT_EQ(later.credentials().password, first.credentials().password);
  ASSERT_TRUE(later.Stop().ok());
  EXPECT_FALSE(*first.Running());
  EXPECT_EQ(RedisInstance(home.path(), "adopt", {.host = host}).Adopt().error().kind(),
            ErrorKind::kNotFound);
}

TEST(RedisInstanceTest, AStaleRecordIsNotMistakenForTheServer) {
  TempHome home;
  RedisInstance r(home.path(), "stale", {.host = UniqueLoopback()});
  fs::create_directories(r.dir());
  // Our own pid with a wrong start time: a recycled pid must not count as the server.
  std::ofstream(r.dir() / "redis.proc") << getpid() << " 1\n";
  EXPECT_FALSE(*r.Running());
  EXPECT_TRUE(r.Stop().ok());
  EXPECT_TRUE(runtime::ProcessStartTime(getpid()).has_value()) << "and is never signalled";
}

TEST(RedisInstanceTest, DestroyLeavesNoProcessOrFolder) {
  TempHome home;
  RedisInstance r(home.path(), "gone", {.host = UniqueLoopback()});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  pid_t pid = RecordedPid(r);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(r.Destroy().ok());
  EXPECT_FALSE(runtime::ProcessStartTime(pid).has_value());
  EXPECT_FALSE(fs::exists(paths::RedisDir(home.path(), "gone")));
  EXPECT_TRUE(r.Destroy().ok()) << "destroying twice is fine";
}

TEST(RedisInstanceTest, ATakenAddressIsAClearConflict) {
  TempHome home;
  std::string host = UniqueLoopback();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(6379);
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  RedisInstance r(home.path(), "taken", {.host = host});
  RedisGuard guard(r);
  auto started = r.Start();
  close(fd);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().kind(), ErrorKind::kConflict);
  EXPECT_THAT(started.error().message(), HasSubstr("already in use"));
}

// Every key of `keys` with its value, or the first that is not.
std::string MissingKey(const RedisCredentials& c, int keys) {
  for (int i = 0; i < keys; ++i) {
    auto got = Ask(c, {"GET", "key-" + std::to_string(i)}, c.password);
    if (!got.ok()) return "key-" + std::to_string(i) + ": " + got.error().message();
    if (got->type != RespReply::Type::kBulk || got->text != "value-" + std::to_string(i))
      return "key-" + std::to_string(i);
  }
  return "";
}

void SetKeys(const RedisCredentials& c, int keys) {
  for (int i = 0; i < keys; ++i) {
    auto set =
        Ask(c, {"SET", "key-" + std::to_string(i), "value-" + std::to_string(i)}, c.password);
    ASSERT_TRUE(set.ok()) << set.error().message();
    ASSERT_EQ(set->text, "OK");
  }
}

// The reported fault: with `save ""` and no append-only file, a kill -9 lost every key (a
// Celery queue would be lost the same way).
TEST(RedisInstanceTest, ConfirmedWritesSurviveAKillOfTheServer) {
  TempHome home;
  RedisInstance r(home.path(), "crash", {.host = UniqueLoopback()});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  RedisCredentials c = r.credentials();
  SetKeys(c, 300);
  // The last write goes right before the kill: no time for a periodic save or fsync.
  pid_t pid = RecordedPid(r);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  for (int i = 0; i < 200 && runtime::ProcessStartTime(pid).has_value(); ++i) usleep(10 * 1000);
  EXPECT_FALSE(*r.Running());

  auto restarted = r.Start();
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  EXPECT_EQ(MissingKey(c, 300), "") << "a confirmed write was lost";
}

TEST(RedisInstanceTest, DataIsKeptAcrossStopsAndGoneAfterDestroy) {
  TempHome home;
  std::string host = UniqueLoopback();
  RedisInstance r(home.path(), "sleepy", {.host = host});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  RedisCredentials c = r.credentials();
  SetKeys(c, 50);
  for (int round = 0; round < 2; ++round) {  // a sleep, then a later one
    ASSERT_TRUE(r.Stop().ok());
    ASSERT_TRUE(r.Start().ok());
    EXPECT_EQ(MissingKey(c, 50), "") << "round " << round;
  }
  EXPECT_TRUE(fs::exists(r.dir() / "appendonlydir" / "appendonly.aof.manifest"));

  ASSERT_TRUE(r.Destroy().ok());
  EXPECT_FALSE(fs::exists(r.dir()));
  RedisInstance fresh(home.path(), "sleepy", {.host = host});
  RedisGuard fresh_guard(fresh);
  ASSERT_TRUE(fresh.Start().ok());
  RedisCredentials fc = fresh.credentials();
  EXPECT_NE(fc.password, c.password);
  auto got = Ask(fc, {"GET", "key-0"}, fc.password);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->type, RespReply::Type::kNull) << "a destroyed environment's data is gone";
}

// An environment whose Redis ran before the append-only file (its data in dump.rdb only):
// Redis alone would start an empty append-only file and ignore dump.rdb.
TEST(RedisInstanceTest, DataSavedBeforeTheAppendOnlyFileIsKept) {
  TempHome home;
  std::string host = UniqueLoopback();
  RedisInstance r(home.path(), "older", {.host = host});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  RedisCredentials c = r.credentials();
  SetKeys(c, 20);
  ASSERT_TRUE(r.Stop().ok());
  ASSERT_TRUE(fs::exists(r.dir() / "dump.rdb"));
  fs::remove_all(r.dir() / "appendonlydir");  // as an older adhoc left it

  ASSERT_TRUE(r.Start().ok());
  EXPECT_EQ(MissingKey(c, 20), "");
  EXPECT_TRUE(fs::exists(r.dir() / "appendonlydir" / "appendonly.aof.manifest"));
  EXPECT_THAT(ReadWhole(r.dir() / "redis.conf"), HasSubstr("appendonly yes\n"));
  // From now on the append-only file holds it: a kill loses nothing.
  pid_t pid = RecordedPid(r);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  for (int i = 0; i < 200 && runtime::ProcessStartTime(pid).has_value(); ++i) usleep(10 * 1000);
  ASSERT_TRUE(r.Start().ok());
  EXPECT_EQ(MissingKey(c, 20), "");
}

std::string ConfigValue(const RedisCredentials& c, const std::string& key) {
  auto reply = Ask(c, {"CONFIG", "GET", key}, c.password);
  if (!reply.ok() || reply->elements.size() != 2) return "?";
  return reply->elements[1].text;
}

TEST(RedisInstanceTest, RunsWithItsMemoryBoundAndBoundedClients) {
  TempHome home;
  RedisInstance r(home.path(), "sized", {.host = UniqueLoopback(), .memory_mib = 8});
  RedisGuard guard(r);
  auto started = r.Start();
  ASSERT_TRUE(started.ok()) << started.error().message();
  RedisCredentials c = r.credentials();
  EXPECT_EQ(ConfigValue(c, "maxmemory"), std::to_string(8 * 1024 * 1024));
  EXPECT_EQ(ConfigValue(c, "maxmemory-policy"), "noeviction");
  EXPECT_EQ(ConfigValue(c, "maxclients"), "512");
  EXPECT_EQ(r.memory_mib(), 8);
}

TEST(RedisInstanceTest, AWritePastTheBoundFailsWithOomAndEvictsNothing) {
  TempHome home;
  RedisInstance r(home.path(), "full", {.host = UniqueLoopback(), .memory_mib = 4});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  RedisCredentials c = r.credentials();
  const std::string value(256 * 1024, 'x');
  int stored = 0;
  std::optional<RespReply> refused;
  for (int i = 0; i < 64 && !refused; ++i) {  // 16 MiB at most: four times the bound
    auto set = Ask(c, {"SET", "key" + std::to_string(i), value}, c.password);
    ASSERT_TRUE(set.ok()) << set.error().message();
    if (set->type == RespReply::Type::kError)
      refused = *set;
    else
      ++stored;
  }
  ASSERT_TRUE(refused.has_value()) << "64 values of 256 KiB were all accepted under 4 MiB";
  EXPECT_THAT(refused->text, HasSubstr("OOM"));
  EXPECT_GT(stored, 0);
  // Nothing was evicted to make room: every key written before the refusal is still there.
  auto size = Ask(c, {"DBSIZE"}, c.password);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->integer, stored);
  // Reads and deletes still work, and free room again.
  auto del = Ask(c, {"DEL", "key0"}, c.password);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->integer, 1);
}

TEST(RedisInstanceTest, TheBoundIsKeptAcrossRestartsAndChangedLive) {
  TempHome home;
  std::string host = UniqueLoopback();
  RedisInstance r(home.path(), "resize", {.host = host, .memory_mib = 16});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  ASSERT_TRUE(r.Stop().ok());
  // Started again by a caller without the files (memory_mib 0): the config's bound stays.
  RedisInstance again(home.path(), "resize", {.host = host});
  ASSERT_TRUE(again.Start().ok());
  RedisCredentials c = again.credentials();
  EXPECT_EQ(ConfigValue(c, "maxmemory"), std::to_string(16 * 1024 * 1024));
  EXPECT_EQ(again.memory_mib(), 16);
  pid_t pid = RecordedPid(again);

  // A new bound for the running server: changed live, and written for its next start.
  RedisInstance resized(home.path(), "resize", {.host = host, .memory_mib = 32});
  auto applied = resized.Start();
  ASSERT_TRUE(applied.ok()) << applied.error().message();
  EXPECT_EQ(RecordedPid(resized), pid) << "not restarted";
  EXPECT_EQ(ConfigValue(c, "maxmemory"), std::to_string(32 * 1024 * 1024));
  EXPECT_THAT(ReadWhole(r.dir() / "redis.conf"), HasSubstr("maxmemory 32mb\n"));
  RedisInstance later(home.path(), "resize", {.host = host});
  ASSERT_TRUE(later.Adopt().ok());
  EXPECT_EQ(later.memory_mib(), 32);
}

TEST(RedisInstanceTest, ItsFilesAreReadableByItsOwnerOnly) {
  TempHome home;
  RedisInstance r(home.path(), "private", {.host = UniqueLoopback()});
  RedisGuard guard(r);
  ASSERT_TRUE(r.Start().ok());
  RedisCredentials c = r.credentials();
  SetKeys(c, 5);
  ASSERT_TRUE(r.Stop().ok());  // writes dump.rdb too
  ASSERT_TRUE(r.Start().ok());
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(r.dir())) {
    auto perms = entry.symlink_status().permissions();
    if (entry.is_directory()) {
      EXPECT_EQ(perms & fs::perms(0077), fs::perms::none) << entry.path();
    } else {
      ++files;
      EXPECT_EQ(perms & fs::perms(0077), fs::perms::none) << entry.path();
    }
  }
  EXPECT_GE(files, 5) << "redis.conf, dump.rdb, the append-only files, the log";
}

}  // namespace
}  // namespace adhoc::resources
