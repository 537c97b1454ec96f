#include "server/notifications.h"

#include <gtest/gtest.h>

namespace adhoc::server {
namespace {

constexpr state::Millis kHour = 3600 * 1000;
const spec::Seconds kDay{24 * 3600};

// Created at 100h with a 3-day TTL: expires at 172h, warned from 148h with the default 1d.
state::Environment Env(state::EnvStatus status = state::EnvStatus::kRunning) {
  state::Environment e;
  e.name = "demo";
  e.status = status;
  e.owner = "brian";
  e.url = "http://demo.localhost:8080";
  e.created_at = 100 * kHour;
  e.ttl_seconds = 72 * 3600;
  return e;
}

TEST(NotificationsTest, ExpiringIsDueFromBeforeUntilTheExpiry) {
  auto e = Env();
  EXPECT_EQ(ExpiringDue(e, 148 * kHour - 1, kDay, std::nullopt), std::nullopt);
  EXPECT_EQ(ExpiringDue(e, 148 * kHour, kDay, std::nullopt), 172 * kHour);
  EXPECT_EQ(ExpiringDue(e, 172 * kHour - 1, kDay, std::nullopt), 172 * kHour);
  EXPECT_EQ(ExpiringDue(e, 172 * kHour, kDay, std::nullopt), std::nullopt)
      << "reached: `expired` comes instead";
  EXPECT_EQ(ExpiringDue(e, 160 * kHour, spec::Seconds(3600), std::nullopt), std::nullopt)
      << "a shorter `before` warns later";
  EXPECT_EQ(ExpiringDue(e, 171 * kHour, spec::Seconds(3600), std::nullopt), 172 * kHour);
}

TEST(NotificationsTest, OncePerExpiryTime) {
  auto e = Env();
  EXPECT_EQ(ExpiringDue(e, 150 * kHour, kDay, 172 * kHour), std::nullopt);
  EXPECT_EQ(ExpiringDue(e, 171 * kHour, kDay, 172 * kHour), std::nullopt);
}

TEST(NotificationsTest, AMovedExpiryIsWarnedOfWhenItApproaches) {
  auto e = Env();
  // Warned at 148h for 172h; a request at 150h moves the expiry to 222h.
  e.last_request_at = 150 * kHour;
  EXPECT_EQ(ExpiringDue(e, 151 * kHour, kDay, 172 * kHour), std::nullopt) << "far away again";
  EXPECT_EQ(ExpiringDue(e, 198 * kHour - 1, kDay, 172 * kHour), std::nullopt);
  EXPECT_EQ(ExpiringDue(e, 198 * kHour, kDay, 172 * kHour), 222 * kHour);
  EXPECT_EQ(ExpiringDue(e, 199 * kHour, kDay, 222 * kHour), std::nullopt) << "then once";
}

TEST(NotificationsTest, ABeforeLongerThanTheTtlWarnsAtMostOncePerTtl) {
  // ttl 4s, before 1d: warned at once; requests every second move the expiry each time.
  auto e = Env();
  e.ttl_seconds = 4;
  const state::Millis t0 = e.created_at;
  EXPECT_EQ(ExpiringDue(e, t0 + 100, kDay, std::nullopt), t0 + 4000);
  e.last_request_at = t0 + 1000;
  EXPECT_EQ(ExpiringDue(e, t0 + 1100, kDay, t0 + 4000), std::nullopt);
  e.last_request_at = t0 + 3900;
  EXPECT_EQ(ExpiringDue(e, t0 + 3950, kDay, t0 + 4000), std::nullopt);
  // The warned time passed and it still lives: the new expiry is warned of once.
  EXPECT_EQ(ExpiringDue(e, t0 + 4000, kDay, t0 + 4000), t0 + 7900);
  EXPECT_EQ(ExpiringDue(e, t0 + 4100, kDay, t0 + 7900), std::nullopt);
}

TEST(NotificationsTest, AnEarlierExpiryIsWarnedOfAtOnce) {
  auto e = Env();
  // Warned for 172h; an `up` with ttl = "2d" makes it 148h.
  e.ttl_seconds = 48 * 3600;
  EXPECT_EQ(ExpiringDue(e, 130 * kHour, kDay, 172 * kHour), 148 * kHour);
}

TEST(NotificationsTest, NeverAndUnsettledEnvironmentsAreNotWarned) {
  auto never = Env();
  never.ttl_seconds.reset();
  EXPECT_EQ(ExpiringDue(never, 100000 * kHour, kDay, std::nullopt), std::nullopt);
  never.ttl_seconds = 0;  // "never" as recorded by an older writer
  EXPECT_EQ(ExpiringDue(never, 100000 * kHour, kDay, std::nullopt), std::nullopt);
  for (auto status :
       {state::EnvStatus::kCreating, state::EnvStatus::kUpdating, state::EnvStatus::kDestroying})
    EXPECT_EQ(ExpiringDue(Env(status), 150 * kHour, kDay, std::nullopt), std::nullopt)
        << state::ToString(status);
  for (auto status : {state::EnvStatus::kSleeping, state::EnvStatus::kFailed})
    EXPECT_EQ(ExpiringDue(Env(status), 150 * kHour, kDay, std::nullopt), 172 * kHour)
        << state::ToString(status);
}

TEST(NotificationsTest, TheBodyCarriesUrlOwnerAndRfc3339Times) {
  auto e = Env();
  e.created_at = 1'795'792'189'000;
  e.last_request_at = 1'795'792'189'722;  // 2026-11-27T15:09:49.722Z
  e.ttl_seconds = 3600;
  auto body = NoticeJson(NoticeKind::kExpiring, e, "ublog");
  EXPECT_EQ(body, nlohmann::json::parse(R"({"event":"expiring","env":"demo","project":"ublog",
      "url":"http://demo.localhost:8080","owner":"brian",
      "expires_at":"2026-11-27T16:09:49.722Z","last_request_at":"2026-11-27T15:09:49.722Z"})"))
      << body.dump();
  e.last_request_at.reset();
  auto expired = NoticeJson(NoticeKind::kExpired, e, "ublog");
  EXPECT_EQ(expired["event"], "expired");
  EXPECT_TRUE(expired["last_request_at"].is_null());
  EXPECT_EQ(expired["expires_at"], "2026-11-27T16:09:49.000Z");
}

}  // namespace
}  // namespace adhoc::server
