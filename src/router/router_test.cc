// Integration tests: a real Router on 127.0.0.1 port 0, real upstream servers, raw sockets.
#include "router/router.h"

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/paths.h"
#include "router/test_support.h"

namespace adhoc::router {
namespace {

using json = nlohmann::json;
using testing::Client;
using testing::Upstream;

// Bounded wait for a condition that another thread makes true.
template <typename F>
bool WaitFor(F condition, int max_ms = 10000) {
  for (int waited = 0; waited < max_ms; waited += 10) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

json Target(const std::string& id, const std::string& address) {
  return {{"id", id}, {"address", address}};
}

json Env(const std::string& name, json routes, const std::string& status = "running") {
  return {{"name", name},
          {"hosts", {name + ".localhost"}},
          {"status", status},
          {"routes", std::move(routes)}};
}

json ServiceRoute(const std::string& pattern, json targets) {
  return {{"pattern", pattern}, {"service", "web"}, {"targets", std::move(targets)}};
}

class RouterTest : public ::testing::Test {
 protected:
  void StartRouter(RouterOptions options = {}) {
    options.home = home_.path();
    options.listen = "127.0.0.1:0";
    if (options.threads == 0) options.threads = 2;
    router_ = std::make_unique<Router>(options);
    Status s = router_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message();
  }
  void Feed(const json& message) {
    json answer = json::parse(router_->HandleFeedMessage(message.dump()));
    ASSERT_EQ(answer["ok"], true) << answer.dump();
  }
  void ReplaceAll(json envs) { Feed({{"op", "replace_all"}, {"envs", std::move(envs)}}); }
  void PutEnv(json env) { Feed({{"op", "put_env"}, {"env", std::move(env)}}); }
  uint16_t port() const { return router_->port(); }

  testing::TempDir home_;
  std::unique_ptr<Router> router_;  // declared after home_: stopped before it is removed
};

TEST_F(RouterTest, KeepAliveClientAndPooledUpstreamConnection) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("demo.localhost", "/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status(), 200);
    EXPECT_EQ(r->body, "hello from up");
  }
  EXPECT_EQ(up.requests(), 5);
  EXPECT_EQ(up.connections(), 1);  // the upstream connection was reused
}

TEST_F(RouterTest, ForwardedHeadersAddedAndHopByHopRemoved) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  auto r = c.Get("Demo.Localhost:8080", "/headers?q=1",
                 "X-First: 1\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\n"
                 "Proxy-Authorization: p\r\nTE: trailers\r\nx-forwarded-for: 10.1.2.3\r\n"
                 "X-Forwarded-Proto: https\r\nx-Mixed-CASE: v\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status(), 200);
  const std::string& head = r->body;
  EXPECT_EQ(head.rfind("GET /headers?q=1 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Host: Demo.Localhost:8080\r\n"), std::string::npos);
  EXPECT_NE(head.find("x-Mixed-CASE: v\r\n"), std::string::npos);  // case kept
  EXPECT_LT(head.find("X-First"), head.find("x-Mixed-CASE"));      // order kept
  EXPECT_EQ(head.find("X-Secret"), std::string::npos);
  EXPECT_EQ(head.find("Keep-Alive"), std::string::npos);
  EXPECT_EQ(head.find("Proxy-Authorization"), std::string::npos);
  EXPECT_EQ(head.find("TE:"), std::string::npos);
  EXPECT_NE(head.find("X-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n"), std::string::npos);
  EXPECT_NE(head.find("X-Forwarded-Proto: http\r\n"), std::string::npos);
  EXPECT_EQ(head.find("https"), std::string::npos);
  EXPECT_NE(head.find("X-Forwarded-Host: Demo.Localhost:8080\r\n"), std::string::npos);
}

TEST_F(RouterTest, RoutesByPathPrecedenceAcrossServices) {
  Upstream api("api"), web("web");
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("w", web.address())}),
                           ServiceRoute("/api/*", {Target("a", api.address())})})});
  Client c(port());
  EXPECT_EQ(c.Get("demo.localhost", "/api")->body, "hello from api");
  EXPECT_EQ(c.Get("demo.localhost", "/api/x")->body, "hello from api");
  EXPECT_EQ(c.Get("demo.localhost", "/apix")->body, "hello from web");
}

TEST_F(RouterTest, BalancesAcrossTargets) {
  Upstream a("a"), b("b");
  StartRouter();
  ReplaceAll(
      {Env("demo", {ServiceRoute("/*", {Target("a", a.address()), Target("b", b.address())})})});
  Client c(port());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.Get("demo.localhost", "/")->status(), 200);
  EXPECT_GT(a.requests(), 0);
  EXPECT_GT(b.requests(), 0);
}

TEST_F(RouterTest, ChunkedUploadIsStreamedToTheUpstream) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: demo.localhost\r\n"
             "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
  // The first chunk reaches the upstream before the client has sent the rest.
  size_t head_bytes = 40;
  ASSERT_TRUE(WaitFor([&] { return up.bytes_received() > head_bytes + 5; }));
  ASSERT_TRUE(c.Send("6;ext=1\r\n world\r\n0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  EXPECT_EQ(r->body, "hello world");
}

TEST_F(RouterTest, ChunkedDownloadIsStreamedToTheClient) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  ASSERT_TRUE(c.Send("GET /chunked-wait HTTP/1.1\r\nHost: demo.localhost\r\n\r\n"));
  // "first" arrives while the upstream still holds back "last".
  auto head = c.reader().Until("first\r\n");
  ASSERT_TRUE(head) << "first chunk not streamed";
  EXPECT_NE(head->find("Transfer-Encoding: chunked"), std::string::npos);
  up.Release();
  auto rest = c.reader().Until("0\r\n\r\n");
  ASSERT_TRUE(rest);
  EXPECT_NE(rest->find("last"), std::string::npos);
  // And a whole chunked response, re-framed for the client.
  auto r = c.Get("demo.localhost", "/chunked");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body, "part-0part-1part-2part-3part-4");
}

