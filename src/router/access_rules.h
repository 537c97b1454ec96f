// Per-environment access rules (issue 14, "guarded environments"; docs/router.md "Access
// rules"): who may reach an environment through the router.
//
//   - an allow list of networks (CIDR): other client addresses get 403, on every path;
//   - credentials, when basic-auth users or a token are set: a request must bring one of
//       * `Authorization: Basic ...` of a listed user,
//       * the access cookie (`adhoc_access=<token>`), which the token link sets,
//       * the token link itself: `?adhoc_token=<token>` on any URL, answered with a redirect
//         to the same URL without it, setting the cookie (for people who do not use a
//         terminal);
//     else 401 (with `WWW-Authenticate: Basic` when users are set). Paths listed as public
//     need no credentials (the allow list still applies).
// Credentials the router consumed are never forwarded: the matching Authorization header and
// the access cookie are removed (an application's own Authorization, such as a DRF token,
// passes untouched), and the token link never reaches the upstream.
//
// Paths are matched in their normalized form (request_path.h), the same one routing uses.
// Secrets are compared in constant time. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "router/http_parser.h"
#include "router/path_pattern.h"

namespace adhoc::router {

inline constexpr std::string_view kAccessCookie = "adhoc_access";
inline constexpr std::string_view kTokenParam = "adhoc_token";

// An IPv4 or IPv6 address; IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const IpAddress&) const = default;
};

// "10.1.2.3", "::1", "::ffff:10.1.2.3" -> an address; nullopt otherwise.
std::optional<IpAddress> ParseIpAddress(std::string_view text);
IpAddress IpFromV4(const std::array<uint8_t, 4>& v4);
IpAddress IpFromV6(const std::array<uint8_t, 16>& v6);

struct Cidr {
  IpAddress network;  // host bits cleared
  int prefix = 128;   // over the 128-bit (mapped) form
  bool Contains(const IpAddress& address) const;
};

// "10.0.0.0/8", "fd00::/8", or one address ("10.1.2.3" = /32, "::1" = /128). Host bits
// below the prefix are ignored. BadInput naming the value otherwise.
Result<Cidr> ParseCidr(std::string_view text);

struct AccessRules {
  std::vector<Cidr> allow;                     // empty: any address
  std::vector<std::string> basic_credentials;  // base64("user:password"), as clients send it
  std::string realm;                           // for WWW-Authenticate
  std::string token;                           // empty: no token link or cookie
  int64_t cookie_max_age_s = 7 * 24 * 3600;
  std::vector<PathPattern> public_paths;  // need no credentials

  bool needs_credentials() const { return !basic_credentials.empty() || !token.empty(); }
  // Whether these rules let everyone through (then an environment keeps none).
  bool empty() const { return allow.empty() && !needs_credentials(); }
  void AddBasicUser(std::string_view user, std::string_view password);
};

enum class AccessVerdict {
  kAllow,
  kForbidden,     // 403: the client's address is not in the allow list
  kUnauthorized,  // 401: no valid credentials
  kTokenLink,     // the valid token link: redirect without it, set the cookie
};

struct AccessDecision {
  AccessVerdict verdict = AccessVerdict::kAllow;
  const Header* consumed_authorization = nullptr;  // not to be forwarded
  bool strip_cookie = false;  // a Cookie header holds the access cookie: forward it without
  const char* why = "";       // for the 401/403 page
};

AccessDecision CheckAccess(const AccessRules& rules, const RequestHead& request,
                           const IpAddress& client);

// A Cookie header value without the access cookie; empty when nothing else is left.
std::string WithoutAccessCookie(std::string_view cookie_header);
// A query string without the token parameter (and without '&' left dangling).
std::string WithoutTokenParam(std::string_view query);

std::string Base64Encode(std::string_view data);
// Compares in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace adhoc::router
