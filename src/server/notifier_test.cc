#include "server/notifier.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/paths.h"
#include "common/test_support.h"
#include "server/test_webhook_receiver.h"

namespace adhoc::server {
namespace {

using nlohmann::json;
constexpr state::Millis kHour = 3600 * 1000;
constexpr state::Millis kStart = 1'700'000'000'000;

// A store on a fake clock with one recorded environment, and a fake delivery that records
// what it was given and answers with `answer`.
class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = state::Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    store_ = std::move(opened).value();
    Record("demo", "[notify]\nurl = \"https://hooks.example.com/adhoc\"\nbefore = \"1h\"\n");
  }

  // `demo`-like environment: created at kStart, ttl 2h, running, with this project file.
  void Record(const std::string& name, const std::string& project_tail,
              std::optional<int64_t> ttl = 2 * 3600) {
    state::Environment e;
    e.name = name;
    e.status = state::EnvStatus::kRunning;
    e.owner = "brian";
    e.url = "http://" + name + ".localhost:8080";
    e.ttl_seconds = ttl;
    e.spec_json = json{{"project_toml", "name = \"mini\"\n" + project_tail}}.dump();
    ASSERT_TRUE(store_->PutEnvironment(e).ok());
  }

  std::vector<state::Environment> Envs() { return *store_->ListEnvironments(); }
  state::Environment Get(const std::string& name) { return *store_->GetEnvironment(name); }

  Notifier::Post Fake() {
    return [this](const std::string& url, const std::string& body) -> Status {
      std::lock_guard lock(mu_);
      posts_.push_back({url, json::parse(body)});
      return answer_;
    };
  }

  std::vector<std::pair<std::string, json>> Posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }

  // Events of `env` as "kind: message".
  std::vector<std::string> Events(const std::string& env) {
    state::EventQuery q;
    q.env = env;
    std::vector<std::string> out;
    auto events = store_->ListEvents(q);
    if (!events.ok()) return {events.error().message()};
    for (const auto& e : *events) out.push_back(e.kind + ": " + e.message);
    return out;
  }

  testutil::TempDir dir_;
  std::shared_ptr<state::FakeClock> clock_ = std::make_shared<state::FakeClock>(kStart);
  std::unique_ptr<state::Store> store_;
  std::mutex mu_;
  std::vector<std::pair<std::string, json>> posts_;
  Status answer_;
};

TEST_F(NotifierTest, WarnsOncePerExpiryEvenAcrossARestart) {
  {
    Notifier notifier(*store_, {}, Fake());
    notifier.Tick(Envs(), kStart + kHour - 1);
    notifier.Drain();
    EXPECT_TRUE(Posts().empty()) << "more than `before` ahead of the expiry";
    notifier.Tick(Envs(), kStart + kHour);
    notifier.Drain();
    ASSERT_EQ(Posts().size(), 1u);
    EXPECT_EQ(Posts()[0].first, "https://hooks.example.com/adhoc");
    EXPECT_EQ(Posts()[0].second["event"], "expiring");
    EXPECT_EQ(Posts()[0].second["env"], "demo");
    EXPECT_EQ(Posts()[0].second["project"], "mini");
    EXPECT_EQ(Posts()[0].second["owner"], "brian");
    EXPECT_EQ(Posts()[0].second["url"], "http://demo.localhost:8080");
    EXPECT_EQ(Posts()[0].second["expires_at"], Rfc3339(kStart + 2 * kHour));
    notifier.Tick(Envs(), kStart + kHour + 1000);
    notifier.Drain();
    EXPECT_EQ(Posts().size(), 1u) << "once per expiry time";
  }
  // A restarted control plane remembers it warned of this expiry.
  Notifier again(*store_, {}, Fake());
  again.Tick(Envs(), kStart + kHour + 2000);
  again.Drain();
  EXPECT_EQ(Posts().size(), 1u);
  EXPECT_EQ(Events("demo"),
            (std::vector<std::string>{
                "notified: expiring notice sent to https://hooks.example.com/adhoc"}));
  // A request moves the expiry: warned again when the new one approaches.
  ASSERT_TRUE(store_->RecordRequest("demo", kStart + kHour + 3000).ok());
  again.Tick(Envs(), kStart + 2 * kHour + 3000);
  again.Drain();
  ASSERT_EQ(Posts().size(), 2u);
  EXPECT_EQ(Posts()[1].second["expires_at"], Rfc3339(kStart + 3 * kHour + 3000));
  EXPECT_EQ(Posts()[1].second["last_request_at"], Rfc3339(kStart + kHour + 3000));
}

