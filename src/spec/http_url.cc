#include "spec/http_url.h"

#include <algorithm>
#include <cctype>

namespace adhoc::spec {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

}  // namespace

std::string HttpUrl::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto bad = [&](const std::string& why) { return BadInput("'" + std::string(url) + "': " + why); };
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return bad("spaces and control characters are not allowed in a URL");
  HttpUrl out;
  std::string lower = Lower(url.substr(0, std::min<size_t>(url.size(), 8)));
  std::string_view rest;
  if (lower.starts_with("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else if (lower.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return bad("only http:// and https:// URLs are allowed");
  }
  if (rest.find('#') != std::string_view::npos) return bad("a URL fragment ('#') is not allowed");
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  out.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (out.target.front() == '?') out.target = "/" + out.target;
  if (authority.find('@') != std::string_view::npos)
    return bad("credentials in the URL are not allowed");
  std::string_view port_text;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 host needs its closing ']'");
    out.host = Lower(authority.substr(1, close - 1));
    if (out.host.empty() || !std::all_of(out.host.begin(), out.host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        }))
      return bad("'" + out.host + "' is not an IPv6 address");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) return bad("expected ':PORT' after ']'");
    if (!after.empty()) port_text = after.substr(1);
    if (!after.empty() && port_text.empty()) return bad("the port is empty");
  } else {
    size_t colon = authority.find(':');
    out.host = Lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("the port is empty");
    }
    if (!std::all_of(out.host.begin(), out.host.end(), IsHostChar))
      return bad("'" + out.host + "' is not a host name");
  }
  if (out.host.empty()) return bad("the host is missing");
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty()) {
    bool digits = port_text.size() <= 5 && std::all_of(port_text.begin(), port_text.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
    int port = digits ? std::stoi(std::string(port_text)) : 0;
    if (port < 1 || port > 65535) return bad("the port must be a number from 1 to 65535");
    out.port = port;
  }
  return out;
}

}  // namespace adhoc::spec
