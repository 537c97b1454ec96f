#include "router/http_parser.h"

#include <array>
#include <cctype>

#include "router/request_path.h"

namespace adhoc::router {

namespace {

// tchar (RFC 9110 5.6.2) as a table: the parser asks for every byte of every name.
constexpr auto kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

bool IsTokenChar(unsigned char c) { return kTokenChars[c]; }

// ASCII only, as HTTP field names and tokens are (and as std::tolower in the C locale).
char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// field-value characters: VCHAR, SP, HTAB, obs-text. Rejects NUL, CR, LF and other CTLs.
bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if (c == '\t' || c == ' ') continue;
    if (c < 0x21 || c == 0x7f) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// Splits a comma-separated list into lower-cased, trimmed elements (empty ones kept,
// so callers can reject them).
void SplitList(std::string_view value, std::vector<std::string>& out) {
  size_t start = 0;
  while (true) {
    size_t comma = value.find(',', start);
    std::string_view item =
        value.substr(start, comma == std::string_view::npos ? value.npos : comma - start);
    out.push_back(Lower(TrimOws(item)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

// 1*DIGIT, no sign, no list, no overflow.
bool ParseDecimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

// uri-host [":" port], with uri-host a DNS-like name, an IPv4 address or "[IPv6]".
bool IsValidHost(std::string_view host) {
  if (host.empty()) return false;
  std::string_view name = host, port;
  if (host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : host.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
    std::string_view rest = host.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    port = rest.substr(1);
    name = {};
  } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (!name.empty() || host.front() != '[') {
    if (name.empty() || name.size() > 253) return false;
    for (unsigned char c : name) {
      if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') return false;
    }
  }
  if (!port.empty()) {
    uint64_t p = 0;
    if (!ParseDecimal(port, p) || p > 65535) return false;
  }
  return true;
}

// request-target characters: visible ASCII except '#'.
bool IsTargetChars(std::string_view s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '#') return false;
  }
  return true;
}

// The line views of the head being parsed: one vector per thread, reused, so parsing
// allocates only for what it returns.
std::vector<std::string_view>& LinesScratch() {
  thread_local std::vector<std::string_view> lines;
  lines.clear();
  return lines;
}

// Splits the head (without its final empty line) into lines ending in CRLF. Bare CR or
// LF anywhere is an error.
bool SplitLines(std::string_view head, std::vector<std::string_view>& lines) {
  size_t pos = 0;
  while (pos < head.size()) {
    size_t cr = head.find('\r', pos);
    if (cr == std::string_view::npos || cr + 1 >= head.size() || head[cr + 1] != '\n') {
      return false;
    }
    std::string_view line = head.substr(pos, cr - pos);
    if (line.find('\n') != std::string_view::npos) return false;
    lines.push_back(line);
    pos = cr + 2;
  }
  return true;
}

// Parses header lines[1..] into `headers`; `status` is the error status to use.
std::optional<HttpError> ParseHeaderLines(const std::vector<std::string_view>& lines,
                                          std::vector<Header>& headers, int status) {
  headers.reserve(lines.size() - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) return HttpError{status, "empty header line"};
    if (line.front() == ' ' || line.front() == '\t') {
      return HttpError{status, "obsolete line folding in headers"};
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return HttpError{status, "header line without a colon"};
    std::string_view name = line.substr(0, colon);
    if (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
      return HttpError{status, "whitespace between header name and colon"};
    }
    if (!IsToken(name)) return HttpError{status, "malformed header name"};
    std::string_view value = line.substr(colon + 1);
    if (!IsFieldValue(value)) return HttpError{status, "control character in header value"};
    headers.push_back(Header{name, TrimOws(value)});
  }
  return std::nullopt;
}

struct Framing {
  int content_length_count = 0;
  uint64_t content_length = 0;
  bool content_length_ok = true;
  std::vector<std::string> transfer_codings;
};

// `connection` receives the Connection options (appended: callers pass it cleared).
Framing ScanFraming(const std::vector<Header>& headers, std::vector<std::string>& connection) {
  Framing f;
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, "content-length")) {
      ++f.content_length_count;
      if (!ParseDecimal(h.value, f.content_length)) f.content_length_ok = false;
    } else if (EqualsIgnoreCase(h.name, "transfer-encoding")) {
      SplitList(h.value, f.transfer_codings);
    } else if (EqualsIgnoreCase(h.name, "connection")) {
      SplitList(h.value, connection);
    }
  }
  return f;
}

bool HasOption(const std::vector<std::string>& options, std::string_view token) {
  for (const std::string& o : options) {
    if (o == token) return true;
  }
  return false;
}

bool ParseVersion(std::string_view v, int& minor) {
  if (v == "HTTP/1.1") {
    minor = 1;
    return true;
  }
  if (v == "HTTP/1.0") {
    minor = 0;
    return true;
  }
  return false;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

const std::string_view* RequestHead::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

size_t FindHeadEnd(std::string_view buffer) {
  size_t pos = buffer.find("\r\n\r\n");
  return pos == std::string_view::npos ? pos : pos + 4;
}

bool HasBareCrOrLf(std::string_view d, size_t from) {
  if (from > 0) --from;  // a CR that ended the earlier bytes is judged by the first new one
  for (size_t i = from; i < d.size(); ++i) {
    char c = d[i];
    if (c == '\r') {
      if (i + 1 < d.size() && d[i + 1] != '\n') return true;
    } else if (c == '\n') {
      if (i == 0 || d[i - 1] != '\r') return true;
    }
  }
  return false;
}

std::optional<HttpError> ParseRequestHead(std::string_view head, const ParseLimits& limits,
                                          RequestHead& out) {
  // Reset, keeping the strings' and vectors' capacity: a connection reuses its RequestHead,
  // so most requests parse without allocating.
  out.method.clear();
  out.target.clear();
  out.path.clear();
  out.path_changed = false;
  out.query.clear();
  out.has_query = false;
  out.version_minor = 1;
  out.headers.clear();
  out.host.clear();
  out.framing = BodyFraming::kNone;
  out.content_length = 0;
  out.keep_alive = true;
  out.expect_continue = false;
  out.connection_options.clear();
  out.upgrade = {};
  if (head.size() > limits.max_header_bytes) return HttpError{431, "header section too large"};
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
    return HttpError{400, "incomplete head"};
  }
  std::vector<std::string_view>& lines = LinesScratch();
  if (!SplitLines(head.substr(0, head.size() - 2), lines) || lines.empty()) {
    return HttpError{400, "bare CR or LF in head"};
  }

  // request-line = method SP request-target SP HTTP-version
  std::string_view line = lines[0];
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return HttpError{400, "malformed request line"};
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return HttpError{400, "malformed method"};
  if (target.size() > limits.max_uri_bytes) return HttpError{414, "request-target too long"};
  if (target.empty() || !IsTargetChars(target)) return HttpError{400, "malformed request-target"};
  if (!ParseVersion(version, out.version_minor)) {
    return HttpError{400, "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)"};
  }
  out.method.assign(method);
  out.target.assign(target);

  std::string authority;
  std::string_view path_and_query;
  if (target.front() == '/') {
    path_and_query = target;
  } else if (target == "*") {
    if (method != "OPTIONS") return HttpError{400, "'*' target is only for OPTIONS"};
    path_and_query = target;
  } else {
    // absolute-form: http://authority[/path][?query]
    size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos ||
        !(EqualsIgnoreCase(target.substr(0, scheme_end), "http") ||
          EqualsIgnoreCase(target.substr(0, scheme_end), "https"))) {
      return HttpError{400, "malformed request-target"};
    }
    std::string_view rest = target.substr(scheme_end + 3);
    size_t end = rest.find_first_of("/?");
    authority = std::string(rest.substr(0, end));
    if (authority.find('@') != std::string::npos || !IsValidHost(authority)) {
      return HttpError{400, "malformed authority in request-target"};
    }
    path_and_query = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  size_t qmark = path_and_query.find('?');
  out.path.assign(path_and_query.substr(0, qmark));
  if (out.path.empty()) out.path = "/";
  if (out.path != "*") {
    PathNormalization n = NormalizeRequestPath(out.path);
    if (n.error) return HttpError{400, n.error};
    out.path_changed = n.changed;
  }
  out.has_query = qmark != std::string_view::npos;
  if (out.has_query) out.query.assign(path_and_query.substr(qmark + 1));

  if (auto err = ParseHeaderLines(lines, out.headers, 400)) return err;

  int host_count = 0;
  for (const Header& h : out.headers) {
    if (EqualsIgnoreCase(h.name, "host")) {
      ++host_count;
      out.host.assign(h.value);
    } else if (EqualsIgnoreCase(h.name, "expect")) {
      if (!EqualsIgnoreCase(h.value, "100-continue")) return HttpError{417, "unsupported Expect"};
      out.expect_continue = true;
    }
  }
  if (host_count > 1) return HttpError{400, "duplicate Host header"};
  if (host_count == 0 && out.version_minor == 1) return HttpError{400, "missing Host header"};
  if (host_count == 1 && !IsValidHost(out.host)) return HttpError{400, "malformed Host header"};
  if (!authority.empty()) out.host = authority;  // RFC 9112 3.2.2: the target's authority wins

  Framing f = ScanFraming(out.headers, out.connection_options);
  for (const std::string& o : out.connection_options) {
    if (!IsToken(o)) return HttpError{400, "malformed Connection header"};
  }
  if (!f.transfer_codings.empty()) {
    if (f.content_length_count > 0) {
      return HttpError{400, "both Content-Length and Transfer-Encoding"};
    }
    if (out.version_minor == 0) return HttpError{400, "Transfer-Encoding in an HTTP/1.0 request"};
    if (f.transfer_codings.size() != 1 || f.transfer_codings[0] != "chunked") {
      return HttpError{400, "Transfer-Encoding other than a single chunked"};
    }
    out.framing = BodyFraming::kChunked;
  } else if (f.content_length_count > 1) {
    return HttpError{400, "duplicate Content-Length"};
  } else if (f.content_length_count == 1) {
    if (!f.content_length_ok) return HttpError{400, "malformed Content-Length"};
    if (f.content_length > limits.max_body_bytes) return HttpError{413, "request body too large"};
    out.content_length = f.content_length;
    out.framing = f.content_length > 0 ? BodyFraming::kLength : BodyFraming::kNone;
  } else {
    out.framing = BodyFraming::kNone;
  }
  if (out.version_minor == 1) {
    out.keep_alive = !HasOption(out.connection_options, "close");
  } else {
    out.keep_alive = HasOption(out.connection_options, "keep-alive");
  }
  if (out.framing == BodyFraming::kNone) out.expect_continue = false;
  if (out.framing == BodyFraming::kNone && out.version_minor == 1 &&
      HasOption(out.connection_options, "upgrade")) {
    if (const std::string_view* up = out.Find("upgrade"); up && !up->empty()) out.upgrade = *up;
  }
  return std::nullopt;
}

std::optional<HttpError> ParseResponseHead(std::string_view head, std::string_view request_method,
                                           ResponseHead& out) {
  // Reset, keeping the vectors' capacity: a connection reuses its ResponseHead.
  std::vector<Header> headers = std::move(out.headers);
  std::vector<std::string> options = std::move(out.connection_options);
  headers.clear();
  options.clear();
  out = ResponseHead();
  out.headers = std::move(headers);
  out.connection_options = std::move(options);
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
    return HttpError{502, "incomplete response head"};
  }
  std::vector<std::string_view>& lines = LinesScratch();
  if (!SplitLines(head.substr(0, head.size() - 2), lines) || lines.empty()) {
    return HttpError{502, "bare CR or LF in response head"};
  }
  // status-line = HTTP-version SP status-code SP [reason-phrase]
  std::string_view line = lines[0];
  if (line.size() < 12 || !ParseVersion(line.substr(0, 8), out.version_minor) || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return HttpError{502, "malformed status line from upstream"};
  }
  uint64_t status = 0;
  if (!ParseDecimal(line.substr(9, 3), status) || status < 100 || status > 599) {
    return HttpError{502, "malformed status code from upstream"};
  }
  out.status = static_cast<int>(status);
  out.reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
  if (!IsFieldValue(out.reason)) return HttpError{502, "control character in reason phrase"};
  if (auto err = ParseHeaderLines(lines, out.headers, 502)) return err;

