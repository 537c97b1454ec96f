#include "runtime/health.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "runtime/test_util.h"

namespace adhoc::runtime {
namespace {

using namespace std::chrono_literals;
using State = HealthTracker::State;

class ScriptedProber : public Prober {
 public:
  bool healthy = false;
  int calls = 0;
  ProbeResult Probe(std::chrono::milliseconds) override {
    ++calls;
    return {healthy, healthy ? "HTTP 200" : "connection refused"};
  }
};

TEST(StatusMatcherTest, RangesAndLists) {
  auto m = StatusMatcher::Parse("200-399");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->Matches(200));
  EXPECT_TRUE(m->Matches(302));
  EXPECT_FALSE(m->Matches(404));
  auto l = StatusMatcher::Parse("200,204");
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->Matches(204));
  EXPECT_FALSE(l->Matches(201));
  EXPECT_FALSE(StatusMatcher::Parse("2xx").ok());
  EXPECT_FALSE(StatusMatcher::Parse("399-200").ok());
}

TEST(HealthTrackerTest, ProbesFastUntilTheFirstSuccessThenSteady) {
  FakeClock clock;
  ScriptedProber prober;
  HealthTracker t(HealthSettings{}, clock);
  EXPECT_EQ(t.Tick(prober), State::kStarting);
  EXPECT_EQ(prober.calls, 1);
  clock.Advance(10ms);
  t.Tick(prober);
  EXPECT_EQ(prober.calls, 1) << "not due before 25 ms";
  clock.Advance(15ms);
  prober.healthy = true;
  EXPECT_EQ(t.Tick(prober), State::kHealthy);
  EXPECT_EQ(prober.calls, 2);
  clock.Advance(6s);
  t.Tick(prober);
  EXPECT_EQ(prober.calls, 2) << "steady interval is 7 s";
  clock.Advance(1s);
  t.Tick(prober);
  EXPECT_EQ(prober.calls, 3);
}

TEST(HealthTrackerTest, NoSuccessWithinTheStartTimeoutIsAFailedStart) {
  FakeClock clock;
  ScriptedProber prober;
  HealthSettings s;
  s.start_timeout = 1s;
  HealthTracker t(s, clock);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(t.Tick(prober), State::kStarting);
    clock.Advance(100ms);
  }
  clock.Advance(100ms);
  EXPECT_EQ(t.Tick(prober), State::kStartFailed);
  prober.healthy = true;
  clock.Advance(100ms);
  EXPECT_EQ(t.Tick(prober), State::kStartFailed) << "final";
  EXPECT_EQ(t.last_detail(), "connection refused");
}

TEST(HealthTrackerTest, ThresholdsDecideUnhealthyAndHealthyAgain) {
  FakeClock clock;
  ScriptedProber prober;
  prober.healthy = true;
  HealthTracker t(HealthSettings{}, clock);
  ASSERT_EQ(t.Tick(prober), State::kHealthy);
  prober.healthy = false;
  for (int i = 0; i < 2; ++i) {
    clock.Advance(7s);
    EXPECT_EQ(t.Tick(prober), State::kHealthy) << "fewer than 3 failures";
  }
  clock.Advance(7s);
  EXPECT_EQ(t.Tick(prober), State::kUnhealthy);
  prober.healthy = true;
  clock.Advance(7s);
  EXPECT_EQ(t.Tick(prober), State::kUnhealthy) << "one success is not enough";
  clock.Advance(7s);
  EXPECT_EQ(t.Tick(prober), State::kHealthy);
}

// A one-shot HTTP server on loopback that records the request and answers `status`.
class OneShotServer {
 public:
  explicit OneShotServer(int status) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    listen(fd_, 4);
    socklen_t len = sizeof sa;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this, status] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      ssize_t n;
      while ((n = read(c, buf, sizeof buf)) > 0) {
        request_.append(buf, n);
        if (request_.find("\r\n\r\n") != std::string::npos) break;
      }
      std::string reply = "HTTP/1.1 " + std::to_string(status) +
                          " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!write(c, reply.data(), reply.size());
      close(c);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string request() {
    thread_.join();
    thread_ = std::thread([] {});
    return request_;
  }

 private:
  int fd_;
  int port_;
  std::thread thread_;
  std::string request_;
};

TEST(HttpProberTest, SendsHostAndMatchesStatus) {
  OneShotServer server(204);
  HttpProber prober("127.0.0.1", server.port(), "feature-x.localhost", "/api/health-check/",
                    *StatusMatcher::Parse("200,204"));
  ProbeResult r = prober.Probe(5s);
  EXPECT_TRUE(r.healthy) << r.detail;
  EXPECT_EQ(r.detail, "HTTP 204");
  std::string req = server.request();
  EXPECT_EQ(req.rfind("GET /api/health-check/ HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Host: feature-x.localhost\r\n"), std::string::npos);
  EXPECT_NE(req.find("Connection: close\r\n"), std::string::npos);
}

TEST(HttpProberTest, AnUnmatchedStatusOrNoServerIsUnhealthy) {
  {
    OneShotServer server(500);
    HttpProber prober("127.0.0.1", server.port(), "x", "/", *StatusMatcher::Parse("200-399"));
    ProbeResult r = prober.Probe(5s);
    EXPECT_FALSE(r.healthy);
    EXPECT_EQ(r.detail, "HTTP 500");
  }
  int port;
  {
    OneShotServer gone(200);
    port = gone.port();
  }
  HttpProber prober("127.0.0.1", port, "x", "/", *StatusMatcher::Parse("200-399"));
  ProbeResult r = prober.Probe(2s);
  EXPECT_FALSE(r.healthy);
  EXPECT_NE(r.detail.find("connect"), std::string::npos) << r.detail;
}

TEST(CommandProberTest, ExitZeroIsHealthyWithTheTasksEnv) {
  testing::TempDir dir;
  auto env = testing::CleanEnv();
  env["READY_FILE"] = "ready";
  CommandProber prober("test -e \"$READY_FILE\"", env, dir.path());
  EXPECT_FALSE(prober.Probe(5s).healthy);
  std::ofstream(dir.path() / "ready").put('\n');
  EXPECT_TRUE(prober.Probe(5s).healthy);
}

}  // namespace
}  // namespace adhoc::runtime