TEST_F(RouterTest, LargeContentLengthBodyBothWays) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  std::string body(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + i % 26);
  Client c(port());
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  EXPECT_TRUE(r->body == body);
}

TEST_F(RouterTest, UntilCloseResponsesAreChunkedForHttp11Clients) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  auto r = c.Get("demo.localhost", "/close");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body, "until close");
  EXPECT_EQ(c.Get("demo.localhost", "/")->status(), 200);  // the client connection lives on
}

TEST_F(RouterTest, ExpectContinueAndPipelining) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 4\r\n"
             "Expect: 100-continue\r\n\r\n"));
  auto interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status(), 100);
  ASSERT_TRUE(c.Send("body"));
  EXPECT_EQ(c.Read()->body, "body");
  ASSERT_TRUE(
      c.Send("GET /a HTTP/1.1\r\nHost: demo.localhost\r\n\r\n"
             "POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 3\r\n\r\nxyz"));
  EXPECT_EQ(c.Read()->body, "hello from up");
  EXPECT_EQ(c.Read()->body, "xyz");
}

TEST_F(RouterTest, FolderRoutes) {
  auto folder = home_.path() / "static";
  std::filesystem::create_directories(folder / "static");
  std::ofstream(folder / "static" / "app.css") << "body{}";
  std::ofstream(home_.path() / "secret.txt") << "secret";
  StartRouter();
  ReplaceAll({Env("demo", {{{"pattern", "/static/*"}, {"folder", folder.string()}}})});
  Client c(port());
  auto r = c.Get("demo.localhost", "/static/app.css");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  EXPECT_EQ(r->body, "body{}");
  EXPECT_EQ(r->header("content-type"), "text/css; charset=utf-8");
  EXPECT_EQ(r->header("content-length"), "6");
  EXPECT_FALSE(r->header("last-modified").empty());
  auto not_modified = c.Get("demo.localhost", "/static/app.css",
                            "If-Modified-Since: " + r->header("last-modified") + "\r\n");
  EXPECT_EQ(not_modified->status(), 304);
  ASSERT_TRUE(c.Send("HEAD /static/app.css HTTP/1.1\r\nHost: demo.localhost\r\n\r\n"));
  auto head = c.Read(true);
  EXPECT_EQ(head->status(), 200);
  EXPECT_EQ(head->header("content-length"), "6");
  EXPECT_EQ(c.Get("demo.localhost", "/static/missing.css")->status(), 404);
  // A path climbing above the root cannot be normalized: refused (and the connection closed).
  EXPECT_EQ(Client(port()).Get("demo.localhost", "/static/../../secret.txt")->status(), 400);
  EXPECT_EQ(Client(port()).Get("demo.localhost", "/static/%2e%2e/%2e%2e/secret.txt")->status(),
            400);
  // Dot segments inside the folder resolve first, then the file is looked up.
  EXPECT_EQ(c.Get("demo.localhost", "/static/x/../%61pp.css")->body, "body{}");
  ASSERT_TRUE(c.Send("DELETE /static/app.css HTTP/1.1\r\nHost: demo.localhost\r\n\r\n"));
  auto del = c.Read();
  EXPECT_EQ(del->status(), 405);
  EXPECT_EQ(del->header("allow"), "GET, HEAD");
}

TEST_F(RouterTest, UnknownHostIs404NamingTheHost) {
  StartRouter();
  Client c(port());
  auto r = c.Get("nobody.localhost", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 404);
  EXPECT_NE(r->body.find("No environment has the host &#39;nobody.localhost&#39;"),
            std::string::npos)
      << r->body;
  auto j = c.Get("nobody.localhost", "/", "Accept: application/json\r\n");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->header("content-type"), "application/json");
  EXPECT_EQ(json::parse(j->body)["host"], "nobody.localhost");
}

TEST_F(RouterTest, StartingSleepingFailedAre503) {
  RouterOptions options;
  options.hold_timeout = std::chrono::milliseconds(300);  // nobody wakes b here
  options.wake = [](const std::string&) {};
  StartRouter(options);
  ReplaceAll({Env("a", json::array(), "starting"), Env("b", json::array(), "sleeping"),
              Env("c", json::array(), "failed")});
  Client c(port());
  for (auto [env, word] : {std::pair{"a", "starting"}, {"b", "asleep"}, {"c", "failed"}}) {
    auto r = c.Get(std::string(env) + ".localhost", "/", "Accept: application/json\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status(), 503);
    json j = json::parse(r->body);
    EXPECT_EQ(j["environment"], env);
    EXPECT_NE(j["detail"].get<std::string>().find(word), std::string::npos) << j.dump();
  }
}

TEST_F(RouterTest, RequestsForASleepingEnvironmentAreHeldUntilItRuns) {
  Upstream up;
  std::mutex mu;
  std::vector<std::string> asked;
  RouterOptions options;
  options.wake = [&](const std::string& env) {
    std::lock_guard lock(mu);
    asked.push_back(env);
  };
  StartRouter(options);
  ReplaceAll({Env("demo", {ServiceRoute("/*", json::array())}, "sleeping")});
  // Several requests arrive while it sleeps; each is held, none fails.
  std::vector<std::future<std::optional<testing::Message>>> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(std::async(std::launch::async, [this] {
      Client c(port());
      return c.Get("demo.localhost", "/x");
    }));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return !asked.empty();
  })) << "the router never asked to wake demo";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The control plane's services came up: routes with targets first, then `running`.
  PutEnv(Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})}, "sleeping"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  PutEnv(Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})}));
  for (auto& f : held) {
    auto r = f.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status(), 200) << r->body;
    EXPECT_EQ(r->body, "hello from up");
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(asked.front(), "demo");
  EXPECT_LE(asked.size(), 2u) << "asks are at most one a second per environment";
}

