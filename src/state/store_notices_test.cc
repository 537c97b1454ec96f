#include <gtest/gtest.h>

#include "common/paths.h"
#include "state/store.h"
#include "state/test_support.h"

namespace adhoc::state {
namespace {

using testing::TempDir;

class ExpiryWarningsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    store_ = std::move(opened).value();
    Environment e;
    e.name = "demo";
    ASSERT_TRUE(store_->PutEnvironment(e).ok());
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>(1'700'000'000'000);
  std::unique_ptr<Store> store_;
};

TEST_F(ExpiryWarningsTest, OneWarningPerEnvironmentTheLatestKept) {
  EXPECT_TRUE(store_->ListExpiryWarnings()->empty());
  ASSERT_TRUE(store_->PutExpiryWarning({"demo", 5000, 0}).ok());
  clock_->Advance(10);
  ASSERT_TRUE(store_->PutExpiryWarning({"demo", 9000, 0}).ok());
  auto all = store_->ListExpiryWarnings();
  ASSERT_TRUE(all.ok()) << all.error().message();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->at("demo").expires_at, 9000);
  EXPECT_EQ(all->at("demo").warned_at, 1'700'000'000'010) << "stamped by the store";
}

TEST_F(ExpiryWarningsTest, SurviveAReopenAndGoWithTheirEnvironment) {
  ASSERT_TRUE(store_->PutExpiryWarning({"demo", 5000, 0}).ok());
  store_.reset();
  auto reopened = Store::Open(paths::StateDb(dir_.path()), {.clock = clock_});
  ASSERT_TRUE(reopened.ok());
  store_ = std::move(reopened).value();
  EXPECT_EQ(store_->ListExpiryWarnings()->at("demo").expires_at, 5000)
      << "a restarted control plane knows what it warned of";
  ASSERT_TRUE(store_->DeleteEnvironment("demo").ok());
  EXPECT_TRUE(store_->ListExpiryWarnings()->empty());
  // A new environment of the same name starts unwarned; an unknown one cannot be warned.
  Status unknown = store_->PutExpiryWarning({"ghost", 1, 0});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind(), ErrorKind::kNotFound);
}

}  // namespace
}  // namespace adhoc::state
