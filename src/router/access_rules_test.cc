#include "router/access_rules.h"

#include <gtest/gtest.h>

namespace adhoc::router {
namespace {

IpAddress Ip(const char* text) { return *ParseIpAddress(text); }

TEST(Cidr, ParsesAndContains) {
  auto net = ParseCidr("10.8.0.0/16");
  ASSERT_TRUE(net.ok());
  EXPECT_TRUE(net->Contains(Ip("10.8.3.4")));
  EXPECT_FALSE(net->Contains(Ip("10.9.0.1")));
  EXPECT_TRUE(net->Contains(Ip("::ffff:10.8.0.1")));  // an IPv4-mapped client
  auto one = ParseCidr("192.168.1.7");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->Contains(Ip("192.168.1.7")));
  EXPECT_FALSE(one->Contains(Ip("192.168.1.8")));
  auto odd = ParseCidr("172.16.5.9/12");  // host bits ignored
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(odd->Contains(Ip("172.32.0.0")));
  auto v6 = ParseCidr("fd00::/8");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains(Ip("fd12::1")));
  EXPECT_FALSE(v6->Contains(Ip("fe80::1")));
  EXPECT_FALSE(v6->Contains(Ip("10.0.0.1")));
  auto all = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains(Ip("8.8.8.8")));
  EXPECT_FALSE(all->Contains(Ip("::1")));  // IPv4's "everything" is not IPv6's
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0/8", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                          "host.example", "10.0.0.0/8/8"}) {
    auto r = ParseCidr(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok())
      EXPECT_NE(r.error().message().find(std::string("'") + bad + "'"), std::string::npos);
  }
}

TEST(Base64, EncodesAsClientsDo) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("qa:s3cret"), "cWE6czNjcmV0");
}

struct Request {
  std::string head;
  RequestHead req;
  explicit Request(const std::string& target, const std::string& headers = "") {
    head = "GET " + target + " HTTP/1.1\r\nHost: demo.localhost\r\n" + headers + "\r\n";
    auto err = ParseRequestHead(head, ParseLimits(), req);
    EXPECT_FALSE(err) << err->reason;
  }
};

AccessRules Rules() {
  AccessRules r;
  r.AddBasicUser("qa", "s3cret");
  r.token = "tok_0123456789abcdef";
  r.public_paths.push_back(*ParsePathPattern("/public/*"));
  return r;
}

const IpAddress kLocal = *ParseIpAddress("127.0.0.1");

TEST(CheckAccess, EachCredentialLetsInAndIsMarkedConsumed) {
  AccessRules rules = Rules();
  EXPECT_EQ(CheckAccess(rules, Request("/admin").req, kLocal).verdict,
            AccessVerdict::kUnauthorized);

  Request basic("/admin", "Authorization: Basic cWE6czNjcmV0\r\n");
  AccessDecision d = CheckAccess(rules, basic.req, kLocal);
  EXPECT_EQ(d.verdict, AccessVerdict::kAllow);
  ASSERT_NE(d.consumed_authorization, nullptr);
  EXPECT_EQ(d.consumed_authorization->value, "Basic cWE6czNjcmV0");
  Request lower("/admin", "authorization: basic cWE6czNjcmV0\r\n");
  EXPECT_EQ(CheckAccess(rules, lower.req, kLocal).verdict, AccessVerdict::kAllow);
  Request wrong("/admin", "Authorization: Basic cWE6d3Jvbmc=\r\n");
  EXPECT_EQ(CheckAccess(rules, wrong.req, kLocal).verdict, AccessVerdict::kUnauthorized);

  Request cookie("/admin", "Cookie: a=1; adhoc_access=tok_0123456789abcdef; b=2\r\n");
  d = CheckAccess(rules, cookie.req, kLocal);
  EXPECT_EQ(d.verdict, AccessVerdict::kAllow);
  EXPECT_TRUE(d.strip_cookie);
  EXPECT_EQ(d.consumed_authorization, nullptr);
  Request bad_cookie("/admin", "Cookie: adhoc_access=tok_0123456789abcdeX\r\n");
  d = CheckAccess(rules, bad_cookie.req, kLocal);
  EXPECT_EQ(d.verdict, AccessVerdict::kUnauthorized);

  Request link("/admin?x=1&adhoc_token=tok_0123456789abcdef", "");
  EXPECT_EQ(CheckAccess(rules, link.req, kLocal).verdict, AccessVerdict::kTokenLink);
  Request bad_link("/admin?adhoc_token=nope", "");
  EXPECT_EQ(CheckAccess(rules, bad_link.req, kLocal).verdict, AccessVerdict::kUnauthorized);
}

