// HTTPS through the router the control plane starts: ADHOC_ROUTER_HTTPS turns the listener on,
// adhoc makes a CA and a *.localhost certificate in the home, and curl (which resolves
// *.localhost itself) verifies it against that CA only.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/exec.h"
#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
  }

  // curl's status code for `url`, verified against `ca` only ("000" when TLS fails).
  static std::string Curl(const std::string& url, const fs::path& ca) {
    auto r = Exec({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                   "--cacert", ca.string(), url});
    return r.ok() ? r->output : "error: " + r.error().message();
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(HttpsTest, TheCertificateAdhocMakesIsVerifiedAgainstItsCaAndHttpRedirects) {
  if (!Exec({"curl", "--version"}).ok()) GTEST_SKIP() << "curl is not installed";
  const int https_port = FreePort();
  CommandResult up = box_.Adhoc({"up", "alpha"}, 300,
                                {{"ADHOC_ROUTER_HTTPS", "127.0.0.1:" + std::to_string(https_port)},
                                 {"ADHOC_ROUTER_REDIRECT_HTTP", "1"}});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  fs::path ca = box_.home() / "router/tls/ca.crt";
  ASSERT_TRUE(fs::exists(ca)) << "no CA was written to the home";
  EXPECT_EQ(Curl("https://alpha.localhost:" + std::to_string(https_port) + "/api/health", ca),
            "200");
  // Plain HTTP is sent to HTTPS.
  HttpAnswer plain = box_.Http("alpha", "GET", "/api/health");
  EXPECT_TRUE(plain.status == 301 || plain.status == 308) << plain.status;
  // Another CA does not verify it: the 200 above was a real verification.
  fs::path other = box_.home().parent_path() / "other-ca.crt";
  ASSERT_TRUE(
      Exec({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", (box_.home().parent_path() / "other.key").string(), "-out",
            other.string(), "-days", "1", "-subj", "/CN=other"})
          .ok());
  EXPECT_EQ(Curl("https://alpha.localhost:" + std::to_string(https_port) + "/api/health", other),
            "000");
}

TEST_F(HttpsTest, HalfACertificatePairIsABadSetting) {
  CommandResult up = box_.Adhoc({"up", "alpha"}, 120,
                                {{"ADHOC_ROUTER_HTTPS", "127.0.0.1:" + std::to_string(FreePort())},
                                 {"ADHOC_ROUTER_TLS_CERT", "/nonexistent/cert.pem"}});
  EXPECT_NE(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("ADHOC_ROUTER_TLS_KEY"), std::string::npos) << up.output;
}

}  // namespace
}  // namespace adhoc::e2e
