// The API of a real control plane (in a home of the test's own, no keeper) under garbage:
// every malformed parameter and body gets a 400 JSON error naming it, nothing kills the
// process, idle connections hold no thread, and every route docs/api.md documents exists.
#include "server/api_routes.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "common/paths.h"
#include "common/test_support.h"
#include "server/api_client.h"
#include "server/control_plane.h"
#include "server/launcher.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One raw HTTP exchange on the socket: the status and body of the answer.
struct Raw {
  int status = 0;
  std::string body;
};

int Connect(const fs::path& socket_path) {
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

Raw Exchange(const fs::path& socket_path, const std::string& request) {
  Raw out;
  int fd = Connect(socket_path);
  if (fd < 0) return out;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    answer.append(buf, n);
  }
  close(fd);
  if (answer.rfind("HTTP/1.1 ", 0) == 0) out.status = std::atoi(answer.c_str() + 9);
  auto head_end = answer.find("\r\n\r\n");
  if (head_end != std::string::npos) out.body = answer.substr(head_end + 4);
  return out;
}

std::string Request(const std::string& method, const std::string& target,
                    const std::string& body = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: adhoc\r\nConnection: close\r\n";
  if (!body.empty())
    r +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

int Threads() {
  int n = 0;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc/self/task", ec)) {
    (void)e;
    ++n;
  }
  return n;
}

class ApiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ControlPlaneOptions o;
    o.home = dir_.path() / "home";
    o.adhoc_binary = ADHOC_BINARY;
    o.router.adhoc_binary = ADHOC_BINARY;
    o.keeper = false;
    auto cp = ControlPlane::Open(o);
    ASSERT_TRUE(cp.ok()) << cp.error().message();
    cp_ = std::move(*cp);
    serve_ = std::thread([this] { (void)cp_->Serve(); });
    ApiClient client(socket());
    for (int i = 0; i < 500; ++i) {
      auto ls = client.Call("GET", "/v1/environments");
      if (ls.ok() && !ls->value("recovering", true)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(client.Reachable());
    // An environment on record (after recovery, so no router starts for it), so handlers get
    // past "no such environment" to their parameters.
    state::Environment e;
    e.name = "demo";
    e.hostname = "demo.localhost";
    e.address_block = "127.77.1.0/24";
    ASSERT_TRUE(cp_->store().PutEnvironment(e).ok());
  }
  void TearDown() override {
    if (cp_) cp_->Shutdown(false);
    if (serve_.joinable()) serve_.join();
  }
  fs::path socket() const { return paths::ServerSocket(dir_.path() / "home"); }

  // The answer must be `status` with a JSON error body of kind `kind` naming `needle`.
  void ExpectError(const std::string& request, int status, const std::string& needle) {
    Raw r = Exchange(socket(), request);
    EXPECT_EQ(r.status, status) << request << "\n" << r.body;
    json body = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << request << "\n" << r.body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(needle), std::string::npos)
        << request << "\n"
        << body;
  }

  testutil::TempDir dir_;
  std::unique_ptr<ControlPlane> cp_;
  std::thread serve_;
};

