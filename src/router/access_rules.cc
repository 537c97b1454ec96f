#include "router/access_rules.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace adhoc::router {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(name, value) for each "name=value" of a ';'-separated cookie string; stops
// early when f returns true.
template <typename F>
bool ForEachCookie(std::string_view header, F f) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = Trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view value = Trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (f(Trim(pair.substr(0, eq)), value)) return true;
  }
  return false;
}

// The value of the token parameter in a query, if present.
std::optional<std::string_view> TokenParam(std::string_view query) {
  while (true) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (item.size() >= kTokenParam.size() + 1 &&
        item.substr(0, kTokenParam.size()) == kTokenParam && item[kTokenParam.size()] == '=') {
      return item.substr(kTokenParam.size() + 1);
    }
    if (amp == std::string_view::npos) return std::nullopt;
    query.remove_prefix(amp + 1);
  }
}

bool IsBasicScheme(std::string_view value, std::string_view& credentials) {
  if (value.size() < 6) return false;
  static constexpr std::string_view kBasic = "basic";
  for (size_t i = 0; i < 5; ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kBasic[i]) return false;
  }
  if (value[5] != ' ') return false;
  credentials = Trim(value.substr(6));
  return true;
}

}  // namespace

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::array<uint8_t, 4> v4;
  if (inet_pton(AF_INET, buf, v4.data()) == 1) return IpFromV4(v4);
  std::array<uint8_t, 16> v6;
  if (inet_pton(AF_INET6, buf, v6.data()) == 1) return IpFromV6(v6);
  return std::nullopt;
}

IpAddress IpFromV4(const std::array<uint8_t, 4>& v4) {
  IpAddress a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  std::memcpy(a.bytes.data() + 12, v4.data(), 4);
  return a;
}

IpAddress IpFromV6(const std::array<uint8_t, 16>& v6) {
  IpAddress a;
  a.bytes = v6;
  return a;
}

bool Cidr::Contains(const IpAddress& address) const {
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(address.bytes.data(), network.bytes.data(), static_cast<size_t>(full)) != 0) {
    return false;
  }
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address.bytes[full] & mask) == network.bytes[full];
}

Result<Cidr> ParseCidr(std::string_view text) {
  auto bad = [&](const char* why) {
    return BadInput("'" + std::string(text) + "': " + why +
                    " (want an address or network: 10.0.0.0/8, 192.168.1.7, fd00::/8)");
  };
  size_t slash = text.find('/');
  std::string_view address_text = text.substr(0, slash);
  std::optional<IpAddress> address = ParseIpAddress(address_text);
  if (!address) return bad("not an IP address");
  bool v4 = address_text.find(':') == std::string_view::npos;
  int max = v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix < 0 ||
        prefix > max) {
      return bad("bad prefix length");
    }
  }
  Cidr c;
  c.prefix = v4 ? prefix + 96 : prefix;
  c.network = *address;
  for (int bit = c.prefix; bit < 128; ++bit) {
    c.network.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return c;
}

void AccessRules::AddBasicUser(std::string_view user, std::string_view password) {
  std::string pair(user);
  pair += ':';
  pair += password;
  basic_credentials.push_back(Base64Encode(pair));
}

AccessDecision CheckAccess(const AccessRules& rules, const RequestHead& req,
                           const IpAddress& client) {
  AccessDecision d;
  if (!rules.allow.empty()) {
    bool allowed = false;
    for (const Cidr& c : rules.allow) {
      if (c.Contains(client)) {
        allowed = true;
        break;
      }
    }
    if (!allowed) {
      d.verdict = AccessVerdict::kForbidden;
      d.why = "the client's address is not allowed";
      return d;
    }
  }
  if (!rules.needs_credentials()) return d;

  // Credentials are looked for (and consumed) on every path, public ones included, so they
  // never reach the upstream.
  bool valid = false;
  if (!rules.basic_credentials.empty()) {
    for (const Header& h : req.headers) {
      std::string_view credentials;
      if (!EqualsIgnoreCase(h.name, "authorization") || !IsBasicScheme(h.value, credentials)) {
        continue;
      }
      for (const std::string& expected : rules.basic_credentials) {
        if (ConstantTimeEquals(credentials, expected)) {
          valid = true;
          d.consumed_authorization = &h;
        }
      }
      break;  // only the first Authorization is ours to judge
    }
  }
  if (!rules.token.empty()) {
    for (const Header& h : req.headers) {
      if (!EqualsIgnoreCase(h.name, "cookie")) continue;
      ForEachCookie(h.value, [&](std::string_view name, std::string_view value) {
        if (name != kAccessCookie) return false;
        d.strip_cookie = true;
        if (ConstantTimeEquals(value, rules.token)) valid = true;
        return false;
      });
    }
    if (req.has_query) {
      if (std::optional<std::string_view> link = TokenParam(req.query)) {
        if (ConstantTimeEquals(*link, rules.token)) {
          d.verdict = AccessVerdict::kTokenLink;
          return d;
        }
        d.verdict = AccessVerdict::kUnauthorized;
        d.why = "the link's access token is not valid (or no longer)";
        return d;
      }
    }
  }
  if (valid) return d;
  for (const PathPattern& p : rules.public_paths) {
    if (p.Matches(req.path)) return d;
  }
  d.verdict = AccessVerdict::kUnauthorized;
  d.why = rules.basic_credentials.empty()
              ? "this environment is private: open it with the link that carries its token"
              : "this environment is private: sign in, or open it with its token link";
  return d;
}

std::string WithoutAccessCookie(std::string_view header) {
  std::string out;
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = Trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && Trim(pair.substr(0, eq)) == kAccessCookie) continue;
    if (!out.empty()) out += "; ";
    out += pair;
  }
  return out;
}

std::string WithoutTokenParam(std::string_view query) {
  std::string out;
  while (true) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    bool ours = item.size() >= kTokenParam.size() + 1 &&
                item.substr(0, kTokenParam.size()) == kTokenParam &&
                item[kTokenParam.size()] == '=';
    if (!ours && !item.empty()) {
      if (!out.empty()) out += '&';
      out += item;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (size_t left = data.size() - i) {
    uint32_t v = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += left == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace adhoc::router