TEST_F(RouterTest, AHoldIsBoundedAndABrowserGetsAPageThatReloads) {
  RouterOptions options;
  options.hold_timeout = std::chrono::milliseconds(600);
  options.holding_page_after = std::chrono::milliseconds(200);
  options.wake = [](const std::string&) {};  // never woken
  StartRouter(options);
  ReplaceAll({Env("demo", json::array(), "sleeping")});
  Client c(port());
  auto t0 = std::chrono::steady_clock::now();
  auto api = c.Get("demo.localhost", "/api/x", "Accept: application/json\r\n");
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status(), 503);
  EXPECT_EQ(api->header("retry-after"), "5");
  EXPECT_GE(waited, std::chrono::milliseconds(550)) << "held up to the bound";
  t0 = std::chrono::steady_clock::now();
  auto page = c.Get("demo.localhost", "/", "Accept: text/html,application/xhtml+xml\r\n");
  waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status(), 503);
  EXPECT_EQ(page->header("refresh"), "2");
  EXPECT_NE(page->body.find("waking up"), std::string::npos) << page->body;
  EXPECT_LT(waited, std::chrono::milliseconds(550)) << "a browser gets its page sooner";
}

TEST_F(RouterTest, NoTargetIs503RefusedIs502SlowIs504) {
  Upstream up;
  RouterOptions options;
  options.upstream_timeout = std::chrono::milliseconds(300);
  StartRouter(options);
  uint16_t refusing = testing::RefusingPort();
  ReplaceAll({Env("demo", {ServiceRoute("/none/*", json::array()),
                           ServiceRoute("/refused/*",
                                        {Target("dead", "127.0.0.1:" + std::to_string(refusing))}),
                           ServiceRoute("/*", {Target("t1", up.address())})})});
  auto none = Client(port()).Get("demo.localhost", "/none/x");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status(), 503);
  EXPECT_NE(none->body.find("no healthy target"), std::string::npos);
  auto refused = Client(port()).Get("demo.localhost", "/refused/x");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status(), 502);
  EXPECT_NE(refused->body.find("refused"), std::string::npos) << refused->body;
  EXPECT_NE(refused->body.find("demo"), std::string::npos);
  auto slow = Client(port()).Get("demo.localhost", "/slow");
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status(), 504);
}

TEST_F(RouterTest, LiveRouteChangesDropNoRequest) {
  Upstream a("a"), b("b");
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("a", a.address())})})});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread client([&] {
    Client keep(port());
    while (!stop) {
      // Alternate a keep-alive connection and fresh connections.
      auto r =
          (ok % 2) ? keep.Get("demo.localhost", "/") : Client(port()).Get("demo.localhost", "/");
      (r && r->status() == 200) ? ++ok : ++failed;
    }
  });
  for (int i = 0; i < 40; ++i) {
    const Upstream& target = i % 2 ? a : b;
    json extra = Env("other" + std::to_string(i), {ServiceRoute("/*", {Target("x", a.address())})});
    ReplaceAll(
        {Env("demo", {ServiceRoute("/*", {Target(i % 2 ? "a" : "b", target.address())})}), extra});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(WaitFor([&] { return ok.load() > 50; }));
  stop = true;
  client.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(a.requests(), 0);
  EXPECT_GT(b.requests(), 0);
}

TEST_F(RouterTest, AChangeIsVisibleToTheVeryNextRequestOnAnOpenConnection) {
  // A feed message is applied before it is answered: no reload, no delay, and a kept-alive
  // client connection follows the new table on its next request.
  Upstream a("a"), b("b");
  StartRouter();
  Client keep(port());
  for (int i = 0; i < 10; ++i) {
    const Upstream& target = i % 2 ? b : a;
    ReplaceAll({Env("demo", {ServiceRoute("/*", {Target(i % 2 ? "b" : "a", target.address())})})});
    auto r = keep.Get("demo.localhost", "/");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->body, std::string("hello from ") + (i % 2 ? "b" : "a")) << "change " << i;
  }
}

TEST_F(RouterTest, RemovedTargetFinishesInFlightThenItsConnectionCloses) {
  Upstream a("a"), b("b");
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("a", a.address())})})});
  Client c(port());
  ASSERT_TRUE(c.Send("GET /chunked-wait HTTP/1.1\r\nHost: demo.localhost\r\n\r\n"));
  ASSERT_TRUE(c.reader().Until("first\r\n"));
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("b", b.address())})})});
  a.Release();
  auto rest = c.reader().Until("0\r\n\r\n");
  ASSERT_TRUE(rest);  // the in-flight request finished on the removed target
  EXPECT_NE(rest->find("last"), std::string::npos);
  EXPECT_TRUE(WaitFor([&] { return a.closed_connections() == 1; }));  // not pooled
  EXPECT_EQ(c.Get("demo.localhost", "/")->body, "hello from b");
}

