// Strict HTTP/1.1 message parsing for the router (RFC 9110 / RFC 9112).
//
// The router is the edge: anything ambiguous about where a message ends is a request
// smuggling risk, so the parser rejects instead of guessing. Rejected requests are
// answered with the HttpError's status and the connection is closed; nothing is forwarded.
// Rejected: Content-Length with Transfer-Encoding; duplicate, list-valued or malformed
// Content-Length; any Transfer-Encoding but a single "chunked"; whitespace before a colon;
// obs-fold; bare CR/LF, NUL or other control characters; missing, duplicate or malformed
// Host (HTTP/1.1); bad method token, request-target or version (only HTTP/1.0 and 1.1).
// Valid heads are kept as given: header order and the case of names.
//
// Pure functions and a small state machine; no I/O; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adhoc::router {

struct HttpError {
  int status = 400;    // 400, 413, 414, 431, 501 (requests); 502 (responses)
  std::string reason;  // for logs and error pages: "duplicate Content-Length"
};

struct ParseLimits {
  size_t max_header_bytes = 64 * 1024;             // whole head, request line included: else 431
  size_t max_uri_bytes = 8 * 1024;                 // request-target: else 414
  uint64_t max_body_bytes = 100ull * 1024 * 1024;  // Content-Length or chunked sum: else 413
};

// Views into the head text given to ParseRequestHead/ParseResponseHead (no copies on
// the hot path): valid only while that text is alive and unchanged.
struct Header {
  std::string_view name;   // as sent (case kept)
  std::string_view value;  // surrounding whitespace removed
};

enum class BodyFraming { kNone, kLength, kChunked, kUntilClose };

struct RequestHead {
  std::string method;
  std::string target;         // as sent
  std::string path;           // of origin-form, or the path of absolute-form ("/" if empty),
                              // normalized (request_path.h): routing and access rules use it
  bool path_changed = false;  // normalization changed it: forward `path`, not `target`
  std::string query;          // without '?', empty if none
  bool has_query = false;
  int version_minor = 1;  // HTTP/1.<minor>
  std::vector<Header> headers;
  std::string host;  // Host header, or the authority of an absolute-form target
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // HTTP/1.1 without "close", or 1.0 with "keep-alive"
  bool expect_continue = false;  // "Expect: 100-continue"
  std::vector<std::string> connection_options;  // lower-cased tokens of Connection
  // The Upgrade header's value when the client asks for one ("Connection: upgrade" and an
  // Upgrade header, without a body); empty otherwise. A view into the head.
  std::string_view upgrade;

  // The first value of a header (case-insensitive name), or nullptr.
  const std::string_view* Find(std::string_view name) const;
};

struct ResponseHead {
  int status = 0;
  int version_minor = 1;
  std::string reason;
  std::vector<Header> headers;
  BodyFraming framing = BodyFraming::kUntilClose;
  uint64_t content_length = 0;
  bool keep_alive = true;
  std::vector<std::string> connection_options;
  std::string_view upgrade;  // the Upgrade header of a 101, a view into the head
};

// The offset just past the "\r\n\r\n" ending a head in `buffer`, or npos.
size_t FindHeadEnd(std::string_view buffer);

// Whether the start of a head (not yet complete) already holds a bare CR (a CR followed by
// anything but LF) or a bare LF (not preceded by CR): such a head is refused as soon as it
// is seen, not after the header deadline. `from` is where new bytes begin (earlier bytes
// were checked before); a CR at the very end is not judged until its next byte comes.
bool HasBareCrOrLf(std::string_view partial_head, size_t from = 0);

// Parses a complete request head (ending in "\r\n\r\n"), and normalizes its path (a path
// that cannot be normalized safely is a 400). `out` is reset first, keeping its strings' and
// vectors' capacity (so it can be reused without allocating). On error it is unspecified.
// out.headers point into `head`: keep it alive as long as they are used.
std::optional<HttpError> ParseRequestHead(std::string_view head, const ParseLimits& limits,
                                          RequestHead& out);

// Parses a complete response head from an upstream. `request_method` decides framing
// (HEAD has no body). Errors carry status 502. out.headers point into `head`. `out` is
// reset first, keeping its vectors' capacity (so it can be reused without allocating).
std::optional<HttpError> ParseResponseHead(std::string_view head, std::string_view request_method,
                                           ResponseHead& out);

// Whether a header is hop-by-hop (RFC 9110 7.6.1): Connection, Keep-Alive, TE, Trailer,
// Upgrade, Proxy-*, Transfer-Encoding, or named by the message's Connection options.
bool IsHopByHop(std::string_view name, const std::vector<std::string>& connection_options);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Decodes a chunked body incrementally, validating sizes (hex, no overflow), extensions
// (token[=token|quoted-string]) and the trailer section (header syntax; trailers are
// discarded). Not thread-safe.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(uint64_t max_body_bytes, int error_status = 400)
      : max_body_(max_body_bytes), error_status_(error_status) {}

  struct Step {
    size_t consumed = 0;    // bytes of the input used by this step
    std::string_view data;  // decoded body bytes (a view into the input), may be empty
  };
  // Consumes a prefix of `input`; call again with the rest until all is consumed,
  // done() or error(). Never consumes past the end of the body.
  Step Feed(std::string_view input);

  bool done() const { return state_ == State::kDone; }
  const std::optional<HttpError>& error() const { return error_; }
  uint64_t body_bytes() const { return total_; }

 private:
  enum class State { kSizeLine, kData, kDataCrlf, kTrailerLine, kDone, kError };
  void Fail(int status, std::string reason);
  void FinishSizeLine();
  void FinishTrailerLine();

  uint64_t max_body_;
  int error_status_;
  State state_ = State::kSizeLine;
  std::string line_;  // the size or trailer line being collected
  uint64_t remaining_ = 0;
  uint64_t total_ = 0;
  size_t trailer_bytes_ = 0;
  std::optional<HttpError> error_;
};

}  // namespace adhoc::router