TEST(CheckAccess, TheApplicationsOwnAuthorizationPassesWithTheCookie) {
  AccessRules rules = Rules();
  Request r("/api/items",
            "Authorization: Token abc\r\nCookie: adhoc_access=tok_0123456789abcdef\r\n");
  AccessDecision d = CheckAccess(rules, r.req, kLocal);
  EXPECT_EQ(d.verdict, AccessVerdict::kAllow);
  EXPECT_EQ(d.consumed_authorization, nullptr);  // DRF's token is forwarded
}

TEST(CheckAccess, PublicPathsAreMatchedNormalized) {
  AccessRules rules = Rules();
  EXPECT_EQ(CheckAccess(rules, Request("/public/x").req, kLocal).verdict, AccessVerdict::kAllow);
  EXPECT_EQ(CheckAccess(rules, Request("/public").req, kLocal).verdict, AccessVerdict::kAllow);
  for (const char* sneaky : {"/public/../admin", "/public/%2e%2e/admin", "/%70ublic/../admin",
                             "/publicx", "/./admin", "//admin"}) {
    EXPECT_EQ(CheckAccess(rules, Request(sneaky).req, kLocal).verdict, AccessVerdict::kUnauthorized)
        << sneaky;
  }
  EXPECT_EQ(CheckAccess(rules, Request("/%70ublic/x").req, kLocal).verdict,
            AccessVerdict::kAllow);  // the same path as /public/x, for routing and rules
}

TEST(CheckAccess, AllowListComesFirstOnEveryPath) {
  AccessRules rules = Rules();
  rules.allow.push_back(*ParseCidr("10.0.0.0/8"));
  Request with_credentials("/public/x", "Authorization: Basic cWE6czNjcmV0\r\n");
  EXPECT_EQ(CheckAccess(rules, with_credentials.req, kLocal).verdict, AccessVerdict::kForbidden);
  EXPECT_EQ(CheckAccess(rules, with_credentials.req, Ip("10.1.2.3")).verdict,
            AccessVerdict::kAllow);
  AccessRules only_network;
  only_network.allow.push_back(*ParseCidr("127.0.0.0/8"));
  EXPECT_FALSE(only_network.needs_credentials());
  EXPECT_EQ(CheckAccess(only_network, Request("/x").req, kLocal).verdict, AccessVerdict::kAllow);
  EXPECT_EQ(CheckAccess(only_network, Request("/x").req, Ip("10.0.0.1")).verdict,
            AccessVerdict::kForbidden);
}

TEST(AccessRules, ConsumedCredentialsAreRemovedFromWhatIsForwarded) {
  EXPECT_EQ(WithoutAccessCookie("a=1; adhoc_access=tok; b=2"), "a=1; b=2");
  EXPECT_EQ(WithoutAccessCookie("adhoc_access=tok"), "");
  EXPECT_EQ(WithoutAccessCookie("adhoc_access=tok;csrftoken=x"), "csrftoken=x");
  EXPECT_EQ(WithoutAccessCookie("adhoc_accessx=1"), "adhoc_accessx=1");
  EXPECT_EQ(WithoutTokenParam("adhoc_token=t"), "");
  EXPECT_EQ(WithoutTokenParam("a=1&adhoc_token=t&b=2"), "a=1&b=2");
  EXPECT_EQ(WithoutTokenParam("x_adhoc_token=t"), "x_adhoc_token=t");
}

TEST(AccessRules, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace adhoc::router
