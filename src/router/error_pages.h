// The router's own answers (unknown host, environment not running, upstream errors,
// malformed requests): a short page that names the environment (or host) and why.
// HTML by default, JSON when the request's Accept prefers application/json.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace adhoc::router {

struct ErrorPage {
  std::string content_type;
  std::string body;
};

// "OK", "Not Found", ... for a status code ("Unknown" for others).
const char* StatusText(int status);

// Whether an Accept header value prefers application/json over text/html (by q-value;
// ties go to whichever is listed first). Empty Accept -> HTML.
bool PrefersJson(std::string_view accept);

// `env` may be empty (unknown host); `detail` is one sentence saying why.
ErrorPage MakeErrorPage(int status, std::string_view env, std::string_view host,
                        std::string_view detail, bool json);

}  // namespace adhoc::router
