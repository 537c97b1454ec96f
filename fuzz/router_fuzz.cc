// libFuzzer target over what the router reads from the network before anything else
// looks at it: request and response heads (with path normalization), bare CR/LF
// detection, chunked bodies, WebSocket frame boundaries, and the access rules decided on
// them. Built with clang when it is installed (fuzz/CMakeLists.txt); ctest runs it for a
// bounded time over fuzz/corpus/router.
//
// Besides "no crash, no sanitizer report", it checks invariants that would mean a bypass
// or a smuggling risk if broken: a parsed path is already normal; a chunked body decodes
// the same whatever way it is split; rules with an allow list never let an outside
// address in; a forwarded Cookie header never keeps the access cookie.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/access_rules.h"
#include "router/http_parser.h"
#include "router/request_path.h"
#include "router/websocket_frames.h"

namespace {

using namespace adhoc::router;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Rules {
  AccessRules guarded, token_only, network_only;
  Rules() {
    guarded.AddBasicUser("qa", "s3cret");
    guarded.token = "k7Qm2xYp9LrT4vWnZs3a";
    guarded.public_paths.push_back(*ParsePathPattern("/public/*"));
    guarded.public_paths.push_back(*ParsePathPattern("/api/health-check/"));
    guarded.allow.push_back(*ParseCidr("127.0.0.0/8"));
    guarded.allow.push_back(*ParseCidr("::1"));
    token_only.token = "k7Qm2xYp9LrT4vWnZs3a";
    network_only.allow.push_back(*ParseCidr("10.0.0.0/8"));
  }
};

// Decodes `body` fed `step` bytes at a time (0: all at once).
struct Decoded {
  bool done = false, error = false;
  std::string data;
  bool operator==(const Decoded&) const = default;
};
Decoded Decode(std::string_view body, size_t step) {
  ChunkedDecoder d(1 << 20);
  Decoded out;
  if (step == 0) step = body.empty() ? 1 : body.size();
  for (size_t pos = 0; pos < body.size() && !d.done() && !d.error(); pos += step) {
    std::string_view piece = body.substr(pos, step);
    while (!piece.empty() && !d.done() && !d.error()) {
      ChunkedDecoder::Step s = d.Feed(piece);
      Check(s.consumed > 0 && s.consumed <= piece.size());
      if (!s.data.empty()) {
        Check(s.data.data() >= piece.data() &&
              s.data.data() + s.data.size() <= piece.data() + s.consumed);
      }
      out.data.append(s.data);
      piece.remove_prefix(s.consumed);
    }
  }
  out.done = d.done();
  out.error = d.error().has_value();
  Check(d.body_bytes() <= (1u << 20));
  if (out.done) Check(out.data.size() == d.body_bytes());
  return out;
}

void CheckForwardedCookie(std::string_view value) {
  std::string rest = WithoutAccessCookie(value);
  Check(rest.rfind("adhoc_access=", 0) != 0);
  Check(rest.find("; adhoc_access=") == std::string::npos);
  Check(WithoutAccessCookie(rest) == rest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  static const Rules rules;
  std::string_view in(reinterpret_cast<const char*>(bytes), size);
  size_t head_end = in.find("\r\n\r\n");
  std::string_view head = head_end == std::string_view::npos ? in : in.substr(0, head_end + 4);
  std::string_view rest =
      head_end == std::string_view::npos ? std::string_view() : in.substr(head_end + 4);

  HasBareCrOrLf(head, size % 7);

  RequestHead req;
  ParseLimits limits;
  if (!ParseRequestHead(head, limits, req)) {
    if (req.path != "*") {
      Check(!req.path.empty() && req.path[0] == '/');
      std::string again = req.path;
      PathNormalization n = NormalizeRequestPath(again);
      Check(n.error == nullptr && !n.changed);  // what routing sees is already normal
    }
    IpAddress inside = *ParseIpAddress("127.0.0.1");
    IpAddress outside = *ParseIpAddress(size % 2 ? "192.0.2.7" : "2001:db8::7");
    for (const AccessRules* r : {&rules.guarded, &rules.token_only, &rules.network_only}) {
      for (const IpAddress& client : {inside, outside}) {
        AccessDecision d = CheckAccess(*r, req, client);
        if (d.consumed_authorization) {
          Check(d.consumed_authorization >= req.headers.data() &&
                d.consumed_authorization < req.headers.data() + req.headers.size());
        }
        bool listed = r->allow.empty();
        for (const Cidr& c : r->allow) listed = listed || c.Contains(client);
        if (!listed) Check(d.verdict == AccessVerdict::kForbidden);
        if (d.verdict == AccessVerdict::kTokenLink) {
          // The redirect's query never carries the token on.
          std::string q = WithoutTokenParam(req.query);
          Check(q.rfind("adhoc_token=", 0) != 0 && q.find("&adhoc_token=") == std::string::npos);
        }
      }
    }
    for (const Header& h : req.headers) {
      if (EqualsIgnoreCase(h.name, "cookie")) CheckForwardedCookie(h.value);
    }
  }
  ResponseHead resp;
  ParseResponseHead(head, size % 3 ? "GET" : "HEAD", resp);

  // The rest as a chunked body: the same result whatever way it is split.
  Decoded whole = Decode(rest, 0);
  Check(Decode(rest, 1) == whole);
  Check(Decode(rest, 1 + size % 13) == whole);

  WebSocketFrameTracker frames;
  frames.Feed(rest);

  // The first line as a CIDR and as a path pattern (what the feed parses).
  std::string_view line = in.substr(0, in.find('\n'));
  if (line.size() < 64) {
    (void)ParseCidr(line);
    (void)ParsePathPattern(line);
  }
  return 0;
}