  Framing f = ScanFraming(out.headers, out.connection_options);
  out.keep_alive = out.version_minor == 1 ? !HasOption(out.connection_options, "close")
                                          : HasOption(out.connection_options, "keep-alive");
  if (out.status == 101) {
    for (const Header& h : out.headers) {
      if (EqualsIgnoreCase(h.name, "upgrade")) out.upgrade = h.value;
    }
  }
  if (request_method == "HEAD" || out.status < 200 || out.status == 204 || out.status == 304) {
    out.framing = BodyFraming::kNone;
  } else if (!f.transfer_codings.empty()) {
    if (f.content_length_count > 0) {
      return HttpError{502, "upstream sent both Content-Length and Transfer-Encoding"};
    }
    if (f.transfer_codings.back() == "chunked") {
      if (f.transfer_codings.size() != 1) {
        return HttpError{502, "upstream sent a transfer coding other than chunked"};
      }
      out.framing = BodyFraming::kChunked;
    } else {
      out.framing = BodyFraming::kUntilClose;
      out.keep_alive = false;
    }
  } else if (f.content_length_count > 1) {
    return HttpError{502, "upstream sent duplicate Content-Length"};
  } else if (f.content_length_count == 1) {
    if (!f.content_length_ok) return HttpError{502, "upstream sent a malformed Content-Length"};
    out.content_length = f.content_length;
    out.framing = BodyFraming::kLength;
  } else {
    out.framing = BodyFraming::kUntilClose;
    out.keep_alive = false;
  }
  return std::nullopt;
}

