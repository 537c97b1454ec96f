#include "plan/recorded.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace adhoc::plan {
namespace {

TEST(RecordedTest, RoundTripsThroughTheStore) {
  auto dir = std::filesystem::temp_directory_path() / ("recorded-" + std::to_string(getpid()));
  auto store = state::Store::Open(dir / "state.db");
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto none = LoadRecorded(**store, "demo");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  Recorded r;
  r.services = {{"api", "f1"}};
  r.service_counts = {{"api", 2}};
  r.env_fingerprint = "e1";
  r.database = true;
  state::Environment env;
  env.name = "demo";
  env.spec_json = RecordedJson(r).dump();
  ASSERT_TRUE((*store)->PutEnvironment(env).ok());
  ASSERT_TRUE((*store)->PutVersion({"demo", "backend", "v1", "c1", "t1", "/r", 0}).ok());

  auto back = LoadRecorded(**store, "demo");
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->services, r.services);
  EXPECT_EQ((*back)->service_counts, r.service_counts);
  EXPECT_EQ((*back)->env_fingerprint, "e1");
  EXPECT_TRUE((*back)->database);
  EXPECT_FALSE((*back)->redis);
  EXPECT_EQ((*back)->versions.at("backend").tree, "t1");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace adhoc::plan
