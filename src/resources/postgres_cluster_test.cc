#include "resources/postgres_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "common/paths.h"
#include "gtest/gtest.h"
#include "resources/databases.h"
#include "resources/test_support.h"

namespace adhoc::resources {
namespace {

using test_servers::UniqueLoopback;
namespace fs = std::filesystem;

// A unique temporary home, removed (with anything a test left running stopped first by
// the guards declared after it) when the test ends.
class TempHome {
 public:
  TempHome() {
    std::string tmpl = (fs::temp_directory_path() / "adhoc-pg-test-XXXXXX").string();
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

class ClusterGuard {
 public:
  explicit ClusterGuard(PostgresCluster& c) : c_(c) {}
  ~ClusterGuard() { (void)c_.Destroy(); }

 private:
  PostgresCluster& c_;
};

bool CanConnect(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

TEST(PostgresSettingsTest, ListenOnlyOnTheGivenAddressWithRoomForManyEnvironments) {
  PostgresClusterOptions o;
  o.listen_address = "127.9.0.2";
  o.port = 5433;
  std::string conf = RenderPostgresSettings(o, "/h/run", "/h/postgres.log");
  EXPECT_NE(conf.find("listen_addresses = '127.9.0.2'\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("port = 5433\n"), std::string::npos);
  EXPECT_NE(conf.find("max_connections = 500\n"), std::string::npos);
  EXPECT_NE(conf.find("unix_socket_directories = '/h/run'\n"), std::string::npos);
}

TEST(PostgresSettingsTest, CommitsAreDurable) {
  std::string conf = RenderPostgresSettings({.listen_address = "127.9.0.2"}, "/h/run", "/h/log");
  EXPECT_NE(conf.find("synchronous_commit = on\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("fsync = on\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("full_page_writes = on\n"), std::string::npos) << conf;
  for (const char* off : {"synchronous_commit = off", "fsync = off", "full_page_writes = off"})
    EXPECT_EQ(conf.find(off), std::string::npos) << off;
}

TEST(PostgresSettingsTest, HbaNeedsPasswordsOverTcpAndAllowsOnlyLoopback) {
  std::string hba = RenderPostgresHba();
  EXPECT_NE(hba.find("127.0.0.0/8    scram-sha-256"), std::string::npos);
  // trust only on the local socket line: exactly one "trust", on the line starting "local".
  size_t trust = hba.find(" trust");
  ASSERT_NE(trust, std::string::npos);
  EXPECT_EQ(hba.find(" trust", trust + 1), std::string::npos);
  EXPECT_EQ(hba.rfind("\nlocal", trust), hba.rfind('\n', hba.rfind("local", trust)));
  EXPECT_EQ(hba.find("0.0.0.0"), std::string::npos);
  EXPECT_EQ(hba.find("host    all   all   127.0.0.0/8    trust"), std::string::npos);
}

TEST(PostgresBinDirTest, FindsTheServerTools) {
  auto dir = FindPostgresBinDir();
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  EXPECT_TRUE(fs::exists(*dir / "initdb"));
  EXPECT_TRUE(fs::exists(*dir / "pg_ctl"));
}

TEST(PostgresClusterTest, InitStartStopStartAgainIdempotently) {
  TempHome home;
  PostgresCluster cluster(home.path(), {.listen_address = UniqueLoopback()});
  ClusterGuard guard(cluster);

  auto st = cluster.GetStatus();
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_FALSE(st->initialized);

  ASSERT_TRUE(cluster.Init().ok());
  auto init_again = cluster.Init();
  ASSERT_TRUE(init_again.ok()) << init_again.error().message();
  EXPECT_TRUE(fs::exists(paths::PostgresData(home.path()) / "PG_VERSION"));
  EXPECT_EQ(fs::status(paths::PostgresRun(home.path())).permissions(), fs::perms(0700));

  auto started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started.error().message();
  st = cluster.GetStatus();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->running);
  EXPECT_GT(st->pid, 0);
  pid_t first_pid = st->pid;
  EXPECT_TRUE(CanConnect(cluster.listen_address(), cluster.port()));
  EXPECT_TRUE(fs::exists(cluster.SocketDir() / ".s.PGSQL.5432"));

  auto again = cluster.Start();
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(cluster.GetStatus()->pid, first_pid) << "a second Start must not restart the server";

  ASSERT_TRUE(cluster.Stop().ok());
  EXPECT_FALSE(cluster.GetStatus()->running);
  EXPECT_FALSE(CanConnect(cluster.listen_address(), cluster.port()));
  ASSERT_TRUE(cluster.Stop().ok()) << "stopping a stopped cluster is a no-op";
  {
    // A lock file left behind whose pid now belongs to another live process (this test) is
    // not a running server: the process does not work in the data folder.
    const fs::path lock = paths::PostgresData(home.path()) / "postmaster.pid";
    std::ofstream(lock) << getpid() << "\n" << paths::PostgresData(home.path()).string() << "\n";
    auto stale = cluster.GetStatus();
    ASSERT_TRUE(stale.ok()) << stale.error().message();
    EXPECT_FALSE(stale->running);
    fs::remove(lock);
  }

  auto restarted = cluster.Start();
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  EXPECT_TRUE(cluster.GetStatus()->running);

  ASSERT_TRUE(cluster.Destroy().ok());
  EXPECT_FALSE(fs::exists(paths::PostgresDir(home.path())));
  EXPECT_FALSE(CanConnect(cluster.listen_address(), cluster.port()));
}

TEST(PostgresClusterTest, ListensOnlyOnItsOwnAddress) {
  TempHome home;
  std::string address = UniqueLoopback();
  std::string neighbour = UniqueLoopback();
  PostgresCluster cluster(home.path(), {.listen_address = address, .port = 5432});
  ClusterGuard guard(cluster);
  auto started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_TRUE(CanConnect(address, 5432));
  EXPECT_FALSE(CanConnect(neighbour, 5432));
}

TEST(PostgresClusterTest, FilesBelongToThePostgresUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "only as root";
  TempHome home;
  PostgresCluster cluster(home.path(), {.listen_address = UniqueLoopback()});
  ClusterGuard guard(cluster);
  ASSERT_TRUE(cluster.Init().ok());
  struct passwd* pw = getpwnam("postgres");
  ASSERT_NE(pw, nullptr);
  for (const fs::path& p : {paths::PostgresData(home.path()), paths::PostgresRun(home.path()),
                            paths::PostgresLog(home.path())}) {
    struct stat sb {};
    ASSERT_EQ(stat(p.c_str(), &sb), 0) << p;
    EXPECT_EQ(sb.st_uid, pw->pw_uid) << p;
    EXPECT_EQ(sb.st_mode & 0077, 0u) << p << ": the server's own";
  }
  // `postgres` passes through the caller's folders above its own; no one may list them.
  for (const fs::path& p : {home.path(), home.path() / "base", paths::PostgresDir(home.path())}) {
    struct stat sb {};
    ASSERT_EQ(stat(p.c_str(), &sb), 0) << p;
    EXPECT_EQ(sb.st_mode & 0777, 0711u) << p;
  }
}

TEST(PostgresClusterTest, ATakenPortIsAClearConflict) {
  TempHome home;
  std::string address = UniqueLoopback();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(5432);
  inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);

  PostgresCluster cluster(home.path(), {.listen_address = address});
  ClusterGuard guard(cluster);
  auto started = cluster.Start();
  close(fd);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().kind(), ErrorKind::kConflict);
  EXPECT_NE(started.error().message().find("already in use"), std::string::npos)
      << started.error().message();
  EXPECT_FALSE(cluster.GetStatus()->running);
}

// Not root: initdb and pg_ctl run as the calling user. Run in a child that drops root
// for the `postgres` user, over a home that user owns.
TEST(PostgresClusterTest, RunsAsTheCallingUserWhenNotRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "the other tests already run as a plain user";
  struct passwd* pw = getpwnam("postgres");
  ASSERT_NE(pw, nullptr);
  TempHome home;
  ASSERT_EQ(chmod(home.path().c_str(), 0755), 0);
  fs::path user_home = home.path() / "home";
  fs::create_directory(user_home);
  ASSERT_EQ(chown(user_home.c_str(), pw->pw_uid, pw->pw_gid), 0);
  std::string address = UniqueLoopback();

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(10);
    PostgresCluster cluster(user_home, {.listen_address = address});
    int code = 0;
    if (!cluster.Start().ok())
      code = 11;
    else if (!cluster.GetStatus().ok() || !cluster.GetStatus()->running)
      code = 12;
    if (!cluster.Destroy().ok() && code == 0) code = 13;
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 setuid, 11 start, 12 status, 13 destroy";
  EXPECT_FALSE(fs::exists(paths::PostgresDir(user_home)));
}

// The reported fault: with `synchronous_commit = off`, a kill -9 of the postmaster during a
// stream of autocommit INSERTs lost rows whose COMMIT had been confirmed to the client.
TEST(PostgresClusterTest, NoConfirmedCommitIsLostWhenThePostmasterIsKilled) {
  TempHome home;
  PostgresCluster cluster(home.path(), {.listen_address = UniqueLoopback()});
  ClusterGuard guard(cluster);
  ASSERT_TRUE(cluster.Start().ok());
  auto status = cluster.GetStatus();
  ASSERT_TRUE(status.ok() && status->running);
  const pid_t postmaster = status->pid;

  std::vector<int> confirmed;
  {
    auto session = ConnectPostgresAdmin(home.path(), cluster.port());
    ASSERT_TRUE(session.ok()) << session.error().message();
    ASSERT_TRUE((*session)->Query("CREATE TABLE confirmed (id integer PRIMARY KEY)").ok());
    std::atomic<int> count{0};
    // The kill lands in the middle of the stream, whatever the machine's speed.
    std::thread killer([&] {
      for (int i = 0; i < 3000 && count.load() < 1000; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      kill(postmaster, SIGKILL);
    });
    for (int id = 1; id <= 200000; ++id) {
      auto r = (*session)->Query("INSERT INTO confirmed VALUES ($1)", {std::to_string(id)});
      if (!r.ok()) break;  // the server is gone: this one was never confirmed
      confirmed.push_back(id);
      count = static_cast<int>(confirmed.size());
    }
    killer.join();
  }
  ASSERT_GE(confirmed.size(), 1000u) << "the stream ended before the kill";
  ASSERT_LT(confirmed.size(), 200000u) << "the kill never interrupted the stream";

  // Its backends leave once they notice the postmaster is gone; until then a new one
  // refuses the old shared memory.
  Status restarted = cluster.Start();
  for (int i = 0; i < 100 && !restarted.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    restarted = cluster.Start();
  }
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  auto session = ConnectPostgresAdmin(home.path(), cluster.port());
  ASSERT_TRUE(session.ok()) << session.error().message();
  auto rows = (*session)->Query("SELECT count(*) FROM confirmed WHERE id <= $1",
                                {std::to_string(confirmed.back())});
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  EXPECT_EQ(rows->at(0).at(0), std::to_string(confirmed.size()))
      << "rows confirmed before the kill are missing after the restart";
}

}  // namespace
}  // namespace adhoc::resources
