// [notify] (issue 13) with real processes: an environment with a short TTL in a project whose
// webhook is a receiver the test runs (its `before` longer than the TTL, so the warning comes
// at once) gets `expiring`, then `expired` when the TTL destroys it, each exactly once, with
// its URL and owner; and it is gone.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/paths.h"
#include "e2e/sandbox.h"
#include "server/test_webhook_receiver.h"
#include "state/store.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using server::testing::WebhookReceiver;

TEST(NotifyTest, ExpiringThenExpiredExactlyOnceEachAndTheEnvironmentIsGone) {
  WebhookReceiver receiver;  // outlives the sandbox: the control plane may post until it stops
  Sandbox box(ADHOC_BINARY);
  box.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
  std::ofstream(box.repo() / "adhoc.toml", std::ios::app)
      << "\n[notify]\nurl = \"" << receiver.Url("/adhoc-hook") << "\"\nbefore = \"1h\"\n";
  std::ofstream(box.repo() / "envs/brief.toml")
      << "owner = \"carol\"\nttl = \"8s\"\n[versions]\nbackend = \"HEAD\"\nfrontend = \"HEAD\"\n";
  CommandResult up = box.Adhoc({"up", "brief"});
  ASSERT_EQ(up.exit_code, 0) << up.output;

  ASSERT_TRUE(receiver.WaitForRequests(2, std::chrono::seconds(40)))
      << receiver.Requests().size() << " notice(s) within 40 s";
  // Exactly once each: nothing more comes.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 2u);
  const std::string url = "http://brief.localhost:" + std::to_string(box.router_port()) + "/";
  const char* kinds[] = {"expiring", "expired"};
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(kinds[i]);
    EXPECT_EQ(requests[i].method, "POST");
    EXPECT_EQ(requests[i].target, "/adhoc-hook");
    EXPECT_EQ(requests[i].headers["content-type"], "application/json");
    EXPECT_EQ(requests[i].headers["user-agent"], "adhoc");
    json body = json::parse(requests[i].body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << requests[i].body;
    EXPECT_EQ(body["event"], kinds[i]);
    EXPECT_EQ(body["env"], "brief");
    EXPECT_EQ(body["project"], "mini");
    EXPECT_EQ(body["owner"], "carol");
    EXPECT_EQ(body["url"], url);
    EXPECT_TRUE(body["expires_at"].is_string()) << body;
    EXPECT_TRUE(body["last_request_at"].is_null()) << "no request was made: " << body;
  }

  // Gone, and the events say what was sent.
  json ls = box.AdhocJson({"ls"});
  ASSERT_TRUE(ls.is_object());
  EXPECT_TRUE(ls["environments"].empty()) << ls;
  auto left = box.Leftovers("brief");
  EXPECT_TRUE(left.empty()) << left.front();
  auto store = state::Store::Open(paths::StateDb(box.home()));
  ASSERT_TRUE(store.ok());
  state::EventQuery q;
  q.env = "brief";
  std::vector<std::string> notices;
  auto events = (*store)->ListEvents(q);
  ASSERT_TRUE(events.ok()) << events.error().message();
  for (const auto& e : *events)
    if (e.kind == "notified" || e.kind == "notify-failed") notices.push_back(e.message);
  EXPECT_EQ(notices,
            (std::vector<std::string>{"expiring notice sent to " + receiver.Url("/adhoc-hook"),
                                      "expired notice sent to " + receiver.Url("/adhoc-hook")}));
}

}  // namespace
}  // namespace adhoc::e2e
