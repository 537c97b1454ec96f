// The router's HTTPS listener, end to end: a real Router, real upstreams, TLS clients
// (OpenSSL, and curl as a user would run it).
#include "router/tls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/exec.h"
#include "router/router.h"
#include "router/test_support.h"

namespace adhoc::router {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TlsClient;
using testing::Upstream;

json Env(const std::string& name, const std::string& host, const Upstream& up) {
  return {{"name", name},
          {"hosts", {host}},
          {"routes",
           {{{"pattern", "/*"},
             {"service", "web"},
             {"targets", {{{"id", name + "-1"}, {"address", up.address()}}}}}}}};
}

class TlsTest : public ::testing::Test {
 protected:
  void Start(TlsOptions tls) {
    RouterOptions options;
    options.home = home_.path();
    options.feed_socket = false;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    tls.listen = "127.0.0.1:0";
    options.tls = tls;
    router_ = std::make_unique<Router>(options);
    Status s = router_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message();
  }
  void Generated(const std::string& domain) {
    TlsOptions tls;
    tls.domain = domain;
    tls.dir = home_.path() / "tls";
    Start(tls);
  }
  void Feed(const std::vector<json>& envs) {
    json message = {{"op", "replace_all"}, {"envs", json(envs)}};
    json answer = json::parse(router_->HandleFeedMessage(message.dump()));
    ASSERT_EQ(answer["ok"], true) << answer.dump();
  }
  std::string Ca() const { return (home_.path() / "tls" / "ca.crt").string(); }