TEST_F(RouterTest, ATargetTakenOutOfTheFeedGetsNoRequestAndComesBackWhenFedAgain) {
  // The control plane owns health: it takes an unhealthy task out with put_env and puts it
  // back once healthy. The router never probes on its own.
  Upstream a("a"), b("b");
  StartRouter();
  ReplaceAll(
      {Env("demo", {ServiceRoute("/*", {Target("a", a.address()), Target("b", b.address())})})});
  PutEnv(Env("demo", {ServiceRoute("/*", {Target("b", b.address())})}));
  Client c(port());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(c.Get("demo.localhost", "/")->body, "hello from b");
  PutEnv(Env("demo", {ServiceRoute("/*", {Target("a", a.address()), Target("b", b.address())})}));
  bool saw_a = false;
  for (int i = 0; i < 6 && !saw_a; ++i)
    saw_a = c.Get("demo.localhost", "/")->body == "hello from a";
  EXPECT_TRUE(saw_a);
  for (const testing::Message& m : a.received())
    EXPECT_NE(m.start_line.rfind("GET /health", 0), 0u) << "the router probed on its own";
}

TEST_F(RouterTest, ConnectionsAboveTheMaximumAreClosed) {
  Upstream up;
  RouterOptions options;
  options.max_connections = 2;
  StartRouter(options);
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client first(port()), second(port());
  ASSERT_EQ(first.Get("demo.localhost", "/")->status(), 200);
  ASSERT_EQ(second.Get("demo.localhost", "/")->status(), 200);
  Client third(port());
  EXPECT_FALSE(third.Get("demo.localhost", "/").has_value());  // closed at accept
  first.Send("GET / HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(first.Read());
  ASSERT_TRUE(first.Closed());
  // A slot is free again once the router has closed its side.
  EXPECT_TRUE(WaitFor([&] {
    auto r = Client(port()).Get("demo.localhost", "/");
    return r && r->status() == 200;
  }));
}

struct RawCase {
  const char* name;
  std::string request;
};

TEST_F(RouterTest, MalformedAndSmugglingRequestsAreRejectedAndNeverForwarded) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  const std::string h = "Host: demo.localhost\r\n";
  std::vector<RawCase> cases = {
      {"cl_te", "POST / HTTP/1.1\r\n" + h +
                    "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled "
                    "HTTP/1.1\r\n" +
                    h + "\r\n"},
      {"te_cl", "POST / HTTP/1.1\r\n" + h +
                    "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n"},
      {"dup_cl", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0\r\nContent-Length: 30\r\n\r\n"},
      {"cl_list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1, 1\r\n\r\nx"},
      {"cl_plus", "POST / HTTP/1.1\r\n" + h + "Content-Length: +1\r\n\r\nx"},
      {"te_gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
      {"te_space", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
      {"te_obsfold", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"},
      {"bare_lf", "GET / HTTP/1.1\n" + h + "\r\n"},
      {"bare_cr", "GET / HTTP/1.1\r\n" + h + "X: a\rb\r\n\r\n"},
      {"nul", "GET / HTTP/1.1\r\n" + h + std::string("X: a\0b\r\n\r\n", 10)},
      {"no_host", "GET / HTTP/1.1\r\n\r\n"},
      {"two_hosts", "GET / HTTP/1.1\r\n" + h + h + "\r\n"},
      {"bad_host", "GET / HTTP/1.1\r\nHost: demo.localhost/evil\r\n\r\n"},
      {"bad_version", "GET / HTTP/1.7\r\n" + h + "\r\n"},
      {"bad_method", "GE@T / HTTP/1.1\r\n" + h + "\r\n"},
      {"bad_target", "GET /a\x7f HTTP/1.1\r\n" + h + "\r\n"},
      {"bad_chunk_size",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
      {"chunk_overflow",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n"},
      {"bad_chunk_ext",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a b\r\nx\r\n0\r\n\r\n"},
  };
  for (const RawCase& tc : cases) {
    std::string answer = testing::SendRaw(port(), tc.request);
    // 400 and close, or a close without an answer; never 200 (which would mean forwarded).
    if (!answer.empty()) {
      EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << tc.name << ": " << answer;
      EXPECT_NE(answer.find("Connection: close"), std::string::npos) << tc.name;
      EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << tc.name;
    }
  }
  // Chunk errors are found while streaming, after the head went upstream: the upstream
  // may have seen those heads but never a complete request, so it never answered one.
  for (const testing::Message& m : up.received()) {
    ADD_FAILURE() << "upstream received a complete request: " << m.start_line;
  }
}

TEST_F(RouterTest, Limits431And414And413And408) {
  Upstream up;
  RouterOptions options;
  options.limits.max_header_bytes = 4096;
  options.limits.max_uri_bytes = 1024;
  options.limits.max_body_bytes = 1000;
  options.header_timeout = std::chrono::milliseconds(300);
  StartRouter(options);
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  const std::string h = "Host: demo.localhost\r\n";
  auto status_of = [&](const std::string& raw) {
    std::string answer = testing::SendRaw(port(), raw);
    return answer.size() >= 12 ? std::atoi(answer.c_str() + 9) : 0;
  };
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n" + h + "X-Big: " + std::string(5000, 'a') + "\r\n\r\n"),
            431);
  EXPECT_EQ(status_of("GET /" + std::string(2000, 'a') + " HTTP/1.1\r\n" + h + "\r\n"), 414);
  EXPECT_EQ(status_of("GET /" + std::string(5000, 'a')), 414);  // still in the request line
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\n" + h + "Content-Length: 1001\r\n\r\n"), 413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n" + "3e9\r\n" +
                      std::string(1001, 'a') + "\r\n0\r\n\r\n"),
            413);
  // A client that stops halfway through its head gets 408 once the deadline passes.
  Client slow(port());
  ASSERT_TRUE(slow.Send("GET / HTTP/1.1\r\nHost: demo"));
  auto r = slow.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 408);
  EXPECT_EQ(up.requests(), 0);
}

TEST_F(RouterTest, SlowlorisDoesNotStopOtherClients) {
  Upstream up;
  RouterOptions options;
  options.threads = 1;  // one thread: concurrency must come from the event loop
  StartRouter(options);
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(slow.back()->Send("GET / HTTP/1.1\r\nHo"));
  }
  auto r = Client(port()).Get("demo.localhost", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  for (auto& s : slow) ASSERT_TRUE(s->Send("st: demo.localhost\r\n\r\n"));
  for (auto& s : slow) EXPECT_EQ(s->Read()->status(), 200);
}

TEST_F(RouterTest, AccessLogAndStats) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("task-1", up.address())})})});
  Client c(port());
  ASSERT_EQ(c.Get("demo.localhost", "/hello")->status(), 200);
  ASSERT_EQ(c.Get("demo.localhost", "/again")->status(), 200);
  // A request is logged just after its response is sent: wait for both lines.
  std::vector<json> lines;
  ASSERT_TRUE(WaitFor([&] {
    router_->FlushAccessLogs();
    std::ifstream log(paths::AccessLog(home_.path(), "demo"));
    std::string line;
    lines.clear();
    while (std::getline(log, line)) lines.push_back(json::parse(line));
    return lines.size() == 2;
  }));
  EXPECT_EQ(lines[0]["method"], "GET");
  EXPECT_EQ(lines[0]["path"], "/hello");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[0]["target"], "task-1");
  EXPECT_GT(lines[0]["bytes"].get<int>(), 0);
  EXPECT_TRUE(lines[0].contains("duration_ms"));
  EXPECT_GT(lines[0]["time"].get<int64_t>(), 0);

  json stats = json::parse(router_->HandleFeedMessage(R"({"op":"stats"})"));
  EXPECT_EQ(stats["envs"]["demo"]["requests"], 2);
  EXPECT_GT(stats["envs"]["demo"]["bytes"].get<int>(), 0);
  EXPECT_GT(stats["envs"]["demo"]["last_request_ms"].get<int64_t>(), 0);
  EXPECT_EQ(stats["envs"]["demo"]["errors_5xx"], 0);
}

