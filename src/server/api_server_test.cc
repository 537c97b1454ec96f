#include "server/api_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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

TEST(ApiClientTest, NothingListening) {
  ApiClient client("/nonexistent/adhoc.sock");
  EXPECT_FALSE(client.Reachable());
  auto r = client.Call("GET", "/v1/health");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("cannot reach"), std::string::npos);
}

}  // namespace
}  // namespace adhoc::server
