// Shared by the resources tests that start real servers (a PostgreSQL cluster, Redis).
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "resources/databases.h"
#include "resources/postgres_cluster.h"

namespace adhoc::resources::test_servers {

// A loopback address no other test process uses, nor this one twice (one counter for every
// test file of the binary): 127.<from pid>.<from pid>.<counter>.
inline std::string UniqueLoopback() {
  static std::atomic<int> counter{0};
  int pid = getpid();
  return "127." + std::to_string(1 + (pid / 250) % 250) + "." + std::to_string(1 + pid % 250) +
         "." + std::to_string(2 + counter++ % 250);
}

// A cluster of its own in a temporary home, started for each test, with a superuser session;
// stopped and removed after it, also when SetUp failed half way.
class RealClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "adhoc-db-test-XXXXXX").string();
    home_ = mkdtemp(tmpl.data());
    cluster_ = std::make_unique<PostgresCluster>(
        home_, PostgresClusterOptions{.listen_address = UniqueLoopback()});
    auto started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started.error().message();
    auto admin = ConnectPostgresAdmin(home_, cluster_->port());
    ASSERT_TRUE(admin.ok()) << admin.error().message();
    admin_ = std::move(*admin);
  }
  void TearDown() override {
    admin_.reset();
    if (cluster_) (void)cluster_->Destroy();
    std::error_code ec;
    std::filesystem::remove_all(home_, ec);
  }

  Result<std::unique_ptr<SqlSession>> ConnectAs(const PostgresCredentials& c,
                                                const std::string& database) {
    return ConnectPostgres({.host = c.host,
                            .port = c.port,
                            .database = database,
                            .user = c.user,
                            .password = c.password});
  }

  std::filesystem::path home_;
  std::unique_ptr<PostgresCluster> cluster_;
  std::unique_ptr<SqlSession> admin_;
};

}  // namespace adhoc::resources::test_servers