TEST_F(RouterTest, FeedSocketAppliesMessages) {
  Upstream up;
  StartRouter();
  auto socket_path = paths::RouterSocket(home_.path());
  EXPECT_EQ(std::filesystem::status(socket_path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  testing::SetRecvTimeout(fd, 10);
  testing::Reader reader(fd);
  json put = {{"op", "put_env"},
              {"env", Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})}};
  ASSERT_TRUE(testing::SendAll(fd, R"({"op":"ping"})"
                                   "\n" +
                                       put.dump() + "\n"));
  EXPECT_EQ(json::parse(*reader.Until("\n"))["pong"], true);
  EXPECT_EQ(json::parse(*reader.Until("\n"))["ok"], true);
  close(fd);
  EXPECT_EQ(Client(port()).Get("demo.localhost", "/")->status(), 200);
}

}  // namespace
}  // namespace adhoc::router

namespace adhoc::router {
namespace {

using json = nlohmann::json;
using testing::Client;
using testing::Upstream;

// "Authorization: Basic" for qa:s3cret.
const char* kBasicQa = "Authorization: Basic cWE6czNjcmV0\r\n";
const char* kToken = "k7Qm2xYp9LrT4vWnZs3a";

class GuardedTest : public RouterTest {
 protected:
  // demo: /admin/* and /api/* to `api`, everything else to `web`, with `access`.
  void Guard(const Upstream& api, const Upstream& web, json access) {
    json env = Env("demo", {ServiceRoute("/api/*", {Target("api", api.address())}),
                            ServiceRoute("/admin/*", {Target("api", api.address())}),
                            ServiceRoute("/*", {Target("web", web.address())})});
    env["access"] = std::move(access);
    ReplaceAll({env});
  }
  int Status(const std::string& path, const std::string& extra = "") {
    auto r = Client(port()).Get("demo.localhost", path, extra);
    return r ? r->status() : 0;
  }
};

TEST_F(GuardedTest, BasicAuthRefusesWithoutServesWithAndNeverForwardsIt) {
  Upstream api("api"), web("web");
  StartRouter();
  Guard(api, web,
        {{"basic_auth", {{{"user", "qa"}, {"password", "s3cret"}}}},
         {"public_paths", {"/api/health-check/"}}});
  Client c(port());
  auto refused = c.Get("demo.localhost", "/admin/headers");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status(), 401);
  EXPECT_EQ(refused->header("www-authenticate"), "Basic realm=\"demo\", charset=\"UTF-8\"");
  auto wrong = c.Get("demo.localhost", "/admin/headers", "Authorization: Basic cWE6bm9wZQ==\r\n");
  EXPECT_EQ(wrong->status(), 401);
  auto served = c.Get("demo.localhost", "/admin/headers", kBasicQa);
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status(), 200);
  EXPECT_EQ(served->header("x-upstream"), "api");
  EXPECT_EQ(served->body.find("Authorization"), std::string::npos) << served->body;
  EXPECT_EQ(served->body.find("cWE6czNjcmV0"), std::string::npos);
  // The public path needs nothing, and a consumed header is dropped there too.
  auto health = c.Get("demo.localhost", "/api/health-check/", kBasicQa);
  EXPECT_EQ(health->status(), 200);
  for (const testing::Message& m : api.received()) {
    EXPECT_EQ(m.header("authorization"), "") << m.start_line;
  }
  EXPECT_EQ(Status("/api/health-check/"), 200);
  EXPECT_EQ(Status("/api/health-check/x"), 401);
}

