#include "server/api_auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "common/paths.h"

namespace adhoc::server {

namespace {

bool SameToken(std::string_view given, std::string_view token) {
  return !token.empty() && given.size() == token.size() &&
         CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool BearerMatches(std::string_view authorization, std::string_view token) {
  authorization = Trim(authorization);
  size_t space = authorization.find(' ');
  if (space == std::string_view::npos || !IEquals(authorization.substr(0, space), "Bearer"))
    return false;
  return SameToken(Trim(authorization.substr(space + 1)), token);
}

bool CookieMatches(std::string_view cookie, std::string_view token) {
  bool match = false;
  while (!cookie.empty()) {
    size_t semi = cookie.find(';');
    std::string_view pair = Trim(cookie.substr(0, semi));
    cookie = semi == std::string_view::npos ? std::string_view() : cookie.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || Trim(pair.substr(0, eq)) != kApiCookie) continue;
    // Every cookie of that name is compared: no early exit that times the position.
    match |= SameToken(Trim(pair.substr(eq + 1)), token);
  }
  return match;
}

bool ReadOnly(std::string_view method) { return method == "GET" || method == "HEAD"; }

}  // namespace

Result<std::string> LoadOrCreateApiToken(const std::filesystem::path& home) {
  std::filesystem::path file = paths::ApiToken(home);
  struct stat st {};
  if (stat(file.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0)
      return Failed(file.string() +
                    " can be read by other users, so its token may have leaked: remove it and "
                    "start the control plane again for a new one");
    std::ifstream in(file);
    std::string token;
    std::getline(in, token);
    token = std::string(Trim(token));
    if (token.size() < 32)
      return Failed(file.string() + " holds no token of at least 32 characters: remove it and " +
                    "start the control plane again for a new one");
    return token;
  }
  std::string token = RandomHex(32);
  std::filesystem::path temp = file;
  temp += ".new";
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Failed("writing " + temp.string() + ": " + strerror(errno));
  std::string line = token + "\n";
  bool written = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  written = fsync(fd) == 0 && written;
  close(fd);
  if (!written || rename(temp.c_str(), file.c_str()) != 0) {
    std::string why = strerror(errno);
    unlink(temp.c_str());
    return Failed("writing " + file.string() + ": " + why);
  }
  return token;
}

ApiAuthDecision CheckApiAuth(const ApiCredentials& request, std::string_view token) {
  if (!request.authorization.empty() && BearerMatches(request.authorization, token))
    return {ApiAuth::kAllowed, ""};
  if (request.has_token_param) {
    if (ReadOnly(request.method) && SameToken(request.token_param, token))
      return {ApiAuth::kTokenLink, ""};
    return {ApiAuth::kUnauthorized, "the token in the link is not this control plane's"};
  }
  if (!request.cookie.empty() && CookieMatches(request.cookie, token)) {
    if (ReadOnly(request.method) || request.dashboard_header) return {ApiAuth::kAllowed, ""};
    return {ApiAuth::kForbidden,
            "a change made with the dashboard's cookie needs the X-Adhoc-Dashboard header; "
            "scripts send Authorization: Bearer <token>"};
  }
  if (!request.authorization.empty())
    return {ApiAuth::kUnauthorized, "the Authorization header holds no valid bearer token"};
  return {ApiAuth::kUnauthorized,
          "the control plane's API needs a token: Authorization: Bearer <token> (`adhoc "
          "dashboard` prints it)"};
}

std::string ApiSessionCookie(std::string_view token, bool secure) {
  std::string cookie = std::string(kApiCookie) + "=" + std::string(token) +
                       "; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict";
  if (secure) cookie += "; Secure";
  return cookie;
}

std::string QueryWithoutApiToken(std::string_view query) {
  std::string out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::string_view name = part.substr(0, part.find('='));
    if (name == kApiTokenParam || part.empty()) continue;
    if (!out.empty()) out += '&';
    out += part;
  }
  return out;
}

}  // namespace adhoc::server
