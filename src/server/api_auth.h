// Who may use the control plane's API over TCP (docs/api.md "Over TCP"): the router serves it at
// adhoc.<domain>, with the dashboard. The Unix socket is guarded by its file mode; TCP by a token
// kept in <home>/api-token (0600). A request over TCP must bring one of:
//   - `Authorization: Bearer <token>` (scripts and CI: ADHOC_TOKEN), any method;
//   - the session cookie `adhoc_api=<token>` (the dashboard in a browser): GET and HEAD alone;
//     other methods also need the header `X-Adhoc-Dashboard: 1`, which a page of another site
//     cannot send without a CORS preflight this server never grants, so a cookie the browser
//     adds on its own never changes anything;
//   - the link `?adhoc_token=<token>` on a GET (for people who do not use a terminal): answered
//     with a redirect to the same URL without it, setting the cookie (HttpOnly, SameSite=Strict).
// Tokens are compared in constant time. Pure functions but LoadOrCreateApiToken; thread-safe.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adhoc::server {

inline constexpr std::string_view kApiCookie = "adhoc_api";
inline constexpr std::string_view kApiTokenParam = "adhoc_token";
inline constexpr std::string_view kDashboardHeader = "X-Adhoc-Dashboard";

// The home's API token: read from <home>/api-token, or made (32 random bytes as hex) and written
// there with mode 0600 when the file is absent. A file others can read is refused: its token
// may have leaked and must be replaced (remove the file).
Result<std::string> LoadOrCreateApiToken(const std::filesystem::path& home);

// What a request over TCP brings.
struct ApiCredentials {
  std::string_view method;         // "GET"
  std::string_view authorization;  // the Authorization header's value, or empty
  std::string_view cookie;         // the Cookie header's value, or empty
  bool has_token_param = false;    // ?adhoc_token= was in the query
  std::string_view token_param;    // its decoded value
  bool dashboard_header = false;   // X-Adhoc-Dashboard: 1
};

enum class ApiAuth {
  kAllowed,
  kTokenLink,     // the valid link: redirect without it and set the cookie
  kUnauthorized,  // 401: no valid token
  kForbidden,     // 403: a valid cookie on a change without the dashboard header
};

struct ApiAuthDecision {
  ApiAuth verdict = ApiAuth::kUnauthorized;
  const char* why = "";  // for the 401/403 body
};

ApiAuthDecision CheckApiAuth(const ApiCredentials& request, std::string_view token);

// The Set-Cookie value that a token link answers with (Secure when served over HTTPS).
std::string ApiSessionCookie(std::string_view token, bool secure);

// A query string without the token parameter (and without '&' left dangling).
std::string QueryWithoutApiToken(std::string_view query);

}  // namespace adhoc::server
