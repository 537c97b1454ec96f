#include "server/lifetimes.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "spec/duration.h"

namespace adhoc::server {

namespace {

std::string Iso(state::Millis ms) {
  std::time_t t = ms / 1000;
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::optional<state::Millis> ExpiresAt(const state::Environment& env) {
  if (!env.ttl_seconds || *env.ttl_seconds <= 0) return std::nullopt;
  return env.last_request_at.value_or(env.created_at) + *env.ttl_seconds * 1000;
}

state::Millis IdleSince(const state::Environment& env, state::Millis awake_since) {
  return std::max({env.last_request_at.value_or(0), env.created_at, awake_since});
}

Due WhatIsDue(const state::Environment& env, state::Millis now, state::Millis awake_since) {
  using state::EnvStatus;
  const bool settled = env.status == EnvStatus::kRunning || env.status == EnvStatus::kSleeping ||
                       env.status == EnvStatus::kFailed;
  if (!settled) return Due::kNothing;
  if (auto expires = ExpiresAt(env); expires && now >= *expires) return Due::kExpire;
  if (env.status == EnvStatus::kRunning && env.sleep_after_seconds &&
      *env.sleep_after_seconds > 0 &&
      now >= IdleSince(env, awake_since) + *env.sleep_after_seconds * 1000)
    return Due::kSleep;
  return Due::kNothing;
}

std::string ExpiryReason(const state::Environment& env) {
  std::string ttl =
      env.ttl_seconds ? spec::FormatDuration(std::chrono::seconds(*env.ttl_seconds)) : "-";
  return "past its ttl of " + ttl +
         (env.last_request_at ? " (last request " + Iso(*env.last_request_at) + ")"
                              : " (no request since it was created " + Iso(env.created_at) + ")");
}

}  // namespace adhoc::server
