// The webhook client: one HTTP(S) POST of a JSON body to a URL the user wrote ([notify] url,
// spec/http_url.h), for the notices of notifications.h. Boost.Beast over TCP, or over TLS
// (Boost.Asio ssl, OpenSSL) with the server's certificate verified against the system's CAs
// (plus `ca_file`), SNI sent and the host name (or IP address) checked.
//
// Headers: Host, `User-Agent: adhoc`, `Content-Type: application/json`, Content-Length,
// `Connection: close`. Only the answer's status line and headers are read; 2xx is success.
//
// Each attempt is bounded by `deadline`, from connecting to the answer's headers (resolving a
// name is bounded by the system's resolver: it cannot be interrupted). A failed attempt is made
// again, `attempts` in all, after `backoff` (doubled each time), when it got no answer, a 5xx, a
// 408 or a 429; any other answer (a 4xx refusal, a redirect, which is not followed) would not
// change.
// `stop` (optional) ends the retries early: a control plane that stops waits for one attempt
// at most. Errors never throw; they say what the last attempt got and how many were made.
//
// Blocking: call it from a thread of its own (notifier.h), never from a loop. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>

#include "common/result.h"
#include "spec/http_url.h"

namespace adhoc::server {

struct WebhookOptions {
  std::chrono::milliseconds deadline{5000};  // per attempt
  int attempts = 3;
  std::chrono::milliseconds backoff{500};  // before the second attempt; doubled after
  // A CA trusted besides the system's (PEM): tests, or a team whose receiver has its own CA.
  std::filesystem::path ca_file;
  const std::atomic<bool>* stop = nullptr;  // when set and true: no further attempt
};

// One attempt: the answer's HTTP status (whatever it is), or why there was none ("connecting
// to 127.0.0.1:9: Connection refused", "no answer within 5s", "TLS handshake: certificate
// verify failed", "reading the answer: bad version").
Result<int> PostOnce(const spec::HttpUrl& url, const std::string& body,
                     const WebhookOptions& options);

// POSTs `body` to `url` as above: ok on a 2xx answer. BadInput for a URL ParseHttpUrl refuses;
// Failed otherwise ("POST http://127.0.0.1:9/hook: answered 500 Internal Server Error (3
// attempts)").
Status PostJson(const std::string& url, const std::string& body,
                const WebhookOptions& options = {});

}  // namespace adhoc::server