TEST_F(GuardedTest, TokenLinkSetsACookieThatIsConsumedNotForwarded) {
  Upstream api("api"), web("web");
  StartRouter();
  Guard(api, web, {{"token", kToken}, {"cookie_max_age_s", 3600}});
  EXPECT_EQ(Status("/headers"), 401);
  EXPECT_EQ(Status("/headers?adhoc_token=wrong-token-value"), 401);
  Client c(port());
  auto link = c.Get("demo.localhost", std::string("/headers?x=1&adhoc_token=") + kToken + "&y=2");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->status(), 302);
  EXPECT_EQ(link->header("location"), "/headers?x=1&y=2");
  EXPECT_EQ(link->header("set-cookie"), std::string("adhoc_access=") + kToken +
                                            "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
  EXPECT_EQ(web.requests(), 0);  // the link never reaches the application
  auto served = c.Get("demo.localhost", "/headers?x=1&y=2",
                      std::string("Cookie: csrftoken=abc; adhoc_access=") + kToken +
                          "; sessionid=s\r\nAuthorization: Token app-token\r\n");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status(), 200);
  EXPECT_NE(served->body.find("Cookie: csrftoken=abc; sessionid=s\r\n"), std::string::npos)
      << served->body;
  EXPECT_EQ(served->body.find(kToken), std::string::npos);
  // The application's own credentials pass untouched (Django REST Framework's token).
  EXPECT_NE(served->body.find("Authorization: Token app-token\r\n"), std::string::npos);
  auto only_ours =
      c.Get("demo.localhost", "/headers", std::string("Cookie: adhoc_access=") + kToken + "\r\n");
  EXPECT_EQ(only_ours->status(), 200);
  EXPECT_EQ(only_ours->body.find("Cookie"), std::string::npos);
}

TEST_F(GuardedTest, AllowListRefusesOtherAddressesEvenWithCredentials) {
  Upstream api("api"), web("web");
  StartRouter();
  Guard(api, web,
        {{"allow", {"10.0.0.0/8"}}, {"basic_auth", {{{"user", "qa"}, {"password", "s3cret"}}}}});
  auto r = Client(port()).Get("demo.localhost", "/", kBasicQa);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 403);
  EXPECT_NE(r->body.find("127.0.0.1"), std::string::npos);
  Guard(api, web, {{"allow", {"10.0.0.0/8", "127.0.0.0/8"}}});
  EXPECT_EQ(Status("/"), 200);
  EXPECT_EQ(web.requests() + api.requests(), 1);
}

TEST_F(GuardedTest, NoModeCanBeBypassedWithAnEncodedOrDottedPath) {
  Upstream api("api"), web("web");
  StartRouter();
  const std::vector<std::string> sneaky = {"/admin/x",        "/%61dmin/x", "/%61%64%6D%69%6E/x",
                                           "/x/../admin/x",   "/./admin/x", "//admin/x",
                                           "/api/../admin/x", "/admin%2fx", "/admin/x/%2e%2e/y"};
  struct Mode {
    const char* name;
    json access;
    int refused;
  };
  for (const Mode& mode :
       std::vector<Mode>{{"basic",
                          {{"basic_auth", {{{"user", "qa"}, {"password", "s3cret"}}}},
                           {"public_paths", {"/api/*"}}},
                          401},
                         {"token", {{"token", kToken}, {"public_paths", {"/api/*"}}}, 401},
                         {"cidr", {{"allow", {"192.0.2.0/24"}}}, 403}}) {
    Guard(api, web, mode.access);
    int before = api.requests() + web.requests();
    for (const std::string& path : sneaky) {
      int status = Status(path);
      // Refused by the rule, or (an encoded slash) refused as unsafe: never forwarded.
      EXPECT_TRUE(status == mode.refused || status == 400)
          << mode.name << " " << path << ": " << status;
    }
    EXPECT_EQ(api.requests() + web.requests(), before) << mode.name;
  }
}

TEST_F(GuardedTest, RoutingUsesTheNormalizedPath) {
  // The issue's case: /%61pi/... went to the frontend while /api/... went to the backend.
  Upstream api("api"), web("web");
  StartRouter();
  Guard(api, web, json::object());
  Client c(port());
  for (const char* path : {"/api/health-check/", "/%61pi/health-check/", "/x/../api/health-check/",
                           "//api/health-check/"}) {
    auto r = c.Get("demo.localhost", path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->body, "hello from api") << path;
  }
  // And the upstream is sent the path it was routed by.
  auto r = c.Get("demo.localhost", "/x/./../%68eaders?q=%2e");
  EXPECT_EQ(r->body.rfind("GET /headers?q=%2e HTTP/1.1\r\n", 0), 0u) << r->body;
  auto untouched = c.Get("demo.localhost", "/headers?q=1");
  EXPECT_EQ(untouched->body.rfind("GET /headers?q=1 HTTP/1.1\r\n", 0), 0u) << untouched->body;
}