TEST_F(ApiRoutesTest, MalformedQueryParametersAre400sNamingThem) {
  const std::string logs = "/v1/environments/demo/logs";
  ExpectError(Request("GET", logs + "?tail=abc"), 400, "tail=abc");
  ExpectError(Request("GET", logs + "?tail=99999999999999999999"), 400, "tail");
  ExpectError(Request("GET", logs + "?tail=%zz"), 400, "tail");
  ExpectError(Request("GET", logs + "?tail=-5"), 400, "tail");
  ExpectError(Request("GET", logs + "?since_ms=abc"), 400, "since_ms=abc");
  ExpectError(Request("GET", logs + "?follow=maybe"), 400, "follow=maybe");
  ExpectError(Request("GET", logs + "?process=../../etc"), 400, "not a service or task name");
  ExpectError(Request("GET", "/v1/events?limit=2147483648"), 400, "limit=2147483648");
  ExpectError(Request("GET", "/v1/events?limit=0"), 400, "limit");
  ExpectError(Request("GET", "/v1/events?env=..%2Fx"), 400, "environment name");
  ExpectError(Request("GET", "/v1/operations/abc"), 400, "operation id 'abc'");
  ExpectError(Request("GET", "/v1/operations/99999999999999999999"), 400, "operation id");
  ExpectError(Request("GET", "/v1/operations/424242"), 404, "424242");
  ExpectError(Request("GET", "/v1/environments/Not%20A%20Name"), 400, "environment name");
  ExpectError(Request("GET", "/v1/environments/demo/exec/..%2F"), 400, "service or task");
  ExpectError(Request("GET", "/v1/nothing"), 404, "no such API path");
  ExpectError(Request("DELETE", "/v1/environments"), 400, "not allowed");
}

TEST_F(ApiRoutesTest, MalformedBodiesAre400sNamingTheField) {
  const std::string up = "/v1/environments/demo/up";
  ExpectError(Request("POST", up, R"({"project":5})"), 400, "\"project\" must be a string");
  ExpectError(Request("POST", up, "null"), 400, "\"project\"");
  ExpectError(Request("POST", up, "[1,2]"), 400, "JSON object");
  ExpectError(Request("POST", up, "{not json"), 400, "not valid JSON");
  ExpectError(Request("POST", up, R"({"project":"relative/path"})"), 400, "absolute path");
  ExpectError(Request("POST", up, R"({"project":"/x","wait":"yes"})"), 400, "\"wait\"");
  const std::string run = "/v1/environments/demo/run";
  ExpectError(Request("POST", run, R"({"task":5})"), 400, "\"task\" must be a string");
  ExpectError(Request("POST", run, R"({"command":[1,2]})"), 400, "only strings");
  ExpectError(Request("POST", run, R"({"command":"ls"})"), 400, "array");
  ExpectError(Request("POST", run, R"({})"), 400, "either");
  ExpectError(Request("POST", run, R"({"task":"migrate","command":["ls"]})"), 400, "either");
  const std::string deploy = "/v1/environments/demo/deploy";
  ExpectError(Request("POST", deploy, R"({"versions":5})"), 400, "\"versions\"");
  ExpectError(Request("POST", deploy, R"({"versions":{"backend":5}})"), 400, "backend");
  ExpectError(Request("POST", deploy, R"({"versions":{}})"), 400, "\"versions\"");
  ExpectError(Request("POST", "/v1/environments/demo/plan", R"({"project":[]})"), 400,
              "\"project\"");
  ExpectError(Request("POST", "/v1/environments/demo/destroy", R"({"wait":1})"), 400, "\"wait\"");
  ExpectError(Request("POST", "/v1/environments/demo/sleep", R"({"wait":"no"})"), 400, "\"wait\"");
  ExpectError(Request("POST", "/v1/environments/demo/wake", R"({"background":1})"), 400,
              "\"background\"");
  ExpectError(Request("POST", "/v1/environments/nosuch/wake", R"({"background":true})"), 404,
              "nosuch");
  ExpectError(Request("POST", "/v1/environments/Bad_Name/sleep", "{}"), 400, "environment name");
  ExpectError(Request("POST", "/v1/gc", R"({"dry_run":"yes"})"), 400, "\"dry_run\"");
  const std::string snapshot = "/v1/environments/demo/snapshot";
  ExpectError(Request("POST", snapshot, R"({})"), 400, "\"name\"");
  ExpectError(Request("POST", snapshot, R"({"name":5})"), 400, "\"name\" must be a string");
  ExpectError(Request("POST", snapshot, R"({"name":"Pre Prod"})"), 400, "snapshot name");
  ExpectError(Request("POST", snapshot, R"({"name":"../../etc"})"), 400, "snapshot name");
  ExpectError(Request("POST", snapshot, "{\"name\":\"" + std::string(200, 'a') + "\"}"), 400,
              "longer than");
  ExpectError(Request("POST", snapshot, R"({"name":"ok","wait":"no"})"), 400, "\"wait\"");
  ExpectError(Request("POST", "/v1/environments/nosuch/snapshot", R"({"name":"ok"})"), 404,
              "nosuch");
  ExpectError(Request("POST", "/v1/environments/Bad_Name/snapshot", R"({"name":"ok"})"), 400,
              "environment name");
  ExpectError(Request("POST", "/v1/environments/demo/reset", R"({"wait":1})"), 400, "\"wait\"");
  ExpectError(Request("POST", "/v1/environments/demo/reset", "[]"), 400, "JSON object");
  ExpectError(Request("POST", "/v1/environments/nosuch/reset", "{}"), 404, "nosuch");
  ExpectError(Request("DELETE", "/v1/snapshots/Bad_Name"), 400, "snapshot name");
  ExpectError(Request("DELETE", "/v1/snapshots/..%2F..%2Fstate.db"), 400, "snapshot name");
  ExpectError(Request("DELETE", "/v1/snapshots/nosuch"), 404, "nosuch");
  ExpectError(Request("POST", "/v1/snapshots"), 400, "not allowed");
  // Not HTTP at all.
  Raw garbage = Exchange(socket(), "\x01\x02\x03 nonsense\r\n\r\n");
  EXPECT_TRUE(garbage.status == 400 || garbage.status == 0) << garbage.status;
  // Still alive and answering.
  auto health = ApiClient(socket()).Call("GET", "/v1/health");
  ASSERT_TRUE(health.ok()) << health.error().message();
  EXPECT_EQ((*health)["ok"], true);
}

