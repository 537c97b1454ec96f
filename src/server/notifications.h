// What a project's [notify] webhook is told about its environments' TTL, and when (issue 13):
// pure functions of an environment's record, so the loop and the tests agree and tests need
// no clock (as lifetimes.h, which says when the TTL runs out).
//
// - `expiring`: once per expiry time, from `before` ahead of it (ExpiresAt in lifetimes.h)
//   until it comes. A request moves the expiry later; the moved expiry is warned of again
//   once the expiry last warned of has passed (so at most one warning per TTL, even when
//   `before` is longer than the TTL and requests keep coming). An expiry moved earlier (a
//   shorter ttl applied) is warned of at once. An expiry already reached gets no `expiring`
//   (its `expired` follows).
// - `expired`: when the TTL destroys the environment (the control plane's loop or `gc`).
// No TTL (or "never"): never a notice. Only settled environments (running, sleeping, failed)
// are warned: one being created, updated or destroyed is looked at again later.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "spec/spec.h"
#include "state/records.h"

namespace adhoc::server {

enum class NoticeKind { kExpiring, kExpired };

// "expiring", "expired": the event's name in the body and in the events table.
std::string_view ToString(NoticeKind kind);

// The expiry an `expiring` notice is due for at `now`, or nullopt. `warned`: the expiry last
// warned of (the store's ExpiryWarning), nullopt when none was.
std::optional<state::Millis> ExpiringDue(const state::Environment& env, state::Millis now,
                                         spec::Seconds before, std::optional<state::Millis> warned);

// The POSTed body: {"event","env","project","url","owner","expires_at","last_request_at"};
// times are RFC 3339 in UTC with milliseconds ("2026-11-27T14:46:15.123Z", as docs/api.md),
// last_request_at null before any request, expires_at null without a TTL.
nlohmann::json NoticeJson(NoticeKind kind, const state::Environment& env,
                          const std::string& project);

// RFC 3339 in UTC with milliseconds.
std::string Rfc3339(state::Millis ms);

}  // namespace adhoc::server
