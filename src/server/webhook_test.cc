#include "server/webhook.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <nlohmann/json.hpp>

#include "common/test_support.h"
#include "router/certificates.h"
#include "server/test_webhook_receiver.h"

namespace adhoc::server {
namespace {

using testing::WebhookReceiver;

// Fast retries and a short deadline: the tests wait for nothing longer than they must.
WebhookOptions Quick() {
  WebhookOptions o;
  o.deadline = std::chrono::milliseconds(400);
  o.backoff = std::chrono::milliseconds(10);
  return o;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(WebhookTest, PostsTheJsonBodyWithItsHeaders) {
  WebhookReceiver receiver;
  const std::string body = R"({"event":"expiring","env":"demo"})";
  Status s = PostJson(receiver.Url("/hooks/adhoc?team=qa"), body, Quick());
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/adhoc?team=qa");
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("user-agent"), "adhoc");
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_EQ(r.headers.at("content-length"), std::to_string(body.size()));
}

TEST(WebhookTest, AnyTwoHundredIsSuccess) {
  WebhookReceiver receiver;
  receiver.AnswerWith(204);
  EXPECT_TRUE(PostJson(receiver.Url(), "{}", Quick()).ok());
  receiver.AnswerWith(302);
  Status redirect = PostJson(receiver.Url(), "{}", Quick());
  ASSERT_FALSE(redirect.ok()) << "a redirect is not followed: the notice did not arrive";
}

TEST(WebhookTest, AServerErrorIsRetriedThenReportedFailed) {
  WebhookReceiver receiver;
  receiver.AnswerWith(500);
  Status s = PostJson(receiver.Url(), "{}", Quick());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kFailed);
  EXPECT_EQ(s.error().message(),
            "POST " + receiver.Url() + ": answered 500 Internal Server Error (3 attempts)");
  EXPECT_EQ(receiver.Requests().size(), 3u);
}

TEST(WebhookTest, ARefusalIsNotAskedAgain) {
  WebhookReceiver receiver;
  receiver.AnswerWith(404);
  Status s = PostJson(receiver.Url(), "{}", Quick());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error().message(), "answered 404 Not Found (1 attempt)"))
      << s.error().message();
  EXPECT_EQ(receiver.Requests().size(), 1u);
  receiver.AnswerWith(429);  // too many requests: later may do
  EXPECT_FALSE(PostJson(receiver.Url(), "{}", Quick()).ok());
  EXPECT_EQ(receiver.Requests().size(), 4u);
}

TEST(WebhookTest, AServerThatNeverAnswersHitsTheDeadline) {
  WebhookReceiver receiver;
  receiver.SetMode(WebhookReceiver::Mode::kSilent);
  WebhookOptions o = Quick();
  o.attempts = 2;
  auto t0 = std::chrono::steady_clock::now();
  Status s = PostJson(receiver.Url(), "{}", o);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "POST " + receiver.Url() + ": no answer from 127.0.0.1:" +
                                     std::to_string(receiver.port()) +
                                     " within 400ms (2 attempts)");
  EXPECT_GE(elapsed, std::chrono::milliseconds(800));
  EXPECT_LT(elapsed, std::chrono::seconds(3)) << "each attempt is bounded";
  EXPECT_EQ(receiver.Requests().size(), 2u) << "the request was sent; the answer never came";
}

TEST(WebhookTest, AGarbageAnswerIsAnErrorNotACrash) {
  WebhookReceiver receiver;
  receiver.SetMode(WebhookReceiver::Mode::kGarbage);
  WebhookOptions o = Quick();
  o.attempts = 1;
  Status s = PostJson(receiver.Url(), "{}", o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error().message(), "reading the answer: ")) << s.error().message();
}

TEST(WebhookTest, NobodyListeningAndBadUrlsAreErrors) {
  int port;
  {
    WebhookReceiver gone;
    port = gone.port();
  }
  WebhookOptions o = Quick();
  o.attempts = 2;
  Status s = PostJson("http://127.0.0.1:" + std::to_string(port) + "/", "{}", o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error().message(), "connecting to 127.0.0.1:" + std::to_string(port)))
      << s.error().message();
  EXPECT_TRUE(Contains(s.error().message(), "(2 attempts)")) << s.error().message();
  Status bad = PostJson("ftp://127.0.0.1/", "{}", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kBadInput);
}

TEST(WebhookTest, AStopEndsTheRetries) {
  WebhookReceiver receiver;
  receiver.AnswerWith(503);
  std::atomic<bool> stop{true};
  WebhookOptions o = Quick();
  o.backoff = std::chrono::seconds(10);
  o.stop = &stop;
  auto t0 = std::chrono::steady_clock::now();
  Status s = PostJson(receiver.Url(), "{}", o);
  ASSERT_FALSE(s.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(receiver.Requests().size(), 1u);
}

// An HTTPS receiver whose certificate (for "localhost") comes from a CA the test makes.
class WebhookTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto files = router::EnsureCertificates("localhost", dir_.path() / "tls");
    ASSERT_TRUE(files.ok()) << files.error().message();
    files_ = *files;
    ctx_ = SSL_CTX_new(TLS_server_method());
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, files_.cert.c_str()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, files_.key.c_str(), SSL_FILETYPE_PEM), 1);
    receiver_ = std::make_unique<WebhookReceiver>(ctx_);
  }
  void TearDown() override {
    receiver_.reset();
    SSL_CTX_free(ctx_);
  }

  testutil::TempDir dir_;
  router::CertificateFiles files_;
  SSL_CTX* ctx_ = nullptr;
  std::unique_ptr<WebhookReceiver> receiver_;
};

TEST_F(WebhookTlsTest, PostsOverTlsToACertificateItsCaVouchesFor) {
  WebhookOptions o = Quick();
  o.ca_file = files_.ca_cert;
  Status s = PostJson(receiver_->Url("/hook", "localhost"), R"({"event":"expired"})", o);
  ASSERT_TRUE(s.ok()) << s.error().message();
  auto requests = receiver_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].body, R"({"event":"expired"})");
  EXPECT_EQ(requests[0].headers.at("host"), "localhost:" + std::to_string(receiver_->port()));
}

TEST_F(WebhookTlsTest, RefusesAnUnknownCaAndAnotherHostName) {
  WebhookOptions o = Quick();
  o.attempts = 1;
  // The system's CAs alone do not know the test's CA.
  Status unknown = PostJson(receiver_->Url("/hook", "localhost"), "{}", o);
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(Contains(unknown.error().message(), "TLS handshake with localhost:"))
      << unknown.error().message();
  EXPECT_TRUE(Contains(unknown.error().message(), "certificate verify failed"))
      << unknown.error().message();
  // The right CA, but the certificate names localhost, not 127.0.0.1.
  o.ca_file = files_.ca_cert;
  Status other = PostJson(receiver_->Url("/hook", "127.0.0.1"), "{}", o);
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(Contains(other.error().message(), "certificate verify failed"))
      << other.error().message();
  EXPECT_TRUE(receiver_->Requests().empty()) << "nothing was sent to an unverified server";
  // A CA file that cannot be read is said so.
  o.ca_file = dir_.path() / "nosuch.crt";
  Status missing = PostJson(receiver_->Url("/hook", "localhost"), "{}", o);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.error().message(), "nosuch.crt")) << missing.error().message();
}

}  // namespace
}  // namespace adhoc::server