TEST_F(ApiRoutesTest, IdleConnectionsHoldNoThread) {
  int before = Threads();
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    int fd = Connect(socket());
    ASSERT_GE(fd, 0) << i;
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Answers still come, and the threads did not grow with the connections.
  auto health = ApiClient(socket()).Call("GET", "/v1/health");
  EXPECT_TRUE(health.ok());
  EXPECT_LT(Threads() - before, 70) << "threads grew with idle connections";
  for (int fd : idle) close(fd);
}

TEST_F(ApiRoutesTest, EveryRouteTheDocumentationListsExists) {
  std::ifstream doc(fs::path(ADHOC_SOURCE_DIR) / "docs/api.md");
  ASSERT_TRUE(doc.good());
  std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  // Rows of the routes table: | `METHOD /v1/path` | ...
  std::regex row(R"(\| `(GET|POST|DELETE) (/v1/[^` ?]*)[^`]*` \|)");
  int routes = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), row); it != std::sregex_iterator();
       ++it) {
    std::string method = (*it)[1], path = (*it)[2];
    path = std::regex_replace(path, std::regex(R"(\{env\})"), "demo");
    path = std::regex_replace(path, std::regex(R"(\{service\})"), "web");
    path = std::regex_replace(path, std::regex(R"(\{id\})"), "1");
    path = std::regex_replace(path, std::regex(R"(\{name\})"), "preprod");
    // Asked with the other method, a route that exists answers "not allowed" without acting
    // (so base/down and shutdown can be checked too); an unknown path answers 404.
    std::string other = method == "GET" ? "POST" : "GET";
    Raw r = Exchange(socket(), Request(other, path));
    EXPECT_EQ(r.status, 400) << method << " " << path << ": " << r.body;
    EXPECT_NE(r.body.find(other + " is not allowed on " + path), std::string::npos)
        << method << " " << path << ": " << r.body;
    ++routes;
  }
  EXPECT_GE(routes, 12) << "the routes table of docs/api.md was not found";
}

}  // namespace
}  // namespace adhoc::server
