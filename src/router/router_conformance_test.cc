// HTTP/1.1 conformance of the router as a whole (RFC 9110, RFC 9112), end to end: each case
// is sent raw on a fresh connection to a real Router in front of a real upstream, and what
// comes back (and what the upstream saw) is checked. docs/router.md lists the cases by
// group. The suite reports "N/78 conformance cases"; every one must pass.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "router/router.h"
#include "router/test_support.h"

namespace adhoc::router {
namespace {

using json = nlohmann::json;
using testing::Message;

struct Case {
  std::string name;
  std::string send;
  int status;  // the final status of the (first) answer
  // Whether the upstream receives the request (one more complete request than before).
  bool forwarded = false;
  // A check of the answer and of the last request the upstream received (if forwarded).
  std::function<bool(const Message& answer, const Message& upstream)> check = nullptr;
  bool closes = false;    // the router closes the connection after the answer
  bool reusable = false;  // a second request on the same connection is answered
  std::string then;       // sent after an interim (1xx) answer
  int second_status = 0;  // a second, pipelined answer
  bool head = false;      // the answer is to a HEAD (no body)
};

const std::string H = "Host: demo.localhost\r\n";

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<Case> Cases() {
  auto head_has = [](std::string part) {
    return [part](const Message&, const Message& up) { return Has(up.raw_head, part); };
  };
  auto head_lacks = [](std::vector<std::string> parts) {
    return [parts](const Message&, const Message& up) {
      for (const std::string& p : parts) {
        if (Has(up.raw_head, p)) return false;
      }
      return true;
    };
  };
  auto body_is = [](std::string body) {
    return [body](const Message&, const Message& up) { return up.body == body; };
  };
  std::string big(70 * 1024, 'a');
  return {
      // Request line (RFC 9112 3).
      {"get", "GET / HTTP/1.1\r\n" + H + "\r\n", 200, true, nullptr, false, true},
      {"lowercase_method_is_a_token", "get / HTTP/1.1\r\n" + H + "\r\n", 200, true,
       [](const Message&, const Message& up) { return up.start_line.rfind("get / ", 0) == 0; }},
      {"bad_method_char", "G@T / HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"double_space", "GET  / HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"tab_separator", "GET\t/ HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"missing_version", "GET /\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"version_1_2", "GET / HTTP/1.2\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"version_2_0", "GET / HTTP/2.0\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"lowercase_version", "GET / http/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"http10_without_host", "GET / HTTP/1.0\r\n\r\n", 404, false, nullptr, true},
      {"target_with_space", "GET /a b HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"target_with_fragment", "GET /a#b HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"relative_target", "GET a/b HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"authority_form", "CONNECT demo.localhost:443 HTTP/1.1\r\n" + H + "\r\n", 400, false,
       nullptr, true},
      {"asterisk_not_options", "GET * HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      {"asterisk_options", "OPTIONS * HTTP/1.1\r\n" + H + "\r\n", 200, true,
       [](const Message&, const Message& up) { return up.start_line == "OPTIONS * HTTP/1.1"; }},
      {"absolute_form_authority_wins",
       "GET http://demo.localhost/x?y=1 HTTP/1.1\r\nHost: other.localhost\r\n\r\n", 200, true,
       [](const Message&, const Message& up) {
         return up.start_line == "GET /x?y=1 HTTP/1.1" && up.header("host") == "demo.localhost";
       }},
      {"absolute_form_https", "GET https://demo.localhost/ HTTP/1.1\r\n" + H + "\r\n", 200, true},
      {"absolute_form_userinfo", "GET http://u@demo.localhost/ HTTP/1.1\r\n" + H + "\r\n", 400,
       false, nullptr, true},
      {"target_too_long", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n" + H + "\r\n", 414,
       false, nullptr, true},
      {"leading_empty_line", "\r\nGET / HTTP/1.1\r\n" + H + "\r\n", 200, true},
      {"nul_in_target", std::string("GET /a\0b HTTP/1.1\r\n", 19) + H + "\r\n", 400, false, nullptr,
       true},
      {"non_ascii_target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + "\r\n", 400, false, nullptr, true},
      // Header fields (RFC 9110 5, RFC 9112 5).
      {"space_before_colon", "GET / HTTP/1.1\r\n" + H + "X-A : b\r\n\r\n", 400, false, nullptr,
       true},
      {"obs_fold", "GET / HTTP/1.1\r\n" + H + "X-A: b\r\n c\r\n\r\n", 400, false, nullptr, true},
      {"empty_field_name", "GET / HTTP/1.1\r\n" + H + ": b\r\n\r\n", 400, false, nullptr, true},
      {"line_without_colon", "GET / HTTP/1.1\r\n" + H + "Junk\r\n\r\n", 400, false, nullptr, true},
      {"nul_in_value", "GET / HTTP/1.1\r\n" + H + std::string("X-A: b\0c\r\n\r\n", 12), 400, false,
       nullptr, true},
      {"control_in_value", "GET / HTTP/1.1\r\n" + H + "X-A: b\x01\r\n\r\n", 400, false, nullptr,
       true},
      {"del_in_value", "GET / HTTP/1.1\r\n" + H + "X-A: b\x7f\r\n\r\n", 400, false, nullptr, true},
      {"obs_text_in_value", "GET / HTTP/1.1\r\n" + H + "X-A: caf\xe9\r\n\r\n", 200, true,
       head_has("X-A: caf\xe9\r\n")},
      {"non_ascii_name", "GET / HTTP/1.1\r\n" + H + "X-\xc3\xa9: x\r\n\r\n", 400, false, nullptr,
       true},
      {"bare_cr_in_value", "GET / HTTP/1.1\r\n" + H + "X-A: b\rc\r\n\r\n", 400, false, nullptr,
       true},
      {"bare_lf_line_end", "GET / HTTP/1.1\n" + H + "\r\n", 400, false, nullptr, true},
      {"bare_cr_request_line_answered_at_once", "GET / HTTP/1.1\rHost: demo.localhost\r", 400,
       false, nullptr, true},
      {"bare_lf_only_answered_at_once", "GET / HTTP/1.1\n\n", 400, false, nullptr, true},
      {"header_section_too_large", "GET / HTTP/1.1\r\n" + H + "X-Big: " + big + "\r\n\r\n", 431,
       false, nullptr, true},
      {"whitespace_around_value_trimmed", "GET / HTTP/1.1\r\n" + H + "X-A: \t v w \t\r\n\r\n", 200,
       true, head_has("X-A: v w\r\n")},
      {"field_name_case_kept", "GET / HTTP/1.1\r\n" + H + "x-MiXeD: v\r\n\r\n", 200, true,
       head_has("x-MiXeD: v\r\n")},
      {"field_order_kept", "GET / HTTP/1.1\r\n" + H + "X-2: b\r\nX-1: a\r\nX-2: c\r\n\r\n", 200,
       true, head_has("X-2: b\r\nX-1: a\r\nX-2: c\r\n")},
      // Host (RFC 9110 7.2, RFC 9112 3.2).
      {"missing_host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, false, nullptr, true},
      {"duplicate_host", "GET / HTTP/1.1\r\n" + H + H + "\r\n", 400, false, nullptr, true},
      {"host_with_space", "GET / HTTP/1.1\r\nHost: demo localhost\r\n\r\n", 400, false, nullptr,
       true},
      {"host_bad_port", "GET / HTTP/1.1\r\nHost: demo.localhost:99999\r\n\r\n", 400, false, nullptr,
       true},
      {"host_userinfo", "GET / HTTP/1.1\r\nHost: u@demo.localhost\r\n\r\n", 400, false, nullptr,
       true},
      {"empty_host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, false, nullptr, true},
      {"host_trailing_dot", "GET / HTTP/1.1\r\nHost: demo.localhost.\r\n\r\n", 200, true},
      {"host_case_insensitive", "GET / HTTP/1.1\r\nHost: DEMO.LocalHost\r\n\r\n", 200, true},
      {"host_with_port", "GET / HTTP/1.1\r\nHost: demo.localhost:8080\r\n\r\n", 200, true,
       head_has("Host: demo.localhost:8080\r\n")},
      // Message body framing and smuggling (RFC 9112 6).
      {"cl_and_te",
       "POST /echo HTTP/1.1\r\n" + H +
           "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400, false, nullptr, true},
      {"te_and_cl",
       "POST /echo HTTP/1.1\r\n" + H +
           "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
       400, false, nullptr, true},
      {"duplicate_cl",
       "POST /echo HTTP/1.1\r\n" + H + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400,
       false, nullptr, true},
      {"cl_list", "POST /echo HTTP/1.1\r\n" + H + "Content-Length: 3, 3\r\n\r\nabc", 400, false,
       nullptr, true},
      {"cl_plus_sign", "POST /echo HTTP/1.1\r\n" + H + "Content-Length: +3\r\n\r\nabc", 400, false,
       nullptr, true},
      {"cl_negative", "POST /echo HTTP/1.1\r\n" + H + "Content-Length: -3\r\n\r\nabc", 400, false,
       nullptr, true},
      {"cl_hex", "POST /echo HTTP/1.1\r\n" + H + "Content-Length: 0x3\r\n\r\nabc", 400, false,
       nullptr, true},
      {"cl_over_limit", "POST /echo HTTP/1.1\r\n" + H + "Content-Length: 104857601\r\n\r\n", 413,
       false, nullptr, true},
      {"te_gzip_chunked",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
       false, nullptr, true},
      {"te_identity", "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: identity\r\n\r\n", 400,
       false, nullptr, true},
      {"te_xchunked",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400, false,
       nullptr, true},
      {"te_chunked_twice",
       "POST /echo HTTP/1.1\r\n" + H +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400, false, nullptr, true},
      {"te_in_http10",
       "POST /echo HTTP/1.0\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, false,
       nullptr, true},
      {"te_case_insensitive",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
       200, true, body_is("abc")},
      {"chunk_extensions",
       "POST /echo HTTP/1.1\r\n" + H +
           "Transfer-Encoding: chunked\r\n\r\n3;a=1;b=\"x y\"\r\nabc\r\n0\r\n\r\n",
       200, true, body_is("abc")},
      {"chunk_size_not_hex",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
       400, false, nullptr, true},
      {"chunk_size_overflow",
       "POST /echo HTTP/1.1\r\n" + H +
           "Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n",
       400, false, nullptr, true},
      {"chunk_data_without_crlf",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n", 400,
       false, nullptr, true},
      {"chunk_size_line_bare_lf",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400,
       false, nullptr, true},
      {"chunked_trailer_dropped",
       "POST /echo HTTP/1.1\r\n" + H +
           "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
       200, true,
       [](const Message&, const Message& up) {
         return up.body == "abc" && !Has(up.raw_head, "X-T");
       }},
      {"chunked_over_limit",
       "POST /echo HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n6400001\r\n", 413, false,
       nullptr, true},
      {"cl_body_then_pipelined_request",
       "POST /echo HTTP/1.1\r\n" + H + "Content-Length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\n" +
           H + "\r\n",
       200, true, nullptr, false, false, "", 200},
      // Expect (RFC 9110 10.1.1).
      {"expect_100_continue",
       "POST /echo HTTP/1.1\r\n" + H + "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n", 200,
       true, body_is("abc"), false, false, "abc"},
      {"expect_unknown", "GET / HTTP/1.1\r\n" + H + "Expect: teapot\r\n\r\n", 417, false, nullptr,
       true},
      // Connection management (RFC 9112 9, RFC 9110 7.6.1).
      {"connection_close", "GET / HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n", 200, true,
       [](const Message& a, const Message&) { return a.header("connection") == "close"; }, true},
      {"http10_keep_alive", "GET / HTTP/1.0\r\n" + H + "Connection: keep-alive\r\n\r\n", 200, true,
       [](const Message& a, const Message&) { return a.header("connection") == "keep-alive"; },
       false, true},
      {"pipelined_gets", "GET /a HTTP/1.1\r\n" + H + "\r\nGET /b HTTP/1.1\r\n" + H + "\r\n", 200,
       true, nullptr, false, false, "", 200},
      {"hop_by_hop_removed",
       "GET / HTTP/1.1\r\n" + H +
           "Connection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
           "Proxy-Authorization: x\r\nUpgrade: h2c\r\n\r\n",
       200, true,
       head_lacks({"X-Hop", "Keep-Alive", "TE:", "Proxy-Authorization", "Upgrade", "Connection"})},
      {"head_has_no_body", "HEAD / HTTP/1.1\r\n" + H + "\r\n", 200, true,
       [](const Message& a, const Message&) { return a.body.empty(); }, false, true, "", 0, true},
  };
}

TEST(Conformance, AllCasesPass) {
  testing::TempDir home;
  testing::Upstream up;
  RouterOptions options;
  options.home = home.path();
  options.feed_socket = false;
  options.listen = "127.0.0.1:0";
  options.threads = 2;
  options.header_timeout = std::chrono::minutes(2);  // "at once" means before any deadline
  Router router(options);
  ASSERT_TRUE(router.Start().ok());
  json env = {{"name", "demo"},
              {"hosts", {"demo.localhost"}},
              {"routes",
               {{{"pattern", "/*"},
                 {"service", "web"},
                 {"targets", {{{"id", "t1"}, {"address", up.address()}}}}}}}};
  ASSERT_EQ(json::parse(router.HandleFeedMessage(
                json{{"op", "replace_all"}, {"envs", json::array({env})}}.dump()))["ok"],
            true);

  std::vector<Case> cases = Cases();
  int passed = 0;
  for (const Case& c : cases) {
    int before = up.requests();
    testing::Client client(router.port());
    std::vector<std::string> problems;
    auto fail = [&](const std::string& why) { problems.push_back(why); };
    client.Send(c.send);
    std::optional<Message> answer = client.Read(c.head);
    if (answer && answer->status() == 100) {
      client.Send(c.then);
      answer = client.Read(c.head);
    }
    if (!answer) {
      fail("no answer");
    } else {
      if (answer->status() != c.status) fail("status " + std::to_string(answer->status()));
      if (c.second_status) {
        auto second = client.Read();
        if (!second || second->status() != c.second_status) fail("no second answer");
      }
      if (c.closes && !client.Closed()) fail("the connection stayed open");
      if (c.reusable) {
        auto again = client.Get("demo.localhost", "/");
        if (!again || again->status() != 200) fail("the connection was not reusable");
      }
    }
    // What the upstream saw: a request exactly when forwarded (and never a smuggled one).
    int seen = up.requests() - before;
    int expected = c.forwarded ? (c.second_status ? 2 : 1) + (c.reusable ? 1 : 0) : 0;
    if (seen != expected) fail("the upstream saw " + std::to_string(seen) + " requests");
    if (c.check && answer && seen > 0) {
      std::vector<Message> received = up.received();
      const Message& upstream = received[received.size() - (c.reusable ? 2 : 1)];
      if (!c.check(*answer, upstream)) fail("check failed; upstream got:\n" + upstream.raw_head);
    }
    if (problems.empty()) {
      ++passed;
    } else {
      std::string all;
      for (const std::string& p : problems) all += "\n  " + p;
      ADD_FAILURE() << "case " << c.name << ":" << all;
    }
  }
  std::printf("%d/%zu conformance cases\n", passed, cases.size());
  EXPECT_EQ(cases.size(), 78u);
  EXPECT_EQ(passed, static_cast<int>(cases.size()));
}

}  // namespace
}  // namespace adhoc::router
