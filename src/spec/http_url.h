// An http:// or https:// URL the user writes (`[notify] url`): parsed once, so the loader
// refuses what the webhook client could not use, with the same rules.
//
// Accepted: `http[s]://HOST[:PORT][/PATH][?QUERY]`. HOST is a DNS name (letters, digits, '-'
// and '.'), an IPv4 address or a bracketed IPv6 address; PORT 1-65535 (default 80 or 443).
// Refused: other schemes, credentials (`user:pass@`), fragments, spaces and control
// characters. The scheme and host are matched case-insensitively and kept lower case.
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace adhoc::spec {

struct HttpUrl {
  bool tls = false;    // https
  std::string host;    // "hooks.example.com", "127.0.0.1", "::1" (without brackets)
  int port = 0;        // explicit or the scheme's default
  std::string target;  // path and query, "/" at least

  // "host:port" for a Host header, brackets around an IPv6 host; the port only when it is
  // not the scheme's default.
  std::string HostHeader() const;
};

// A BadInput saying what is wrong ("'ftp://x': only http:// and https:// URLs are allowed").
Result<HttpUrl> ParseHttpUrl(std::string_view url);

}  // namespace adhoc::spec
