// When an environment's time is up, decided from its record alone (pure, so the loop, `ls`
// and `gc` agree and tests need no clock):
//
// - TTL: `ttl` counts from the last request the router counted for the environment
//   (last_request_at; before any request, from its creation). Health checks, deploys, beat
//   and workers never go through the router, so they never count. Past it, the environment
//   is destroyed. No ttl (or "never"): never.
// - Idle sleep: `sleep_after` counts from the later of its last request, its creation and
//   `awake_since`: when it was last woken or its first `up` ended (the control plane
//   remembers that; a restart of the control plane counts as a wake, so a restart never puts
//   everything to sleep at once). Only a running environment falls asleep.
#pragma once

#include <optional>
#include <string>

#include "state/records.h"

namespace adhoc::server {

enum class Due { kNothing, kExpire, kSleep };

// When the environment's TTL runs out (ms since the epoch); nullopt when it has none.
std::optional<state::Millis> ExpiresAt(const state::Environment& env);

// Since when the environment counts as idle.
state::Millis IdleSince(const state::Environment& env, state::Millis awake_since);

// What the loop must do with `env` at `now`. An environment in the middle of an operation
// (creating, updating, destroying) is left alone; expiry wins over sleep.
Due WhatIsDue(const state::Environment& env, state::Millis now, state::Millis awake_since);

// "past its ttl of 3d (last request 2026-01-01T10:00:00Z)": for events and logs.
std::string ExpiryReason(const state::Environment& env);

}  // namespace adhoc::server
