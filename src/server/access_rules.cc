#include "server/access_rules.h"

#include <set>

#include "spec/placeholders.h"

namespace adhoc::server {

using nlohmann::json;

namespace {

// "access.token (envs/demo.toml:12)": how errors name a key.
std::string KeyAt(const spec::Access& access, const std::string& key) {
  return "access." + key + " (" + access.Where(key).ToString() + ")";
}

// `text` with its placeholders replaced; an error names the placeholder and why it has no value.
Result<std::string> Render(const std::string& text, const std::string& what,
                           const AccessValues& values) {
  std::string problem;
  auto rendered =
      spec::RenderPlaceholders(text, [&](const spec::Placeholder& p) -> std::optional<std::string> {
        const std::string shown = "'{" + p.Key() + "}'";
        if (p.name == "secret") {
          problem = shown + ": secrets are not built yet; use '{random." + p.part +
                    "}' (adhoc makes it once and `adhoc status` shows it)";
          return std::nullopt;
        }
        static const std::set<std::string> kSimple = {"env", "hostname", "url"};
        bool known =
            (kSimple.count(p.name) && p.part.empty()) || (p.name == "random" && !p.part.empty());
        if (!known) {
          problem = "unknown placeholder " + shown +
                    " (access rules may use {env}, {hostname}, {url} and {random.NAME})";
          return std::nullopt;
        }
        std::optional<std::string> value = values(p.Key());
        if (!value) problem = "no value for " + shown;
        return value;
      });
  if (!rendered.ok())
    return Failed(what + ": " + (problem.empty() ? rendered.error().message() : problem));
  return *rendered;
}

bool HasControlCharacter(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

}  // namespace

Result<std::optional<RenderedAccess>> RenderAccess(const spec::Project& project,
                                                   const spec::EnvFile& env_file,
                                                   const AccessValues& values) {
  std::optional<spec::Access> access = spec::EffectiveAccess(project, env_file);
  if (!access) return std::optional<RenderedAccess>();
  RenderedAccess out;
  if (access->basic_auth) {
    const std::string what = KeyAt(*access, "basic_auth");
    for (const std::string& entry : *access->basic_auth) {
      // The user is what comes before the first ':' as written: a placeholder holds none.
      size_t colon = entry.find(':');
      if (colon == std::string::npos) return Failed(what + ": expected \"user:password\"");
      ADHOC_ASSIGN_OR_RETURN(std::string user, Render(entry.substr(0, colon), what, values));
      ADHOC_ASSIGN_OR_RETURN(std::string password, Render(entry.substr(colon + 1), what, values));
      if (user.empty() || user.find(':') != std::string::npos)
        return Failed(what + ": the user '" + user + "' must not be empty nor hold ':'");
      if (password.empty()) return Failed(what + ": the password of '" + user + "' is empty");
      if (HasControlCharacter(user) || HasControlCharacter(password))
        return Failed(what + ": control characters in the user or password of '" + user + "'");
      out.users.push_back({std::move(user), std::move(password)});
    }
  }
  if (access->token && !access->token->empty()) {
    const std::string what = KeyAt(*access, "token");
    ADHOC_ASSIGN_OR_RETURN(out.token, Render(*access->token, what, values));
    // It travels in a URL and a cookie, and must not be guessed.
    for (char c : out.token)
      if (!IsTokenChar(c))
        return Failed(what + ": '" + *access->token + "' renders to '" + out.token +
                      "', which holds characters other than A-Z a-z 0-9 - _ . ~");
    if (out.token.size() < 16)
      return Failed(what + ": '" + *access->token + "' renders to '" + out.token + "' (" +
                    std::to_string(out.token.size()) +
                    " characters); a token needs 16 or more, such as '{random.access_token}'");
  }
  if (access->allow) out.allow = *access->allow;
  if (access->public_paths) out.public_paths = *access->public_paths;
  if (!out.public_paths.empty() && out.users.empty() && out.token.empty())
    return Failed(KeyAt(*access, "public_paths") +
                  ": public paths need basic_auth or token (public from what?)");
  if (out.users.empty() && out.token.empty() && out.allow.empty())
    return std::optional<RenderedAccess>();
  return std::optional<RenderedAccess>(std::move(out));
}

AccessValues AccessValuesFor(const EnvironmentFacts& facts, state::Store& store) {
  // The processes' own lookup, so {random.NAME} is the one value the environment has; the
  // names access rules may not use never reach it (Render refuses them first).
  return PlaceholderValues(facts, LaunchRequest{}, store);
}

json AccessFeedJson(const RenderedAccess& access) {
  json out = json::object();
  if (!access.allow.empty()) out["allow"] = access.allow;
  if (!access.users.empty()) {
    json users = json::array();
    for (const AccessUser& u : access.users)
      users.push_back({{"user", u.user}, {"password", u.password}});
    out["basic_auth"] = users;
  }
  if (!access.token.empty()) out["token"] = access.token;
  if (!access.public_paths.empty()) out["public_paths"] = access.public_paths;
  return out;
}

json AccessViewJson(const RenderedAccess& access, const std::string& url) {
  json out = AccessFeedJson(access);
  if (!access.token.empty()) out["token_url"] = url + "?adhoc_token=" + access.token;
  return out;
}

}  // namespace adhoc::server
