// Runs the real `adhoc router` binary and feeds it through its Unix socket.
#include "router/router_command.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/paths.h"
#include "router/certificates.h"
#include "router/test_support.h"

namespace adhoc::router {
namespace {

using json = nlohmann::json;

// The child process; killed and reaped if the test ends early.
class ChildGuard {
 public:
  ~ChildGuard() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // Waits (bounded) for the exit status; -1 if it did not exit in time.
  int Wait(int max_ms = 10000) {
    for (int waited = 0; waited < max_ms; waited += 10) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  pid_t pid = -1;
};

TEST(RouterCommand, RealBinaryServesWhatItIsFed) {
  testing::TempDir home;
  testing::Upstream up;
  int err_pipe[2];
  ASSERT_EQ(pipe2(err_pipe, O_CLOEXEC), 0);
  ChildGuard child;
  child.pid = fork();
  ASSERT_GE(child.pid, 0);
  if (child.pid == 0) {
    dup2(err_pipe[1], 2);
    execl(ADHOC_BINARY, ADHOC_BINARY, "router", "--home", home.path().c_str(), "--listen",
          "127.0.0.1:0", "--threads", "2", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err_pipe[1]);
  testing::SetRecvTimeout(err_pipe[0], 10);
  // "adhoc router: listening on port N, feed ..." (read() on a pipe: bounded by poll below)
  std::string line;
  pollfd pfd{err_pipe[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos && poll(&pfd, 1, 10000) > 0) {
    char buf[256];
    ssize_t n = read(err_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  close(err_pipe[0]);
  size_t at = line.find("port ");
  ASSERT_NE(at, std::string::npos) << line;
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + at + 5));
  ASSERT_GT(port, 0);

  // The pid file names the process; an empty table answers 404 until fed.
  std::ifstream pid_file(paths::RouterPid(home.path()));
  pid_t written = 0;
  pid_file >> written;
  EXPECT_EQ(written, child.pid);
  EXPECT_EQ(testing::Client(port).Get("demo.localhost", "/")->status(), 404);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, paths::RouterSocket(home.path()).c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  testing::SetRecvTimeout(fd, 10);
  testing::Reader reader(fd);
  json env = {{"name", "demo"},
              {"hosts", {"demo.localhost"}},
              {"status", "running"},
              {"routes",
               {{{"pattern", "/*"},
                 {"service", "web"},
                 {"targets", {{{"id", "t1"}, {"address", up.address()}}}}}}}};
  ASSERT_TRUE(testing::SendAll(fd, json({{"op", "replace_all"}, {"envs", {env}}}).dump() + "\n"));
  auto answer = reader.Until("\n");
  ASSERT_TRUE(answer);
  EXPECT_EQ(json::parse(*answer)["ok"], true) << *answer;

  auto r = testing::Client(port).Get("demo.localhost", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  EXPECT_EQ(r->body, "hello from up");

  ASSERT_TRUE(testing::SendAll(fd, "{\"op\":\"stats\"}\n"));
  answer = reader.Until("\n");
  ASSERT_TRUE(answer);
  EXPECT_EQ(json::parse(*answer)["envs"]["demo"]["requests"], 1);
  close(fd);

  kill(child.pid, SIGTERM);
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_FALSE(std::filesystem::exists(paths::RouterPid(home.path())));
}

TEST(RouterCommand, BadUsageExits2) {
  char arg0[] = "router", arg1[] = "--threads", arg2[] = "zero";
  char* argv[] = {arg0, arg1, arg2, nullptr};
  EXPECT_EQ(RouterMain(3, argv), 2);
}

// The real binary with `args` after "router --home HOME --listen 127.0.0.1:0"; its stderr
// is read line by line.
class RealRouter {
 public:
  RealRouter(const std::filesystem::path& home, std::vector<std::string> args) {
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0) return;
    std::vector<std::string> all = {ADHOC_BINARY,  "router",   "--home",
                                    home.string(), "--listen", "127.0.0.1:0"};
    all.insert(all.end(), args.begin(), args.end());
    child_.pid = fork();
    if (child_.pid == 0) {
      dup2(err_pipe[1], 2);
      std::vector<char*> argv;
      for (std::string& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(ADHOC_BINARY, argv.data());
      _exit(127);
    }
    close(err_pipe[1]);
    err_ = err_pipe[0];
    std::string line = Line("listening on port ");
    size_t at = line.find("port ");
    if (at != std::string::npos) port_ = static_cast<uint16_t>(std::atoi(line.c_str() + at + 5));
    home_ = home;
  }
  ~RealRouter() {
    if (err_ >= 0) close(err_);
  }
  // The first stderr line containing `what` not returned before (waiting for it at most
  // 10 s), or "".
  std::string Line(const std::string& what) {
    pollfd pfd{err_, POLLIN, 0};
    while (true) {
      size_t eol;
      while ((eol = buf_.find('\n')) != std::string::npos) {
        lines_.push_back(buf_.substr(0, eol));
        buf_.erase(0, eol + 1);
      }
      for (auto it = lines_.begin(); it != lines_.end(); ++it) {
        if (it->find(what) == std::string::npos) continue;
        std::string line = *it;
        lines_.erase(it);
        return line;
      }
      if (poll(&pfd, 1, 10000) <= 0) return "";
      char tmp[512];
      ssize_t n = read(err_, tmp, sizeof tmp);
      if (n <= 0) return "";
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  json Feed(const json& message) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, paths::RouterSocket(home_).c_str(), sizeof addr.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return json();
    }
    testing::SetRecvTimeout(fd, 10);
    testing::Reader reader(fd);
    testing::SendAll(fd, message.dump() + "\n");
    auto answer = reader.Until("\n");
    close(fd);
    return answer ? json::parse(*answer) : json();
  }
  // Resident memory in KiB (/proc/PID/status VmRSS).
  long RssKb() const {
    std::ifstream status("/proc/" + std::to_string(child_.pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    }
    return -1;
  }
  uint16_t port() const { return port_; }
  ChildGuard& child() { return child_; }

 private:
  ChildGuard child_;
  int err_ = -1;
  std::string buf_;
  std::vector<std::string> lines_;
  uint16_t port_ = 0;
  std::filesystem::path home_;
};

json WebEnv(const std::string& host, const std::string& address) {
  return {{"name", "demo"},
          {"hosts", {host}},
          {"routes",
           {{{"pattern", "/*"},
             {"service", "web"},
             {"targets", {{{"id", "t1"}, {"address", address}}}}}}}};
}

TEST(RouterCommand, HttpsFlagsAndSighupReload) {
  testing::TempDir home;
  testing::Upstream up;
  auto one = EnsureCertificates("preview.test", home.path() / "one");
  auto two = EnsureCertificates("preview.test", home.path() / "two");
  ASSERT_TRUE(one.ok() && two.ok());
  auto cert = home.path() / "live.crt", key = home.path() / "live.key";
  std::filesystem::copy_file(one->cert, cert);
  std::filesystem::copy_file(one->key, key);
  RealRouter router(home.path(), {"--tls-listen", "127.0.0.1:0", "--tls-cert", cert.string(),
                                  "--tls-key", key.string(), "--redirect-http"});
  ASSERT_GT(router.port(), 0);
  std::string https = router.Line("HTTPS on port ");
  ASSERT_FALSE(https.empty());
  uint16_t tls_port = static_cast<uint16_t>(std::atoi(https.c_str() + https.find("port ") + 5));
  ASSERT_EQ(router.Feed({{"op", "replace_all"},
                         {"envs", json::array({WebEnv("demo.preview.test", up.address())})}})["ok"],
            true);
  testing::TlsClient open(tls_port, "demo.preview.test", one->ca_cert.string());
  ASSERT_TRUE(open.ok()) << open.error();
  EXPECT_EQ(open.Get("demo.preview.test", "/")->body, "hello from up");
  auto redirect = testing::Client(router.port()).Get("demo.preview.test", "/x");
  EXPECT_EQ(redirect->status(), 308);

  std::filesystem::copy_file(two->cert, cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(two->key, key, std::filesystem::copy_options::overwrite_existing);
  kill(router.child().pid, SIGHUP);
  EXPECT_FALSE(router.Line("TLS certificate reloaded").empty());
  EXPECT_EQ(open.Get("demo.preview.test", "/")->status(), 200);  // not dropped
  testing::TlsClient fresh(tls_port, "demo.preview.test", two->ca_cert.string());
  EXPECT_TRUE(fresh.ok()) << fresh.error();
  kill(router.child().pid, SIGTERM);
  EXPECT_EQ(router.child().Wait(), 0);
}

TEST(RouterCommand, BadTlsSettingsExit2NamingTheFlagOrFile) {
  testing::TempDir home;
  std::ofstream(home.path() / "junk.crt") << "junk";
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  for (const Case& c : std::vector<Case>{
           {{"--tls-listen", "127.0.0.1:0", "--tls-cert", "x.crt"}, "--tls-key"},
           {{"--tls-listen", "127.0.0.1:0"}, "--tls-cert"},
           {{"--redirect-http"}, "--tls-listen"},
           {{"--tls-listen", "127.0.0.1:0", "--tls-cert", (home.path() / "junk.crt").string(),
             "--tls-key", (home.path() / "junk.crt").string()},
            "junk.crt"},
           {{"--tls-listen", "127.0.0.1:0", "--tls-domain", "bad domain", "--tls-dir",
             (home.path() / "tls").string()},
            "bad domain"},
           {{"--metrics-allow", "10.0.0.0/99"}, "10.0.0.0/99"},
       }) {
    RealRouter router(home.path(), c.args);
    std::string line = router.Line(c.names);
    EXPECT_FALSE(line.empty()) << c.names;
    EXPECT_EQ(router.child().Wait(), 2) << c.names;
  }
}

}  // namespace
}  // namespace adhoc::router

namespace adhoc::router {
namespace {

// nginx answering "ok" on a free loopback port (the upstream of the load test: the test's
// own threaded upstream is not made for thousands of connections).
class NginxUpstream {
 public:
  explicit NginxUpstream(const std::filesystem::path& dir) {
    port_ = FreePort();
    std::filesystem::create_directories(dir / "logs");
    std::ofstream(dir / "nginx.conf")
        << "worker_processes 1;\nerror_log " << (dir / "error.log").string() << " warn;\npid "
        << (dir / "nginx.pid").string()
        << ";\nevents { worker_connections 4096; }\n"
           "http { access_log off; keepalive_requests 1000000;\n"
           "  server { listen 127.0.0.1:"
        << port_ << "; location / { return 200 \"ok\\n\"; } } }\n";
    pid_ = fork();
    if (pid_ == 0) {
      execlp("nginx", "nginx", "-p", dir.c_str(), "-e", (dir / "error.log").c_str(), "-c",
             (dir / "nginx.conf").c_str(), "-g", "daemon off;", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      int fd = testing::ConnectTo(port_);
      if (fd >= 0) {
        close(fd);
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ~NginxUpstream() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool ready() const { return ready_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  static uint16_t FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ready_ = false;
};

long MetricValue(uint16_t port, const std::string& series) {
  auto r = testing::Client(port).Get("127.0.0.1", "/metrics");
  if (!r) return -1;
  size_t at = r->body.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::atol(r->body.c_str() + at + series.size() + 2);
}

TEST(RouterCommand, TenThousandConnectionsThenMemoryReturnsNearIdle) {
  constexpr int kConnections = 10000, kWave = 500;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  ASSERT_GE(limit.rlim_max, rlim_t{kConnections + 1000})
      << "the open-files hard limit is too low for this test";
  rlimit raised = limit;
  raised.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &raised), 0);
  struct Restore {
    rlimit l;
    ~Restore() { setrlimit(RLIMIT_NOFILE, &l); }
  } restore{limit};

  testing::TempDir home;
  NginxUpstream up(home.path() / "nginx");
  ASSERT_TRUE(up.ready());
  RealRouter router(home.path(), {"--threads", "2"});
  ASSERT_GT(router.port(), 0);
  ASSERT_EQ(router.Feed({{"op", "replace_all"},
                         {"envs", json::array({WebEnv("demo.localhost", up.address())})}})["ok"],
            true);
  const std::string request = "GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n";
  auto answered = [](int fd) {
    testing::Reader r(fd);
    auto m = testing::ReadMessage(r);
    return m && m->status() == 200 && m->body == "ok\n";
  };
  // Idle: fed, warmed up (a few keep-alive connections), then at rest.
  for (int i = 0; i < 20; ++i) {
    testing::Client c(router.port());
    for (int k = 0; k < 10; ++k) ASSERT_EQ(c.Get("demo.localhost", "/")->status(), 200);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  long idle_kb = router.RssKb();

  // 10,000 connections open at once, each answered (in waves: the upstream side stays
  // within the router's own open-files budget).
  std::vector<int> fds;
  fds.reserve(kConnections);
  struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
      for (int fd : fds) close(fd);
    }
  } close_all{fds};
  int failed = 0;
  for (int wave = 0; wave < kConnections / kWave; ++wave) {
    size_t first = fds.size();
    for (int i = 0; i < kWave; ++i) {
      int fd = testing::ConnectTo(router.port());
      ASSERT_GE(fd, 0) << "connection " << fds.size();
      fds.push_back(fd);
      testing::SendAll(fd, request);
    }
    for (size_t i = first; i < fds.size(); ++i) failed += answered(fds[i]) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  EXPECT_GE(MetricValue(router.port(), "adhoc_router_open_connections"), kConnections);
  // Every one of them is still served, all held at the same time.
  failed = 0;
  for (size_t first = 0; first < fds.size(); first += kWave) {
    size_t last = std::min(fds.size(), first + kWave);
    for (size_t i = first; i < last; ++i) testing::SendAll(fds[i], request);
    for (size_t i = first; i < last; ++i) failed += answered(fds[i]) ? 0 : 1;
  }
  EXPECT_EQ(failed, 0);
  long peak_kb = router.RssKb();
  for (int fd : fds) close(fd);
  fds.clear();

  // Back near idle: within idle + 25 % + 8 MiB, waited for (bounded) while the router
  // notices the connections are gone and gives the memory back.
  long bound_kb = idle_kb + idle_kb / 4 + 8 * 1024;
  long after_kb = router.RssKb();
  for (int i = 0; i < 100 && after_kb > bound_kb; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after_kb = router.RssKb();
  }
  EXPECT_EQ(MetricValue(router.port(), "adhoc_router_open_connections"), 1);  // the scrape
  EXPECT_LE(after_kb, bound_kb) << "idle " << idle_kb << " KiB, peak " << peak_kb << " KiB";
  std::printf("router RSS: idle %ld KiB, with %d connections %ld KiB, after %ld KiB\n", idle_kb,
              kConnections, peak_kb, after_kb);
  EXPECT_GT(peak_kb, idle_kb);  // the connections did cost memory: the check above is real
  kill(router.child().pid, SIGTERM);
  EXPECT_EQ(router.child().Wait(), 0);
}

}  // namespace
}  // namespace adhoc::router
