// What `ls` and `status` show, from a real store and a fleet on fakes: 1,000 recorded
// environments list correctly (each with its own figures, and the total), TTLs and disk
// figures come out as the record and the last measurement say.
#include "server/status_view.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/paths.h"
#include "server/test_fakes.h"

namespace adhoc::server {
namespace {

using testing::ServerFixture;

class StatusViewTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    fleet_ = std::make_unique<Fleet>(runtime_, clock_, *store_, routes_, factory_,
                                     FleetOptions{.home = home()});
  }

  state::Environment Record(int i) {
    state::Environment e;
    e.name = "env-" + std::to_string(1000 + i);
    e.status = i % 2 ? state::EnvStatus::kSleeping : state::EnvStatus::kRunning;
    e.owner = "owner-" + std::to_string(i % 7);
    e.created_at = 1'000'000 + i;
    if (i % 3 == 0) e.last_request_at = 2'000'000 + i;
    if (i % 5 != 0) e.ttl_seconds = 3600;
    e.hostname = e.name + ".localhost";
    e.url = "http://" + e.hostname + ":8080/";
    e.address_block =
        "127." + std::to_string(100 + i / 250) + "." + std::to_string(i % 250) + ".0/24";
    return e;
  }

  std::unique_ptr<Fleet> fleet_;
};

TEST_F(StatusViewTest, AThousandRecordedEnvironmentsListCorrectly) {
  constexpr int kEnvs = 1000;
  ASSERT_TRUE(store_
                  ->Transact([&](state::Store& tx) -> Status {
                    for (int i = 0; i < kEnvs; ++i) {
                      auto e = Record(i);
                      ADHOC_RETURN_IF_ERROR(Status(tx.PutEnvironment(e)));
                      ADHOC_RETURN_IF_ERROR(tx.PutVersion(
                          {e.name, "backend", "v" + std::to_string(i), "c", "t", "/r", 0}));
                    }
                    return OkStatus();
                  })
                  .ok());
  // One measured environment: its disk figures are shown, the others have none yet.
  std::filesystem::create_directories(paths::RedisDir(home(), "env-1000"));
  std::ofstream(paths::RedisDir(home(), "env-1000") / "appendonly.aof") << std::string(10000, 'x');
  std::filesystem::create_directories(paths::StaticDir(home(), "env-1000"));
  std::ofstream(paths::StaticDir(home(), "env-1000") / "a.css") << std::string(5000, 'y');
  DiskUsage disk(home(), 1);  // no cluster in this home: no database figure
  disk.Refresh({"env-1000"});

  auto list = ListJson(*store_, *fleet_, Costs{home(), &disk});
  ASSERT_TRUE(list.ok()) << list.error().message();
  const auto& envs = (*list)["environments"];
  ASSERT_EQ(envs.size(), static_cast<size_t>(kEnvs));
  for (int i = 0; i < kEnvs; ++i) {
    const auto& j = envs[i];
    auto e = Record(i);
    ASSERT_EQ(j["name"], e.name) << "listed by name";
    EXPECT_EQ(j["status"], i % 2 ? "sleeping" : "running") << e.name;
    EXPECT_EQ(j["owner"], e.owner) << e.name;
    EXPECT_EQ(j["versions"]["backend"]["ref"], "v" + std::to_string(i)) << e.name;
    EXPECT_EQ(j["memory_bytes"], 0) << e.name << ": nothing of it runs here";
    if (e.ttl_seconds) {
      EXPECT_EQ(j["expires_ms"], e.last_request_at.value_or(e.created_at) + 3'600'000) << e.name;
    } else {
      EXPECT_FALSE(j.contains("expires_ms")) << e.name;
    }
    EXPECT_EQ(j.contains("last_request_ms"), i % 3 == 0) << e.name;
    EXPECT_EQ(j.contains("disk"), i == 0) << e.name;
  }
  EXPECT_GE(envs[0]["disk"]["redis_bytes"].get<uint64_t>(), 10000u) << envs[0]["disk"];
  EXPECT_GE(envs[0]["disk"]["files_bytes"].get<uint64_t>(), 5000u) << envs[0]["disk"];
  EXPECT_EQ(envs[0]["disk"]["database_bytes"], 0);
  const auto& total = (*list)["total"];
  EXPECT_EQ(total["environments"], kEnvs);
  EXPECT_EQ(total["running"], kEnvs / 2);
  EXPECT_EQ(total["sleeping"], kEnvs / 2);
  EXPECT_EQ(total["disk_bytes"], envs[0]["disk"]["total_bytes"]);
}

}  // namespace
}  // namespace adhoc::server
