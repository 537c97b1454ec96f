#include "router/http_parser.h"

#include <gtest/gtest.h>

namespace adhoc::router {
namespace {

// `head` is a view: out->headers point into it, so callers pass text that outlives them.
std::optional<HttpError> Parse(std::string_view head, RequestHead* out = nullptr,
                               ParseLimits limits = {}) {
  RequestHead local;
  return ParseRequestHead(head, limits, out ? *out : local);
}

TEST(ParseRequestHead, ValidRequestKeepsHeaderOrderAndCase) {
  RequestHead req;
  auto err = Parse(
      "POST /api/x?a=1 HTTP/1.1\r\nHost: Demo.localhost:8080\r\nX-Custom-ID:  abc \r\n"
      "content-length: 5\r\nAccept: */*\r\n\r\n",
      &req);
  ASSERT_FALSE(err) << err->reason;
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/api/x");
  EXPECT_EQ(req.query, "a=1");
  EXPECT_EQ(req.host, "Demo.localhost:8080");
  EXPECT_EQ(req.framing, BodyFraming::kLength);
  EXPECT_EQ(req.content_length, 5u);
  EXPECT_TRUE(req.keep_alive);
  ASSERT_EQ(req.headers.size(), 4u);
  EXPECT_EQ(req.headers[1].name, "X-Custom-ID");
  EXPECT_EQ(req.headers[1].value, "abc");
  EXPECT_EQ(req.headers[2].name, "content-length");
}

TEST(ParseRequestHead, ChunkedAndConnectionOptions) {
  RequestHead req;
  ASSERT_FALSE(
      Parse("PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
            "Connection: close, X-Private\r\n\r\n",
            &req));
  EXPECT_EQ(req.framing, BodyFraming::kChunked);
  EXPECT_FALSE(req.keep_alive);
  EXPECT_TRUE(IsHopByHop("x-private", req.connection_options));
  EXPECT_TRUE(IsHopByHop("Keep-Alive", {}));
  EXPECT_TRUE(IsHopByHop("Proxy-Authorization", {}));
  EXPECT_FALSE(IsHopByHop("Content-Type", {}));
}

TEST(ParseRequestHead, Http10DefaultsToCloseAndNeedsNoHost) {
  RequestHead req;
  ASSERT_FALSE(Parse("GET / HTTP/1.0\r\n\r\n", &req));
  EXPECT_FALSE(req.keep_alive);
  ASSERT_FALSE(Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &req));
  EXPECT_TRUE(req.keep_alive);
}

TEST(ParseRequestHead, AbsoluteFormUsesTheTargetAuthority) {
  RequestHead req;
  ASSERT_FALSE(Parse("GET http://demo.localhost:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", &req));
  EXPECT_EQ(req.host, "demo.localhost:8080");
  EXPECT_EQ(req.path, "/p");
  EXPECT_EQ(req.query, "q=1");
  ASSERT_FALSE(Parse("GET http://demo.localhost HTTP/1.1\r\nHost: x\r\n\r\n", &req));
  EXPECT_EQ(req.path, "/");
  EXPECT_TRUE(Parse("GET http://user@demo.localhost/ HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(Parse("GET ftp://demo.localhost/ HTTP/1.1\r\nHost: x\r\n\r\n"));
}

struct Bad {
  const char* name;
  std::string head;
  int status;
  friend void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }
};

class Malformed : public ::testing::TestWithParam<Bad> {};

TEST_P(Malformed, IsRejected) {
  auto err = Parse(GetParam().head);
  ASSERT_TRUE(err.has_value()) << GetParam().name;
  EXPECT_EQ(err->status, GetParam().status) << GetParam().name << ": " << err->reason;
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, Malformed,
    ::testing::Values(
        Bad{"cl_and_te",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400},
        Bad{"duplicate_cl",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400},
        Bad{"cl_list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400},
        Bad{"cl_plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400},
        Bad{"cl_junk", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
        Bad{"cl_leading_junk", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x1\r\n\r\n", 400},
        Bad{"cl_negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        Bad{"cl_empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
        Bad{"cl_overflow",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        Bad{"te_gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        Bad{"te_chunked_gzip",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        Bad{"te_twice",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "chunked\r\n\r\n",
            400},
        Bad{"te_xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            400},
        Bad{"te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        Bad{"space_before_colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", 400},
        Bad{"obs_fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
        Bad{"bare_cr", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},
        Bad{"bare_lf", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
        Bad{"nul_in_value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 37), 400},
        Bad{"ctl_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", 400},
        Bad{"missing_host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400},
        Bad{"duplicate_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        Bad{"malformed_host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        Bad{"host_bad_port", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400},
        Bad{"host_userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
        Bad{"bad_method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"double_space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"bad_version", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400},
        Bad{"http2_version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400},
        Bad{"lowercase_version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"no_version", "GET /\r\nHost: a\r\n\r\n", 400},
        Bad{"target_with_space", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"target_fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"target_relative", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"authority_form", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"asterisk_not_options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        Bad{"empty_header_name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400},
        Bad{"no_colon", "GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", 400},
        Bad{"high_byte_in_name", "GET / HTTP/1.1\r\nHost: a\r\nX-\xc3\xa9: x\r\n\r\n", 400}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ParseRequestHead, Limits) {
  ParseLimits limits;
  limits.max_uri_bytes = 10;
  limits.max_body_bytes = 100;
  limits.max_header_bytes = 200;
  auto err = Parse("GET /0123456789abc HTTP/1.1\r\nHost: a\r\n\r\n", nullptr, limits);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->status, 414);
  err = Parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", nullptr, limits);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->status, 413);
  err = Parse("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'a') + "\r\n\r\n", nullptr,
              limits);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->status, 431);
}

TEST(ParseResponseHead, FramingRules) {
  ResponseHead r;
  ASSERT_FALSE(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", r));
  EXPECT_EQ(r.framing, BodyFraming::kLength);
  r = {};
  ASSERT_FALSE(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "HEAD", r));
  EXPECT_EQ(r.framing, BodyFraming::kNone);
  r = {};
  ASSERT_FALSE(ParseResponseHead("HTTP/1.1 204 No Content\r\n\r\n", "GET", r));
  EXPECT_EQ(r.framing, BodyFraming::kNone);
  r = {};
  ASSERT_FALSE(ParseResponseHead("HTTP/1.0 200 OK\r\n\r\n", "GET", r));
  EXPECT_EQ(r.framing, BodyFraming::kUntilClose);
  EXPECT_FALSE(r.keep_alive);
  r = {};
  ASSERT_FALSE(
      ParseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", r));
  EXPECT_EQ(r.framing, BodyFraming::kChunked);
  r = {};
  ASSERT_FALSE(ParseResponseHead("HTTP/1.1 404 \r\n\r\n", "GET", r));
  EXPECT_EQ(r.status, 404);
  r = {};
  auto err = ParseResponseHead(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->status, 502);
  r = {};
  EXPECT_TRUE(ParseResponseHead("HTTP/1.1 20 OK\r\n\r\n", "GET", r));
  r = {};
  EXPECT_TRUE(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                                "GET", r));
}

std::string DecodeAll(ChunkedDecoder& d, std::string_view in) {
  std::string out;
  while (!in.empty() && !d.done() && !d.error()) {
    auto step = d.Feed(in);
    out += step.data;
    in.remove_prefix(step.consumed);
  }
  return out;
}

TEST(ChunkedDecoder, DecodesWithExtensionsAndTrailers) {
  ChunkedDecoder d(1000);
  std::string body = DecodeAll(
      d, "5;name=value;q=\"a \\\" b\"\r\nhello\r\n6 ; x\r\n world\r\n0\r\nTrailer-A: 1\r\n\r\n");
  ASSERT_FALSE(d.error()) << d.error()->reason;
  EXPECT_TRUE(d.done());
  EXPECT_EQ(body, "hello world");
}

TEST(ChunkedDecoder, DecodesByteByByte) {
  ChunkedDecoder d(1000);
  std::string in = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\nNEXT";
  std::string out;
  size_t i = 0;
  for (; i < in.size() && !d.done(); ++i) {
    auto step = d.Feed(std::string_view(in).substr(i, 1));
    ASSERT_EQ(step.consumed, 1u);
    out += step.data;
  }
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out, "abc0123456789");
  EXPECT_EQ(in.substr(i), "NEXT");  // never consumes past the body
}

TEST(ChunkedDecoder, RejectsBadFraming) {
  for (const char* bad :
       {"x\r\n", "\r\n", "5 \r\nhello\r\n", "5;\r\nhello\r\n", "5;a=\r\nhello\r\n",
        "5;a=\"x\r\nhello\r\n", "5;a b\r\nhello\r\n", "ffffffffffffffffff\r\n", "5\r\nhelloXX",
        "5\nhello\r\n", "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", "-5\r\n", "0x5\r\n"}) {
    ChunkedDecoder d(1ull << 40);
    DecodeAll(d, bad);
    EXPECT_TRUE(d.error().has_value()) << bad;
  }
}

TEST(ChunkedDecoder, EnforcesTheBodyLimit) {
  ChunkedDecoder d(10);
  DecodeAll(d, "6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n");
  ASSERT_TRUE(d.error());
  EXPECT_EQ(d.error()->status, 413);
}

}  // namespace
}  // namespace adhoc::router

namespace adhoc::router {
namespace {

TEST(ParseRequestHead, NormalizesThePathOnceAndRefusesWhatCannotBe) {
  RequestHead req;
  ASSERT_FALSE(
      ParseRequestHead("GET /%61pi/./x//y?q=%2e HTTP/1.1\r\nHost: a\r\n\r\n", ParseLimits(), req));
  EXPECT_EQ(req.path, "/api/x/y");
  EXPECT_TRUE(req.path_changed);
  EXPECT_EQ(req.target, "/%61pi/./x//y?q=%2e");  // kept as sent; the query is not touched
  EXPECT_EQ(req.query, "q=%2e");
  ASSERT_FALSE(ParseRequestHead("GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n", ParseLimits(), req));
  EXPECT_FALSE(req.path_changed);
  ASSERT_FALSE(ParseRequestHead("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", ParseLimits(), req));
  EXPECT_EQ(req.path, "*");
  for (const char* bad : {"/a%2fb", "/../x", "/a%zz", "/a\\b", "/a%00"}) {
    auto err = ParseRequestHead(std::string("GET ") + bad + " HTTP/1.1\r\nHost: a\r\n\r\n",
                                ParseLimits(), req);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err->status, 400) << bad;
  }
}

TEST(ParseRequestHead, UpgradeNeedsConnectionUpgradeAndNoBody) {
  RequestHead req;
  ASSERT_FALSE(
      ParseRequestHead("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
                       "websocket\r\n\r\n",
                       ParseLimits(), req));
  EXPECT_EQ(req.upgrade, "websocket");
  ASSERT_FALSE(ParseRequestHead("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
                                ParseLimits(), req));
  EXPECT_TRUE(req.upgrade.empty());  // Upgrade without Connection: upgrade is not a request
  ASSERT_FALSE(
      ParseRequestHead("POST /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: "
                       "h2c\r\nContent-Length: 3\r\n\r\n",
                       ParseLimits(), req));
  EXPECT_TRUE(req.upgrade.empty());
  ResponseHead resp;
  ASSERT_FALSE(ParseResponseHead(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "GET", resp));
  EXPECT_EQ(resp.upgrade, "websocket");
}

TEST(HasBareCrOrLf, JudgesAnIncompleteHead) {
  EXPECT_FALSE(HasBareCrOrLf("GET / HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_FALSE(HasBareCrOrLf("GET / HTTP/1.1\r"));  // the LF may still come
  EXPECT_TRUE(HasBareCrOrLf("GET / HTTP/1.1\rHost: a"));
  EXPECT_TRUE(HasBareCrOrLf("GET / HTTP/1.1\r\r\n"));
  EXPECT_TRUE(HasBareCrOrLf("GET / HTTP/1.1\nHost"));
  EXPECT_TRUE(HasBareCrOrLf("\n"));
  // Only the new bytes (and the one before them) are looked at again.
  std::string d = "GET / HTTP/1.1\r";
  EXPECT_FALSE(HasBareCrOrLf(d, 0));
  d += "X";
  EXPECT_TRUE(HasBareCrOrLf(d, d.size() - 1));
}

}  // namespace
}  // namespace adhoc::router
