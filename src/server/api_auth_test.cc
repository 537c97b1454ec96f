#include "server/api_auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/paths.h"
#include "common/test_support.h"

namespace adhoc::server {
namespace {

constexpr std::string_view kToken = "0123456789abcdef0123456789abcdef0123456789abcdef";

ApiAuth Verdict(ApiCredentials c) { return CheckApiAuth(c, kToken).verdict; }

TEST(ApiAuthTest, ABearerTokenAllowsEveryMethodAndAWrongOneDoesNot) {
  std::string bearer = "Bearer " + std::string(kToken);
  EXPECT_EQ(Verdict({.method = "GET", .authorization = bearer}), ApiAuth::kAllowed);
  EXPECT_EQ(Verdict({.method = "POST", .authorization = bearer}), ApiAuth::kAllowed);
  std::string lower = "bearer  " + std::string(kToken) + " ";
  EXPECT_EQ(Verdict({.method = "DELETE", .authorization = lower}), ApiAuth::kAllowed);
  std::string wrong = "Bearer " + std::string(kToken.substr(1)) + "0";
  EXPECT_EQ(Verdict({.method = "GET", .authorization = wrong}), ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET", .authorization = "Bearer "}), ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET", .authorization = "Basic " + std::string(kToken)}),
            ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET", .authorization = std::string(kToken)}),
            ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET"}), ApiAuth::kUnauthorized);
}

TEST(ApiAuthTest, AnEmptyTokenNeverMatches) {
  ApiCredentials c{.method = "GET", .authorization = "Bearer ", .cookie = "adhoc_api="};
  EXPECT_EQ(CheckApiAuth(c, "").verdict, ApiAuth::kUnauthorized);
}

TEST(ApiAuthTest, TheCookieReadsButChangesOnlyWithTheDashboardHeader) {
  std::string cookie = "theme=dark; adhoc_api=" + std::string(kToken) + "; x=1";
  EXPECT_EQ(Verdict({.method = "GET", .cookie = cookie}), ApiAuth::kAllowed);
  EXPECT_EQ(Verdict({.method = "HEAD", .cookie = cookie}), ApiAuth::kAllowed);
  EXPECT_EQ(Verdict({.method = "POST", .cookie = cookie}), ApiAuth::kForbidden);
  EXPECT_EQ(Verdict({.method = "POST", .cookie = cookie, .dashboard_header = true}),
            ApiAuth::kAllowed);
  EXPECT_EQ(Verdict({.method = "GET", .cookie = "adhoc_api=nope"}), ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET", .cookie = "adhoc_access=" + std::string(kToken)}),
            ApiAuth::kUnauthorized);
  // A second cookie of the name with the right value still counts.
  EXPECT_EQ(Verdict({.method = "GET", .cookie = "adhoc_api=x; adhoc_api=" + std::string(kToken)}),
            ApiAuth::kAllowed);
}

TEST(ApiAuthTest, TheLinkSetsTheCookieOnGetsOnly) {
  EXPECT_EQ(Verdict({.method = "GET", .has_token_param = true, .token_param = kToken}),
            ApiAuth::kTokenLink);
  EXPECT_EQ(Verdict({.method = "POST", .has_token_param = true, .token_param = kToken}),
            ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET", .has_token_param = true, .token_param = "guess"}),
            ApiAuth::kUnauthorized);
  EXPECT_EQ(Verdict({.method = "GET", .has_token_param = true}), ApiAuth::kUnauthorized);
}

TEST(ApiAuthTest, TheSessionCookieIsHttpOnlyAndStrict) {
  std::string c = ApiSessionCookie(kToken, false);
  EXPECT_EQ(c.rfind("adhoc_api=" + std::string(kToken) + ";", 0), 0u);
  EXPECT_NE(c.find("HttpOnly"), std::string::npos);
  EXPECT_NE(c.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(c.find("Secure"), std::string::npos);
  EXPECT_NE(ApiSessionCookie(kToken, true).find("; Secure"), std::string::npos);
}

TEST(ApiAuthTest, TheLinkParameterIsTakenOutOfTheQuery) {
  EXPECT_EQ(QueryWithoutApiToken("adhoc_token=t"), "");
  EXPECT_EQ(QueryWithoutApiToken("a=1&adhoc_token=t&b=2"), "a=1&b=2");
  EXPECT_EQ(QueryWithoutApiToken("adhoc_token&a=1&"), "a=1");
  EXPECT_EQ(QueryWithoutApiToken("adhoc_tokenx=1"), "adhoc_tokenx=1");
}

TEST(ApiAuthTest, TheTokenFileIsMadeOnceWithMode0600) {
  testutil::TempDir home;
  auto first = LoadOrCreateApiToken(home.path());
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->size(), 64u);
  struct stat st {};
  ASSERT_EQ(stat(paths::ApiToken(home.path()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = LoadOrCreateApiToken(home.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
}

TEST(ApiAuthTest, ATokenFileOthersCanReadIsRefused) {
  testutil::TempDir home;
  ASSERT_TRUE(LoadOrCreateApiToken(home.path()).ok());
  chmod(paths::ApiToken(home.path()).c_str(), 0644);
  auto token = LoadOrCreateApiToken(home.path());
  ASSERT_FALSE(token.ok());
  EXPECT_NE(token.error().message().find("api-token"), std::string::npos);
}

}  // namespace
}  // namespace adhoc::server
