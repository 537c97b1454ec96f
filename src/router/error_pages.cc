#include "router/error_pages.h"

#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace adhoc::router {

const char* StatusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

namespace {

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// The q-value of the media range in one Accept element ("application/json;q=0.9").
double QValue(std::string_view element) {
  size_t pos = element.find(";");
  while (pos != std::string_view::npos) {
    std::string_view param = element.substr(pos + 1);
    size_t next = param.find(';');
    std::string_view p = param.substr(0, next);
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    if (p.size() > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      return std::strtod(std::string(p.substr(2)).c_str(), nullptr);
    }
    pos = next == std::string_view::npos ? next : pos + 1 + next;
  }
  return 1.0;
}

}  // namespace

bool PrefersJson(std::string_view accept) {
  double json_q = -1, html_q = -1;
  int json_index = -1, html_index = -1, index = 0;
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    std::string_view element =
        accept.substr(start, comma == std::string_view::npos ? accept.npos : comma - start);
    while (!element.empty() && element.front() == ' ') element.remove_prefix(1);
    std::string type(element.substr(0, element.find(';')));
    while (!type.empty() && type.back() == ' ') type.pop_back();
    for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (type == "application/json" && json_index < 0) {
      json_q = QValue(element);
      json_index = index;
    } else if ((type == "text/html" || type == "application/xhtml+xml") && html_index < 0) {
      html_q = QValue(element);
      html_index = index;
    }
    ++index;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (json_index < 0 || json_q <= 0) return false;
  if (html_index < 0 || html_q <= 0) return true;
  if (json_q != html_q) return json_q > html_q;
  return json_index < html_index;
}

ErrorPage MakeErrorPage(int status, std::string_view env, std::string_view host,
                        std::string_view detail, bool json) {
  ErrorPage page;
  if (json) {
    nlohmann::json j = {{"status", status},
                        {"error", StatusText(status)},
                        {"environment", std::string(env)},
                        {"host", std::string(host)},
                        {"detail", std::string(detail)}};
    page.content_type = "application/json";
    page.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return page;
  }
  std::string title = std::to_string(status) + " " + StatusText(status);
  std::string who = env.empty() ? "" : "<p>Environment: <b>" + HtmlEscape(env) + "</b></p>\n";
  page.content_type = "text/html; charset=utf-8";
  page.body = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
              "</title></head>\n<body>\n<h1>" + title + "</h1>\n" + who + "<p>" +
              HtmlEscape(detail) + "</p>\n<hr><p><small>adhoc router</small></p>\n</body></html>\n";
  return page;
}

}  // namespace adhoc::router