  testing::TempDir home_;
  std::unique_ptr<Router> router_;
};

TEST_F(TlsTest, GeneratedCertificateIsVerifiedByCurlAgainstTheCa) {
  Upstream up;
  Generated("localhost");
  Feed({Env("demo", "demo.localhost", up)});
  std::string port = std::to_string(router_->tls_port());
  auto curl = Exec({"curl", "-sS", "--max-time", "10", "--cacert", Ca(), "--resolve",
                    "demo.localhost:" + port + ":127.0.0.1",
                    "https://demo.localhost:" + port + "/headers"});
  ASSERT_TRUE(curl.ok()) << curl.error().message();
  EXPECT_EQ(curl->exit_code, 0) << curl->output;
  EXPECT_NE(curl->output.find("X-Forwarded-Proto: https\r\n"), std::string::npos) << curl->output;
  EXPECT_NE(curl->output.find("Host: demo.localhost:" + port), std::string::npos);
  // Without the CA, curl refuses it: the check above is real.
  auto untrusted =
      Exec({"curl", "-sS", "--max-time", "10", "--resolve", "demo.localhost:" + port + ":127.0.0.1",
            "https://demo.localhost:" + port + "/"});
  ASSERT_TRUE(untrusted.ok());
  EXPECT_NE(untrusted->exit_code, 0);
}

TEST_F(TlsTest, SniGetsEachHostACertificateAndAlpnIsHttp11Only) {
  Upstream up;
  Generated("localhost");
  Feed({Env("a", "a.localhost", up), Env("b", "b.localhost", up)});
  TlsClient a(router_->tls_port(), "a.localhost", Ca());
  ASSERT_TRUE(a.ok()) << a.error();
  TlsClient b(router_->tls_port(), "b.localhost", Ca());
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_NE(a.peer_fingerprint(), b.peer_fingerprint());  // one per name
  EXPECT_EQ(a.alpn(), "http/1.1");
  EXPECT_EQ(a.Get("a.localhost", "/")->body, "hello from up");
  // A client that verifies b's name against a's certificate fails.
  TlsClient mismatch(router_->tls_port(), "a.localhost", "", "http/1.1");
  ASSERT_TRUE(mismatch.ok());
  EXPECT_EQ(mismatch.peer_fingerprint(), a.peer_fingerprint());
  // HTTP/2 only: no common protocol, refused (RFC 7301).
  TlsClient h2(router_->tls_port(), "a.localhost", Ca(), "h2");
  EXPECT_FALSE(h2.ok());
  // No ALPN at all is fine (HTTP/1.1 is the default).
  TlsClient none(router_->tls_port(), "a.localhost", Ca(), "");
  ASSERT_TRUE(none.ok()) << none.error();
  EXPECT_EQ(none.Get("a.localhost", "/")->status(), 200);
}

TEST_F(TlsTest, TheUsersWildcardCertificateByPath) {
  Upstream up;
  auto files = EnsureCertificates("preview.test", home_.path() / "mine");
  ASSERT_TRUE(files.ok());
  TlsOptions tls;
  tls.cert_file = files->cert;
  tls.key_file = files->key;
  Start(tls);
  Feed({Env("demo", "demo.preview.test", up)});
  TlsClient c(router_->tls_port(), "demo.preview.test", files->ca_cert.string());
  ASSERT_TRUE(c.ok()) << c.error();
  // Bodies both ways, larger than a TLS record and than the socket buffers.
  std::string body(3 * 1024 * 1024 + 5, 'q');
  for (size_t i = 0; i < body.size(); i += 977) body[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: demo.preview.test\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  EXPECT_TRUE(r->body == body);
  EXPECT_EQ(c.Get("demo.preview.test", "/chunked")->body, "part-0part-1part-2part-3part-4");
}

TEST_F(TlsTest, ReloadKeepsOpenConnectionsAndServesTheNewCertificate) {
  Upstream up;
  auto first = EnsureCertificates("preview.test", home_.path() / "one");
  auto second = EnsureCertificates("preview.test", home_.path() / "two");
  ASSERT_TRUE(first.ok() && second.ok());
  fs::path cert = home_.path() / "live.crt", key = home_.path() / "live.key";
  fs::copy_file(first->cert, cert);
  fs::copy_file(first->key, key);
  TlsOptions tls;
  tls.cert_file = cert;
  tls.key_file = key;
  Start(tls);
  Feed({Env("demo", "demo.preview.test", up)});
  TlsClient open(router_->tls_port(), "demo.preview.test", first->ca_cert.string());
  ASSERT_TRUE(open.ok()) << open.error();
  ASSERT_EQ(open.Get("demo.preview.test", "/")->status(), 200);
  std::string old_print = open.peer_fingerprint();
  EXPECT_EQ(router_->TlsFingerprint(), old_print);

  // A broken file is refused and changes nothing.
  std::ofstream(cert, std::ios::trunc) << "garbage";
  EXPECT_FALSE(router_->ReloadTls().ok());
  EXPECT_EQ(router_->TlsFingerprint(), old_print);

  fs::copy_file(second->cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(second->key, key, fs::copy_options::overwrite_existing);
  json answer = json::parse(router_->HandleFeedMessage(R"({"op":"reload_tls"})"));
  ASSERT_EQ(answer["ok"], true) << answer.dump();
  EXPECT_NE(router_->TlsFingerprint(), old_print);
  // The open connection goes on with its session...
  auto still = open.Get("demo.preview.test", "/");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status(), 200);
  // ...and a new one gets the new certificate.
  TlsClient fresh(router_->tls_port(), "demo.preview.test", second->ca_cert.string());
  ASSERT_TRUE(fresh.ok()) << fresh.error();
  EXPECT_EQ(fresh.peer_fingerprint(), router_->TlsFingerprint());
}

TEST_F(TlsTest, PlainRequestsAreRedirectedWhenAsked) {
  Upstream up;
  TlsOptions tls;
  tls.domain = "localhost";
  tls.dir = home_.path() / "tls";
  tls.redirect_http = true;
  Start(tls);
  Feed({Env("demo", "demo.localhost", up)});
  testing::Client plain(router_->port());
  auto r = plain.Get("demo.localhost:8080", "/a/../b?x=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 308);
  EXPECT_EQ(r->header("location"),
            "https://demo.localhost:" + std::to_string(router_->tls_port()) + "/b?x=1");
  EXPECT_EQ(up.requests(), 0);
}

TEST_F(TlsTest, WebSocketOverTls) {
  Upstream up;
  Generated("localhost");
  Feed({Env("demo", "demo.localhost", up)});
  TlsClient c(router_->tls_port(), "demo.localhost", Ca());
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(
      c.Send("GET /ws HTTP/1.1\r\nHost: demo.localhost\r\nConnection: Upgrade\r\n"
             "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
  auto handshake = c.Read(true);
  ASSERT_TRUE(handshake);
  ASSERT_EQ(handshake->status(), 101);
  testing::Reader reader(-1, nullptr, c.ssl());
  for (const std::string& text : std::vector<std::string>{"one", "two", std::string(5000, 'w')}) {
    ASSERT_TRUE(c.Send(testing::WebSocketFrame(1, text, true)));
    auto frame = testing::ReadWebSocketFrame(reader);
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->payload, text);
  }
}

TEST(TlsOptions, NamesTheFlagsThatDoNotGoTogether) {
  TlsOptions both;
  both.listen = "127.0.0.1:8443";
  both.cert_file = "a.crt";
  both.key_file = "a.key";
  both.domain = "localhost";
  both.dir = "/tmp/x";
  EXPECT_FALSE(both.Validate().ok());
  TlsOptions half;
  half.listen = "127.0.0.1:8443";
  half.cert_file = "a.crt";
  Status s = half.Validate();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("--tls-key"), std::string::npos);
  TlsOptions none;
  none.listen = "127.0.0.1:8443";
  EXPECT_FALSE(none.Validate().ok());
  TlsOptions no_listen;
  no_listen.redirect_http = true;
  EXPECT_FALSE(no_listen.Validate().ok());
  TlsOptions missing;
  missing.listen = "127.0.0.1:0";
  missing.cert_file = "/nonexistent.crt";
  missing.key_file = "/nonexistent.key";
  auto ctx = TlsContext::Create(missing);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.error().message().find("/nonexistent.crt"), std::string::npos);
}

}  // namespace
}  // namespace adhoc::router