bool IsHopByHop(std::string_view name, const std::vector<std::string>& connection_options) {
  static constexpr std::string_view kFixed[] = {"connection", "keep-alive",        "te",
                                                "trailer",    "transfer-encoding", "upgrade"};
  for (std::string_view h : kFixed) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  if (name.size() >= 6 && EqualsIgnoreCase(name.substr(0, 6), "proxy-")) return true;
  for (const std::string& o : connection_options) {
    if (EqualsIgnoreCase(name, o)) return true;
  }
  return false;
}

void ChunkedDecoder::Fail(int status, std::string reason) {
  state_ = State::kError;
  error_ = HttpError{status, std::move(reason)};
}

// chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
void ChunkedDecoder::FinishSizeLine() {
  std::string_view s = line_;
  size_t i = 0;
  uint64_t size = 0;
  while (i < s.size() && std::isxdigit(static_cast<unsigned char>(s[i]))) {
    if (i >= 15) return Fail(error_status_, "chunk size too large");
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    ++i;
  }
  if (i == 0) return Fail(error_status_, "invalid chunk size");
  auto skip_bws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t start = i;
    while (i < s.size() && IsTokenChar(static_cast<unsigned char>(s[i]))) ++i;
    return i > start;
  };
  while (i < s.size()) {
    skip_bws();
    if (i >= s.size() || s[i] != ';') return Fail(error_status_, "invalid chunk extension");
    ++i;
    skip_bws();
    if (!token()) return Fail(error_status_, "invalid chunk extension name");
    size_t before = i;
    skip_bws();
    if (i < s.size() && s[i] == '=') {
      ++i;
      skip_bws();
      if (i < s.size() && s[i] == '"') {
        ++i;
        bool closed = false;
        while (i < s.size()) {
          unsigned char c = static_cast<unsigned char>(s[i]);
          if (c == '"') {
            closed = true;
            ++i;
            break;
          }
          if (c == '\\') {
            if (++i >= s.size()) break;
            c = static_cast<unsigned char>(s[i]);
          }
          if ((c < 0x20 && c != '\t') || c == 0x7f) break;
          ++i;
        }
        if (!closed) return Fail(error_status_, "invalid chunk extension value");
      } else if (!token()) {
        return Fail(error_status_, "invalid chunk extension value");
      }
    } else {
      i = before;  // a name without a value; the loop wants ';' or the end next
    }
  }
  if (total_ + size > max_body_ || total_ + size < total_) {
    return Fail(error_status_ == 400 ? 413 : error_status_, "body too large");
  }
  line_.clear();
  if (size == 0) {
    state_ = State::kTrailerLine;
  } else {
    remaining_ = size;
    total_ += size;
    state_ = State::kData;
  }
}

