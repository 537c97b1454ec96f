#include "server/api_client.h"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <limits>

namespace adhoc::server {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Socket = asio::local::stream_protocol::socket;

Result<std::unique_ptr<Socket>> Connect(asio::io_context& io, const std::filesystem::path& path) {
  auto socket = std::make_unique<Socket>(io);
  boost::system::error_code ec;
  socket->connect(asio::local::stream_protocol::endpoint(path.string()), ec);
  if (ec) return Failed("cannot reach the control plane at " + path.string() + ": " + ec.message());
  return socket;
}

http::request<http::string_body> MakeRequest(const std::string& method, const std::string& path,
                                             const nlohmann::json& body, bool stream) {
  http::request<http::string_body> req{http::string_to_verb(method), path, 11};
  req.set(http::field::host, "adhoc");
  req.set(http::field::accept, stream ? "application/x-ndjson" : "application/json");
  req.keep_alive(false);
  if (!body.is_null()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body.dump();
  }
  req.prepare_payload();
  return req;
}

}  // namespace

Error ErrorFromJson(const nlohmann::json& body) {
  const nlohmann::json& e = body.contains("error") ? body["error"] : body;
  std::string kind = e.value("kind", "failed");
  std::string message = e.value("message", "the control plane gave no reason");
  if (e.contains("log_tail") && e["log_tail"].is_array() && !e["log_tail"].empty()) {
    message += "\n  last lines" +
               (e.contains("process") ? " of " + e["process"].get<std::string>() : std::string()) +
               ":";
    for (const auto& line : e["log_tail"]) message += "\n    " + line.get<std::string>();
  }
  ErrorKind k = kind == "bad_input"   ? ErrorKind::kBadInput
                : kind == "not_found" ? ErrorKind::kNotFound
                : kind == "conflict"  ? ErrorKind::kConflict
                                      : ErrorKind::kFailed;
  return Error(k, message);
}

bool ApiClient::Reachable() const { return Call("GET", "/v1/health").ok(); }

Result<nlohmann::json> ApiClient::Call(const std::string& method, const std::string& path,
                                       const nlohmann::json& body) const {
  asio::io_context io;
  ADHOC_ASSIGN_OR_RETURN(auto socket, Connect(io, socket_path_));
  boost::system::error_code ec;
  auto req = MakeRequest(method, path, body, false);
  http::write(*socket, req, ec);
  if (ec) return Failed("sending to the control plane: " + ec.message());
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  http::read(*socket, buffer, parser, ec);
  if (ec) return Failed("reading the control plane's answer: " + ec.message());
  auto json = nlohmann::json::parse(parser.get().body(), nullptr, false);
  if (json.is_discarded()) return Failed("the control plane answered something that is not JSON");
  if (parser.get().result_int() >= 300) return ErrorFromJson(json);
  return json;
}

Result<nlohmann::json> ApiClient::Stream(
    const std::string& method, const std::string& path, const nlohmann::json& body,
    const std::function<void(const nlohmann::json&)>& on_event) const {
  asio::io_context io;
  ADHOC_ASSIGN_OR_RETURN(auto socket, Connect(io, socket_path_));
  boost::system::error_code ec;
  auto req = MakeRequest(method, path, body, true);
  http::write(*socket, req, ec);
  if (ec) return Failed("sending to the control plane: " + ec.message());
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // Not boost::none: Beast 1.74 compares lengths against an empty limit as exceeded.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(*socket, buffer, parser, ec);
  if (ec) return Failed("reading the control plane's answer: " + ec.message());
  std::string pending;
  std::optional<nlohmann::json> result;
  bool is_error_status = parser.get().result_int() >= 300;
  char chunk[8192];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // read_some: hand over each event as it arrives (read would wait for a full buffer).
    http::read_some(*socket, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Failed("the control plane closed the stream early: " + ec.message());
    pending.append(chunk, sizeof chunk - parser.get().body().size);
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.empty()) continue;
      auto event = nlohmann::json::parse(line, nullptr, false);
      if (event.is_discarded()) continue;
      if (is_error_status || event.value("type", "") == "result")
        result = event;
      else
        on_event(event);
    }
  }
  if (!pending.empty()) {
    auto event = nlohmann::json::parse(pending, nullptr, false);
    if (!event.is_discarded()) result = event;
  }
  if (!result) return Failed("the control plane ended the stream without a result");
  if (is_error_status || result->contains("error")) return ErrorFromJson(*result);
  if (!result->value("ok", true)) return ErrorFromJson(*result);
  if (result->contains("env")) return (*result)["env"];
  if (result->contains("value")) return (*result)["value"];
  return *result;
}

}  // namespace adhoc::server
