#include "server/notifications.h"

#include <fmt/format.h>

#include <ctime>

#include "server/lifetimes.h"

namespace adhoc::server {

std::string_view ToString(NoticeKind kind) {
  return kind == NoticeKind::kExpiring ? "expiring" : "expired";
}

std::optional<state::Millis> ExpiringDue(const state::Environment& env, state::Millis now,
                                         spec::Seconds before,
                                         std::optional<state::Millis> warned) {
  using state::EnvStatus;
  if (env.status != EnvStatus::kRunning && env.status != EnvStatus::kSleeping &&
      env.status != EnvStatus::kFailed)
    return std::nullopt;
  auto expires = ExpiresAt(env);
  if (!expires || now >= *expires || now < *expires - before.count() * 1000) return std::nullopt;
  if (!warned) return expires;
  if (*expires == *warned) return std::nullopt;
  // Moved earlier: the warning said too late a time. Moved later: again once it proved wrong.
  if (*expires < *warned || now >= *warned) return expires;
  return std::nullopt;
}

std::string Rfc3339(state::Millis ms) {
  std::time_t t = ms / 1000;
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

nlohmann::json NoticeJson(NoticeKind kind, const state::Environment& env,
                          const std::string& project) {
  auto expires = ExpiresAt(env);
  return {{"event", ToString(kind)},
          {"env", env.name},
          {"project", project},
          {"url", env.url},
          {"owner", env.owner},
          {"expires_at", expires ? nlohmann::json(Rfc3339(*expires)) : nlohmann::json()},
          {"last_request_at",
           env.last_request_at ? nlohmann::json(Rfc3339(*env.last_request_at)) : nlohmann::json()}};
}

}  // namespace adhoc::server