TEST_F(RouterTest, AnEarlyAnswerFromTheUpstreamReachesTheClient) {
  // gunicorn refusing a large upload answers 413 before reading the body, then closes.
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  ASSERT_TRUE(
      c.Send("POST /reject-upload HTTP/1.1\r\nHost: demo.localhost\r\n"
             "Content-Length: 104857600\r\n\r\n"));
  std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 16; ++i) {
    if (!c.Send(chunk)) break;  // the router may stop reading once it has the answer
  }
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 413);
  EXPECT_EQ(r->body, "body too large");
  EXPECT_EQ(r->header("connection"), "close");
  // Also when the answer comes as the head goes up and the client has not sent a byte yet.
  Client waiting(port());
  ASSERT_TRUE(
      waiting.Send("POST /reject-upload HTTP/1.1\r\nHost: demo.localhost\r\n"
                   "Content-Length: 1000\r\n\r\n"));
  auto r2 = waiting.Read();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status(), 413);
}

TEST_F(RouterTest, RequestsWithBodiesStayOrdinaryExchanges) {
  // Watching for early answers must not turn an ordinary exchange with a body into one:
  // the client connection stays open and the upstream connection is pooled.
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  for (int i = 0; i < 50; ++i) {
    std::string body = "body-" + std::to_string(i);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    auto r = c.Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, body);
    EXPECT_EQ(r->header("connection"), "") << i;
  }
  EXPECT_EQ(up.connections(), 1);
}

TEST_F(RouterTest, RequestIdIsMadeWhenAbsentPassedUpstreamAndLogged) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  Client c(port());
  auto made = c.Get("demo.localhost", "/headers");
  size_t at = made->body.find("X-Request-Id: ");
  ASSERT_NE(at, std::string::npos) << made->body;
  std::string id = made->body.substr(at + 14, made->body.find("\r\n", at) - at - 14);
  EXPECT_EQ(id.size(), 32u);
  auto next = c.Get("demo.localhost", "/headers");
  EXPECT_EQ(next->body.find(id), std::string::npos);  // each request its own
  auto given = c.Get("demo.localhost", "/headers", "X-Request-Id: trace-42\r\n");
  EXPECT_NE(given->body.find("X-Request-Id: trace-42\r\n"), std::string::npos);
  EXPECT_EQ(given->body.find("X-Request-Id", given->body.find("trace-42")), std::string::npos);
  auto page = c.Get("demo.localhost", "/x", "Host: twice\r\n");  // a 400 of the router's own
  std::vector<json> lines;
  ASSERT_TRUE(WaitFor([&] {
    router_->FlushAccessLogs();
    std::ifstream log(paths::AccessLog(home_.path(), "demo"));
    std::string line;
    lines.clear();
    while (std::getline(log, line)) lines.push_back(json::parse(line));
    return lines.size() == 3;
  }));
  EXPECT_EQ(lines[0]["request_id"], id);
  EXPECT_EQ(lines[2]["request_id"], "trace-42");
}

TEST_F(RouterTest, ABareCrIsAnswered400AtOnce) {
  Upstream up;
  RouterOptions options;
  options.header_timeout = std::chrono::minutes(2);  // far beyond the client's 10 s read bound
  StartRouter(options);
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  for (const char* raw : {"GET / HTTP/1.1\rHost: demo.localhost", "GET / HTTP/1.1\r\r",
                          "GET / HTTP/1.1\nHost: demo.localhost", "\n"}) {
    Client c(port());
    ASSERT_TRUE(c.Send(raw));
    auto r = c.Read();
    ASSERT_TRUE(r) << "no answer to " << testing::Lower(raw);
    EXPECT_EQ(r->status(), 400);
    EXPECT_TRUE(c.Closed());
  }
  EXPECT_EQ(up.requests(), 0);
}

TEST_F(RouterTest, MetricsMoveWithTraffic) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  auto scrape = [&] {
    auto r = Client(port()).Get("127.0.0.1:" + std::to_string(port()), "/metrics");
    EXPECT_TRUE(r && r->status() == 200);
    EXPECT_EQ(r->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    return r ? r->body : std::string();
  };
  auto value = [](const std::string& text, const std::string& series) -> long {
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::atol(text.c_str() + at + series.size() + 2);
  };
  const std::string ok = R"(adhoc_router_requests_total{env="demo",service="web",class="2xx"})";
  const std::string bytes = R"(adhoc_router_response_bytes_total{env="demo"})";
  std::string before = scrape();
  EXPECT_EQ(value(before, ok), 0);
  Client c(port());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.Get("demo.localhost", "/")->status(), 200);
  EXPECT_EQ(c.Get("nobody.localhost", "/")->status(), 404);
  std::string after = scrape();
  EXPECT_EQ(value(after, ok), 3);
  EXPECT_GT(value(after, bytes), value(before, bytes));
  EXPECT_EQ(
      value(after, R"(adhoc_router_request_duration_seconds_count{env="demo",service="web"})"), 3);
  EXPECT_EQ(value(after, "adhoc_router_unknown_host_requests_total"),
            value(before, "adhoc_router_unknown_host_requests_total") + 1);
  EXPECT_GE(value(after, "adhoc_router_open_connections"), 1);
  EXPECT_EQ(value(after, R"(adhoc_router_healthy_targets{env="demo",service="web"})"), 1);
  // The feed has them too.
  json m = json::parse(router_->HandleFeedMessage(R"({"op":"metrics"})"));
  EXPECT_NE(m["text"].get<std::string>().find(ok + " 3"), std::string::npos);
}