void ChunkedDecoder::FinishTrailerLine() {
  if (line_.empty()) {
    state_ = State::kDone;
    return;
  }
  std::vector<std::string_view> lines = {"", line_};
  std::vector<Header> ignored;
  if (auto err = ParseHeaderLines(lines, ignored, error_status_)) {
    return Fail(error_status_, "malformed trailer: " + err->reason);
  }
  line_.clear();
}

ChunkedDecoder::Step ChunkedDecoder::Feed(std::string_view in) {
  Step step;
  constexpr size_t kMaxLine = 4096;
  while (step.consumed < in.size()) {
    switch (state_) {
      case State::kDone:
      case State::kError:
        return step;
      case State::kData: {
        if (!step.data.empty()) return step;  // one data span per step
        size_t n = std::min<uint64_t>(remaining_, in.size() - step.consumed);
        step.data = in.substr(step.consumed, n);
        step.consumed += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCrlf;
        break;
      }
      case State::kDataCrlf: {
        char c = in[step.consumed++];
        line_.push_back(c);
        if (line_ == "\r") break;
        if (line_ != "\r\n") {
          Fail(error_status_, "chunk data not followed by CRLF");
          return step;
        }
        line_.clear();
        state_ = State::kSizeLine;
        break;
      }
      case State::kSizeLine:
      case State::kTrailerLine: {
        char c = in[step.consumed++];
        if (!line_.empty() && line_.back() == '\r') {
          if (c != '\n') {
            Fail(error_status_, "bare CR in chunked framing");
            return step;
          }
          line_.pop_back();
          if (state_ == State::kSizeLine) {
            FinishSizeLine();
          } else {
            FinishTrailerLine();
          }
          if (state_ == State::kError || state_ == State::kDone) return step;
          break;
        }
        if (c == '\n') {
          Fail(error_status_, "bare LF in chunked framing");
          return step;
        }
        line_.push_back(c);
        if (state_ == State::kTrailerLine && ++trailer_bytes_ > 64 * 1024) {
          Fail(error_status_ == 400 ? 431 : error_status_, "trailer section too large");
          return step;
        }
        if (line_.size() > kMaxLine) {
          Fail(error_status_, "chunk line too long");
          return step;
        }
        break;
      }
    }
  }
  return step;
}

}  // namespace adhoc::router
