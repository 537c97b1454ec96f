#include <gtest/gtest.h>

#include "common/paths.h"
#include "state/store.h"
#include "state/test_support.h"

namespace adhoc::state {
namespace {

using testing::TempDir;

class SnapshotRecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    store_ = std::move(opened).value();
  }

  Snapshot Make(const std::string& name, const std::string& env) {
    return Snapshot{
        name, env, R"([{"image":"backend","tree":"abc"}])", "/h/snapshots/" + name, 1000, 20, 3, 0};
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>(1'700'000'000'000);
  std::unique_ptr<Store> store_;
};

TEST_F(SnapshotRecordsTest, PutFindListDelete) {
  ASSERT_TRUE(store_->PutSnapshot(Make("preprod", "demo")).ok());
  ASSERT_TRUE(store_->PutSnapshot(Make("after-qa", "demo")).ok());
  auto found = store_->FindSnapshot("preprod");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->env, "demo");
  EXPECT_EQ((*found)->database_bytes, 1000);
  EXPECT_EQ((*found)->redis_keys, 3);
  EXPECT_EQ((*found)->created_at, 1'700'000'000'000) << "stamped by the store";
  auto all = store_->ListSnapshots();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "after-qa") << "by name";
  ASSERT_TRUE(store_->DeleteSnapshot("preprod").ok());
  EXPECT_FALSE(store_->FindSnapshot("preprod")->has_value());
  EXPECT_TRUE(store_->DeleteSnapshot("preprod").ok()) << "absent is fine";
}

TEST_F(SnapshotRecordsTest, ANameIsTakenOnce) {
  ASSERT_TRUE(store_->PutSnapshot(Make("preprod", "demo")).ok());
  Status again = store_->PutSnapshot(Make("preprod", "other"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind(), ErrorKind::kConflict);
  EXPECT_EQ((*store_->FindSnapshot("preprod"))->env, "demo") << "the first one is kept";
}

TEST_F(SnapshotRecordsTest, SnapshotsOutliveTheirEnvironment) {
  Environment e;
  e.name = "demo";
  e.address_block = "127.1.2.0/24";
  ASSERT_TRUE(store_->PutEnvironment(e).ok());
  ASSERT_TRUE(store_->PutSnapshot(Make("preprod", "demo")).ok());
  ASSERT_TRUE(store_->DeleteEnvironment("demo").ok());
  EXPECT_TRUE(store_->FindSnapshot("preprod")->has_value());
}

}  // namespace
}  // namespace adhoc::state
