#include "server/api_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "server/api_client.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("api-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    socket_ = dir_ / "server.sock";
    server_.Handle("GET", "/v1/health", [](const ApiRequest&, ApiResponder& r) {
      r.Reply(200, {{"ok", true}});
    });
    server_.Handle("GET", "/v1/environments/{env}", [](const ApiRequest& req, ApiResponder& r) {
      if (req.params.at("env") == "missing")
        r.Fail(NotFound("no environment 'missing'"));
      else
        r.Reply(200, {{"name", req.params.at("env")},
                      {"q", req.query.count("since") ? req.query.at("since") : ""}});
    });
    server_.Handle("POST", "/v1/environments/{env}/up", [](const ApiRequest& req, ApiResponder& r) {
      if (!req.wants_stream) return r.Reply(200, {{"name", req.params.at("env")}});
      r.Event({{"type", "step"}, {"name", "database"}, {"status", "done"}});
      r.Event({{"type", "log"}, {"line", "hello"}});
      if (req.body.value("fail", false))
        r.Fail(Failed("migrate exited with status 1"),
               {{"step", "task migrate"}, {"log_tail", {"boom"}}});
      else
        r.Event({{"type", "result"}, {"ok", true}, {"env", {{"name", req.params.at("env")}}}});
    });
    ASSERT_TRUE(server_.Start(socket_).ok());
  }
  void TearDown() override {
    server_.Stop();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  fs::path socket_;
  ApiServer server_;
};

TEST_F(ApiServerTest, CallsAndParams) {
  ApiClient client(socket_);
  EXPECT_TRUE(client.Reachable());
  auto r = client.Call("GET", "/v1/environments/demo?since=10m");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["name"], "demo");
  EXPECT_EQ((*r)["q"], "10m");
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(ApiServerTest, ErrorsKeepTheirKind) {
  ApiClient client(socket_);
  auto r = client.Call("GET", "/v1/environments/missing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(r.error().message(), "no environment 'missing'");
  auto unknown = client.Call("GET", "/v1/nothing");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind(), ErrorKind::kNotFound);
  auto wrong_method = client.Call("DELETE", "/v1/health");
  ASSERT_FALSE(wrong_method.ok());
  EXPECT_EQ(wrong_method.error().kind(), ErrorKind::kBadInput);
}

TEST_F(ApiServerTest, StreamsEventsThenResult) {
  ApiClient client(socket_);
  std::vector<std::string> seen;
  auto r = client.Stream("POST", "/v1/environments/demo/up", nlohmann::json::object(),
                         [&](const nlohmann::json& e) { seen.push_back(e["type"]); });
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)["name"], "demo");
  EXPECT_EQ(seen, (std::vector<std::string>{"step", "log"}));
}

TEST_F(ApiServerTest, StreamedFailureCarriesStepAndTail) {
  ApiClient client(socket_);
  auto r = client.Stream("POST", "/v1/environments/demo/up", {{"fail", true}},
                         [](const nlohmann::json&) {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kFailed);
  EXPECT_NE(r.error().message().find("migrate exited with status 1"), std::string::npos);
  EXPECT_NE(r.error().message().find("boom"), std::string::npos);
}

int ConnectTo(const fs::path& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string ReadAll(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

TEST_F(ApiServerTest, AStalledRequestIsDroppedAndAThrowingHandlerIsA500) {
  ApiServer small(ApiServerLimits{.max_connections = 4,
                                  .max_workers = 2,
                                  .idle_timeout = std::chrono::seconds(60),
                                  .request_timeout = std::chrono::seconds(1)});
  small.Handle("GET", "/v1/throws",
               [](const ApiRequest&, ApiResponder&) { throw std::out_of_range("stoi"); });
  small.Handle("GET", "/v1/health", [](const ApiRequest&, ApiResponder& r) {
    r.Reply(200, {{"ok", true}});
  });
  fs::path sock = dir_ / "small.sock";
  ASSERT_TRUE(small.Start(sock).ok());
  // Half a request, then nothing: the worker gives up after the request timeout.
  int stalled = ConnectTo(sock);
  const char half[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n";
  ASSERT_GT(send(stalled, half, sizeof half - 1, MSG_NOSIGNAL), 0);
  auto t0 = std::chrono::steady_clock::now();
  ReadAll(stalled);  // returns when the server closes it
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(9));
  close(stalled);
  auto thrown = ApiClient(sock).Call("GET", "/v1/throws");
  ASSERT_FALSE(thrown.ok());
  EXPECT_NE(thrown.error().message().find("internal error: stoi"), std::string::npos)
      << thrown.error().message();
  // Past max_connections, a new connection is answered 503 at once; the server lives on. The
  // earlier connections' closes may still be counted (the poller notices them in its own
  // time), so of five new ones at least the last is refused, whichever that is.
  std::vector<int> held;
  for (int i = 0; i < 5; ++i) held.push_back(ConnectTo(sock));
  int refused = 0;
  for (int fd : held) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 2000) == 1) {
      char buf[512];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0 && std::string(buf, n).find("503") != std::string::npos) ++refused;
    }
  }
  EXPECT_GE(refused, 1);
  for (int fd : held) close(fd);
  // The closes are noticed by the poller in its own time (slow on a loaded machine).
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = ApiClient(sock).Call("GET", "/v1/health").ok();
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served);
  small.Stop();
}