TEST_F(RouterTest, MetricsOnlyForAllowedClients) {
  RouterOptions options;
  options.metrics_allow = {"192.0.2.0/24"};
  StartRouter(options);
  auto r = Client(port()).Get("127.0.0.1", "/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 404);
}

// A WebSocket client through the router: the handshake, then frames.
struct WebSocketClient {
  explicit WebSocketClient(uint16_t port, const std::string& host = "demo.localhost")
      : client(port) {
    client.Send("GET /ws HTTP/1.1\r\nHost: " + host +
                "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    handshake = client.Read(true);
  }
  bool Echoes(const std::string& text) {
    if (!client.Send(testing::WebSocketFrame(1, text, true))) return false;
    auto frame = testing::ReadWebSocketFrame(client.reader());
    return frame && frame->opcode == 1 && frame->payload == text;
  }
  Client client;
  std::optional<testing::Message> handshake;
};

TEST_F(RouterTest, WebSocketEchoThroughTheRouter) {
  Upstream up;
  StartRouter();
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  WebSocketClient ws(port());
  ASSERT_TRUE(ws.handshake);
  EXPECT_EQ(ws.handshake->status(), 101);
  EXPECT_EQ(testing::Lower(ws.handshake->header("upgrade")), "websocket");
  EXPECT_EQ(ws.handshake->header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(ws.Echoes("hello"));
  EXPECT_TRUE(ws.Echoes(std::string(70000 % 65000, 'z')));
  json stats = json::parse(router_->HandleFeedMessage(R"({"op":"stats"})"));
  EXPECT_EQ(stats["envs"]["demo"]["upgraded"], 1);
  ASSERT_TRUE(ws.client.Send(testing::WebSocketFrame(8, "\x03\xe8", true)));
  auto close = testing::ReadWebSocketFrame(ws.client.reader());
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, 8);
  EXPECT_TRUE(ws.client.Closed());
  EXPECT_TRUE(WaitFor([&] {
    return json::parse(
               router_->HandleFeedMessage(R"({"op":"stats"})"))["envs"]["demo"]["upgraded"] == 0;
  }));
  // An ordinary request afterwards still works.
  EXPECT_EQ(Client(port()).Get("demo.localhost", "/")->status(), 200);
}

TEST_F(RouterTest, UpgradedConnectionsSurviveOtherChangesAndCloseWithTheirEnvironment) {
  Upstream a("a"), b("b");
  StartRouter();
  json env_a = Env("a", {ServiceRoute("/*", {Target("a", a.address())})});
  json env_b = Env("b", {ServiceRoute("/*", {Target("b", b.address())})});
  ReplaceAll({env_a, env_b});
  WebSocketClient in_a(port(), "a.localhost"), in_b(port(), "b.localhost");
  ASSERT_EQ(in_a.handshake->status(), 101);
  ASSERT_EQ(in_b.handshake->status(), 101);
  // Route changes of b, a new environment, a replace_all that keeps a: a's socket lives on.
  Feed({{"op", "put_env"}, {"env", Env("b", {ServiceRoute("/x/*", {Target("b", b.address())})})}});
  Feed({{"op", "put_env"}, {"env", Env("c", {ServiceRoute("/*", {Target("a", a.address())})})}});
  ReplaceAll({env_a, env_b});
  EXPECT_TRUE(in_a.Echoes("still here"));
  EXPECT_TRUE(in_b.Echoes("b too"));
  // Its own route change does not close it either (its upstream decides).
  Feed({{"op", "put_env"}, {"env", Env("a", {ServiceRoute("/y/*", {Target("a", a.address())})})}});
  EXPECT_TRUE(in_a.Echoes("after my own change"));
  // Destroyed: a clean close (1001, going away), then the end of the stream.
  Feed({{"op", "remove_env"}, {"name", "a"}});
  auto frame = testing::ReadWebSocketFrame(in_a.client.reader());
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->opcode, 8);
  EXPECT_EQ(frame->payload, std::string("\x03\xe9", 2));
  EXPECT_TRUE(in_a.client.Closed());
  EXPECT_TRUE(WaitFor([&] { return a.open_websockets() == 0; }));  // the upstream side too
  EXPECT_TRUE(in_b.Echoes("b is untouched"));
}

TEST_F(RouterTest, IdleUpgradedConnectionsTimeOutAndTheCountIsBounded) {
  Upstream up;
  RouterOptions options;
  // Long enough that the second handshake comes first, even on a loaded machine.
  options.upgraded_idle_timeout = std::chrono::milliseconds(2000);
  options.max_upgraded_per_env = 1;
  StartRouter(options);
  ReplaceAll({Env("demo", {ServiceRoute("/*", {Target("t1", up.address())})})});
  WebSocketClient first(port());
  ASSERT_EQ(first.handshake->status(), 101);
  WebSocketClient second(port());
  ASSERT_TRUE(second.handshake);
  EXPECT_EQ(second.handshake->status(), 503);  // over the per-environment limit
  EXPECT_TRUE(first.client.Closed());          // idle past the timeout: closed
  EXPECT_TRUE(WaitFor([&] {
    WebSocketClient third(port());
    return third.handshake && third.handshake->status() == 101;
  }));
}

}  // namespace
}  // namespace adhoc::router
