#include "server/webhook.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace adhoc::server {

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// What one attempt got; filled by the handlers, all on the attempt's own io_context.
struct Exchange {
  explicit Exchange(asio::io_context& io) : deadline(io) {}

  asio::steady_timer deadline;  // closes everything when it expires
  std::string error;            // empty: `status` holds the answer's
  int status = 0;
  bool timed_out = false;

  void Fail(const std::string& what, const error_code& ec) {
    if (error.empty()) error = what + ": " + ec.message();
    deadline.cancel();
  }
};

// "5s", "250ms".
std::string Within(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                               : std::to_string(d.count()) + "ms";
}

// Writes the request and reads the answer's headers on `stream` (plain or TLS).
template <typename Stream>
void SendAndRead(Stream& stream, http::request<http::string_body>& request,
                 boost::beast::flat_buffer& buffer, http::response_parser<http::empty_body>& parser,
                 Exchange& out) {
  http::async_write(stream, request, [&](error_code ec, size_t) {
    if (ec) return out.Fail("sending the request", ec);
    http::async_read_header(stream, buffer, parser, [&](error_code ec, size_t) {
      if (ec) return out.Fail("reading the answer", ec);
      out.status = parser.get().result_int();
      out.deadline.cancel();
    });
  });
}

std::string Reason(int status) {
  auto text = http::obsolete_reason(static_cast<http::status>(status));
  std::string reason(text.data(), text.size());
  return reason == "<unknown-status>" ? std::to_string(status)
                                      : std::to_string(status) + " " + reason;
}

// No answer, a server error, a timeout or "too many requests": later may do better.
bool WorthAnotherTry(int status) { return status >= 500 || status == 408 || status == 429; }

}  // namespace

Result<int> PostOnce(const spec::HttpUrl& url, const std::string& body,
                     const WebhookOptions& options) {
  try {
    asio::io_context io;
    ssl::context tls(ssl::context::tls_client);
    error_code ec;
    if (url.tls) {
      tls.set_default_verify_paths(ec);
      if (!options.ca_file.empty()) {
        tls.load_verify_file(options.ca_file.string(), ec);
        if (ec) return Failed("reading CA file " + options.ca_file.string() + ": " + ec.message());
      }
      tls.set_verify_mode(ssl::verify_peer);
    }
    ssl::stream<tcp::socket> secure(io, tls);
    tcp::socket plain(io);
    tcp::socket& socket = url.tls ? secure.next_layer() : plain;
    if (url.tls) {
      SSL* ssl = secure.native_handle();
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (IsIpAddress(url.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
        SSL_set_tlsext_host_name(ssl, url.host.c_str());
      }
    }

    http::request<http::string_body> request{http::verb::post, url.target, 11};
    request.set(http::field::host, url.HostHeader());
    request.set(http::field::user_agent, "adhoc");
    request.set(http::field::content_type, "application/json");
    request.keep_alive(false);
    request.body() = body;
    request.prepare_payload();
    boost::beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;

    Exchange out(io);
    tcp::resolver resolver(io);
    const std::string where = url.HostHeader();
    out.deadline.expires_after(options.deadline);
    out.deadline.async_wait([&](error_code ec) {
      if (ec) return;  // cancelled: the answer came
      out.timed_out = true;
      resolver.cancel();
      error_code ignored;
      socket.close(ignored);
    });
    resolver.async_resolve(
        url.host, std::to_string(url.port), [&](error_code ec, tcp::resolver::results_type found) {
          if (ec) return out.Fail("resolving " + url.host, ec);
          asio::async_connect(socket, found, [&](error_code ec, const tcp::endpoint&) {
            if (ec) return out.Fail("connecting to " + where, ec);
            if (!url.tls) return SendAndRead(plain, request, buffer, parser, out);
            secure.async_handshake(ssl::stream_base::client, [&](error_code ec) {
              if (ec) return out.Fail("TLS handshake with " + where, ec);
              SendAndRead(secure, request, buffer, parser, out);
            });
          });
        });
    io.run();  // every handler ends: with the answer, an error or the deadline closing it all
    if (out.timed_out && out.status == 0)
      return Failed("no answer from " + where + " within " + Within(options.deadline));
    if (!out.error.empty()) return Failed(out.error);
    return out.status;
  } catch (const std::exception& e) {
    return Failed(std::string("posting: ") + e.what());
  }
}

Status PostJson(const std::string& url_text, const std::string& body,
                const WebhookOptions& options) {
  ADHOC_ASSIGN_OR_RETURN(spec::HttpUrl url, spec::ParseHttpUrl(url_text));
  const int attempts = std::max(1, options.attempts);
  auto backoff = options.backoff;
  std::string last;
  int made = 0;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      // In short slices, so a stopping control plane does not wait for the whole backoff.
      for (auto waited = std::chrono::milliseconds(0); waited < backoff;
           waited += std::chrono::milliseconds(50)) {
        if (options.stop && options.stop->load()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff *= 2;
    }
    if (options.stop && options.stop->load() && attempt > 1) break;
    ++made;
    Result<int> status = PostOnce(url, body, options);
    if (status.ok() && *status >= 200 && *status < 300) return OkStatus();
    last = status.ok() ? "answered " + Reason(*status) : status.error().message();
    if (status.ok() && !WorthAnotherTry(*status)) break;
  }
  return Failed("POST " + url_text + ": " + last + " (" + std::to_string(made) +
                (made == 1 ? " attempt)" : " attempts)"));
}

}  // namespace adhoc::server