// One request over TCP to 127.0.0.1:port, read until the server closes (Connection: close).
std::string TcpExchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer = ReadAll(fd);
  close(fd);
  return answer;
}

std::string Get(const std::string& target, const std::string& headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: adhoc.localhost\r\nConnection: close\r\n" + headers +
         "\r\n";
}

std::string Post(const std::string& target, const std::string& headers) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: adhoc.localhost\r\nConnection: close\r\nContent-Length: 2\r\n" +
         headers + "\r\n{}";
}

TEST_F(ApiServerTest, OverTcpEveryRequestNeedsTheTokenAndTheSocketDoesNot) {
  const std::string token(64, 'a');
  ApiServer tcp;
  int changes = 0;
  tcp.Handle("GET", "/v1/health", [](const ApiRequest& req, ApiResponder& r) {
    r.Reply(200, {{"ok", true}, {"over_tcp", req.over_tcp}});
  });
  tcp.Handle("POST", "/v1/environments/{env}/sleep", [&](const ApiRequest&, ApiResponder& r) {
    ++changes;
    r.Reply(200, {{"status", "sleeping"}});
  });
  tcp.Handle("GET", "/", [](const ApiRequest&, ApiResponder& r) {
    r.ReplyBody(200, "text/html; charset=utf-8", "<p>hi</p>");
  });
  EXPECT_FALSE(tcp.ListenTcp("127.0.0.1", 0, "").ok());
  EXPECT_FALSE(tcp.ListenTcp("localhost", 0, token).ok());
  auto port = tcp.ListenTcp("127.0.0.1", 0, token);
  ASSERT_TRUE(port.ok()) << port.error().message();
  fs::path sock = dir_ / "tcp.sock";
  ASSERT_TRUE(tcp.Start(sock).ok());

  std::string none = TcpExchange(*port, Get("/v1/health"));
  EXPECT_EQ(none.rfind("HTTP/1.1 401", 0), 0u) << none;
  EXPECT_NE(none.find("WWW-Authenticate: Bearer realm=\"adhoc\""), std::string::npos);
  EXPECT_NE(none.find("\"kind\":\"unauthorized\""), std::string::npos);
  std::string wrong = TcpExchange(*port, Get("/v1/health", "Authorization: Bearer nope\r\n"));
  EXPECT_EQ(wrong.rfind("HTTP/1.1 401", 0), 0u) << wrong;

  std::string bearer = "Authorization: Bearer " + token + "\r\n";
  std::string ok = TcpExchange(*port, Get("/v1/health", bearer));
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find("\"over_tcp\":true"), std::string::npos) << ok;

  // The sign-in link: a redirect without the token, setting the cookie.
  std::string link = TcpExchange(*port, Get("/?x=1&adhoc_token=" + token));
  EXPECT_EQ(link.rfind("HTTP/1.1 303", 0), 0u) << link;
  EXPECT_NE(link.find("Location: /?x=1\r\n"), std::string::npos) << link;
  EXPECT_NE(link.find("Set-Cookie: adhoc_api=" + token + "; Path=/"), std::string::npos) << link;
  EXPECT_NE(link.find("HttpOnly; SameSite=Strict"), std::string::npos);
  std::string cookie = "Cookie: adhoc_api=" + token + "\r\n";
  std::string page = TcpExchange(*port, Get("/", cookie));
  EXPECT_EQ(page.rfind("HTTP/1.1 200", 0), 0u) << page;
  EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_NE(page.find("<p>hi</p>"), std::string::npos);

  // A change with the cookie alone is refused; with the dashboard's header it is made.
  std::string forbidden = TcpExchange(*port, Post("/v1/environments/demo/sleep", cookie));
  EXPECT_EQ(forbidden.rfind("HTTP/1.1 403", 0), 0u) << forbidden;
  EXPECT_EQ(changes, 0);
  std::string made =
      TcpExchange(*port, Post("/v1/environments/demo/sleep", cookie + "X-Adhoc-Dashboard: 1\r\n"));
  EXPECT_EQ(made.rfind("HTTP/1.1 200", 0), 0u) << made;
  EXPECT_EQ(changes, 1);
  std::string link_post =
      TcpExchange(*port, Post("/v1/environments/demo/sleep?adhoc_token=" + token, ""));
  EXPECT_EQ(link_post.rfind("HTTP/1.1 401", 0), 0u) << link_post;
  EXPECT_EQ(changes, 1);

  // Garbage is answered or dropped, and the server lives on.
  TcpExchange(*port,
              std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 24));
  TcpExchange(*port, "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                         std::string(70000, 'b') + "\r\n\r\n");
  EXPECT_EQ(TcpExchange(*port, Get("/v1/health", bearer)).rfind("HTTP/1.1 200", 0), 0u);

  // The Unix socket is guarded by its mode, not by the token.
  auto local = ApiClient(sock).Call("GET", "/v1/health");
  ASSERT_TRUE(local.ok()) << local.error().message();
  EXPECT_EQ((*local)["over_tcp"], false);
  tcp.Stop();
}

TEST(ApiClientTest, NothingListening) {
  ApiClient client("/nonexistent/adhoc.sock");
  EXPECT_FALSE(client.Reachable());
  auto r = client.Call("GET", "/v1/health");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("cannot reach"), std::string::npos);
}

}  // namespace
}  // namespace adhoc::server
