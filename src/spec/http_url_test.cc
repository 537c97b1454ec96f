#include "spec/http_url.h"

#include <gtest/gtest.h>

namespace adhoc::spec {
namespace {

TEST(HttpUrlTest, ReadsSchemeHostPortAndTarget) {
  auto u = ParseHttpUrl("https://Hooks.Example.com/adhoc/ttl?team=qa");
  ASSERT_TRUE(u.ok()) << u.error().message();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/adhoc/ttl?team=qa");
  EXPECT_EQ(u->HostHeader(), "hooks.example.com");

  auto plain = ParseHttpUrl("http://127.0.0.1:8099");
  ASSERT_TRUE(plain.ok()) << plain.error().message();
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->port, 8099);
  EXPECT_EQ(plain->target, "/");
  EXPECT_EQ(plain->HostHeader(), "127.0.0.1:8099");

  auto v6 = ParseHttpUrl("http://[::1]:81?x=1");
  ASSERT_TRUE(v6.ok()) << v6.error().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/?x=1");
  EXPECT_EQ(v6->HostHeader(), "[::1]:81");
}

TEST(HttpUrlTest, RefusesWhatTheClientCannotUseSayingWhy) {
  const std::pair<const char*, const char*> cases[] = {
      {"ftp://example.com/", "only http:// and https://"},
      {"example.com/hook", "only http:// and https://"},
      {"https://", "the host is missing"},
      {"https:///path", "the host is missing"},
      {"https://user:pw@example.com/", "credentials"},
      {"https://example.com:0/", "port must be"},
      {"https://example.com:99999/", "port must be"},
      {"https://example.com:/", "port is empty"},
      {"https://exa mple.com/", "spaces"},
      {"https://example.com/#top", "fragment"},
      {"https://ex_ample.com/", "not a host name"},
      {"http://[::1/", "closing ']'"},
  };
  for (const auto& [url, why] : cases) {
    auto u = ParseHttpUrl(url);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.error().kind(), ErrorKind::kBadInput);
    EXPECT_NE(u.error().message().find(why), std::string::npos)
        << url << ": " << u.error().message();
  }
}

}  // namespace
}  // namespace adhoc::spec