TEST_F(NotifierTest, ExpiredGoesWithTheRecordAsItWas) {
  Notifier notifier(*store_, {}, Fake());
  state::Environment record = Get("demo");
  ASSERT_TRUE(store_->DeleteEnvironment("demo").ok());  // destroyed by its TTL
  notifier.Expired(record);
  notifier.Drain();
  ASSERT_EQ(Posts().size(), 1u);
  EXPECT_EQ(Posts()[0].second["event"], "expired");
  EXPECT_EQ(Posts()[0].second["owner"], "brian");
  EXPECT_EQ(Posts()[0].second["url"], "http://demo.localhost:8080");
  EXPECT_EQ(Events("demo"),
            (std::vector<std::string>{
                "notified: expired notice sent to https://hooks.example.com/adhoc"}));
}

TEST_F(NotifierTest, NothingWithoutNotifyOrWithoutTtl) {
  Record("quiet", "");                                             // no [notify]
  Record("kept", "[notify]\nurl = \"http://127.0.0.1:9/\"\n", 0);  // ttl = "never"
  Record("forever", "[notify]\nurl = \"http://127.0.0.1:9/\"\n", std::nullopt);
  ASSERT_TRUE(store_->DeleteEnvironment("demo").ok());
  Notifier notifier(*store_, {}, Fake());
  for (state::Millis t : {kStart, kStart + kHour, kStart + 100 * kHour}) notifier.Tick(Envs(), t);
  notifier.Expired(Get("quiet"));
  notifier.Drain();
  EXPECT_TRUE(Posts().empty());
  EXPECT_TRUE(store_->ListExpiryWarnings()->empty());
}

TEST_F(NotifierTest, AFailedDeliveryIsAnEventAndNotTriedForever) {
  answer_ = Failed("POST https://hooks.example.com/adhoc: answered 500 (3 attempts)");
  Notifier notifier(*store_, {}, Fake());
  notifier.Tick(Envs(), kStart + kHour);
  notifier.Tick(Envs(), kStart + kHour + 1000);
  notifier.Drain();
  EXPECT_EQ(Posts().size(), 1u) << "the warning was remembered before it went";
  EXPECT_EQ(Events("demo"), (std::vector<std::string>{
                                "notify-failed: expiring notice: POST "
                                "https://hooks.example.com/adhoc: answered 500 (3 attempts)"}));
}

TEST_F(NotifierTest, DeliversThroughTheRealClient) {
  testing::WebhookReceiver receiver;
  Record("live", "[notify]\nurl = \"" + receiver.Url() + "\"\n");
  WebhookOptions quick;
  quick.deadline = std::chrono::milliseconds(500);
  quick.backoff = std::chrono::milliseconds(10);
  {
    Notifier notifier(*store_, quick);
    notifier.Expired(Get("live"));
  }  // the destructor delivers what is queued
  ASSERT_EQ(receiver.Requests().size(), 1u);
  EXPECT_EQ(json::parse(receiver.Requests()[0].body)["event"], "expired");
  receiver.AnswerWith(503);
  {
    Notifier notifier(*store_, quick);
    notifier.Expired(Get("live"));
    notifier.Drain();
  }
  EXPECT_EQ(receiver.Requests().size(), 4u) << "3 attempts";
  auto events = Events("live");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1], "notify-failed: expired notice: POST " + receiver.Url() +
                           ": answered 503 Service Unavailable (3 attempts)");
}

}  // namespace
}  // namespace adhoc::server
