#include "server/local_resources.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/paths.h"
#include "resources/databases.h"
#include "resources/env_folders.h"
#include "resources/postgres_cluster.h"
#include "resources/redis.h"
#include "resources/release_cache.h"
#include "resources/snapshots.h"
#include "resources/static_cache.h"
#include "resources/templates.h"
#include "runtime/addresses.h"

namespace adhoc::server {

namespace fs = std::filesystem;

LocalResources::LocalResources(fs::path home, int postgres_port, RouterLink& router,
                               std::function<void()> on_router_started, ForkServers* fork_servers)
    : home_(std::move(home)),
      postgres_port_(postgres_port),
      router_(router),
      on_router_started_(std::move(on_router_started)),
      fork_servers_(fork_servers) {}

LocalResources::~LocalResources() {
  {
    std::lock_guard lock(spares_mu_);
    spares_stop_ = true;
  }
  spares_cv_.notify_all();
  if (spares_thread_.joinable()) spares_thread_.join();
}

Result<BuiltRelease> LocalResources::EnsureRelease(const spec::Image& image,
                                                   const git::ResolvedVersion& version,
                                                   const fs::path& repo) {
  resources::ReleaseCache cache(home_);
  ADHOC_ASSIGN_OR_RETURN(auto release, cache.Ensure(image.name, version, repo, image.build));
  // Without its fork server the release's programs start by exec: slower, never wrong.
  if (fork_servers_ && !image.python.empty())
    (void)fork_servers_->Ensure(release.path, image.python, image.preload);
  return BuiltRelease{release.path, release.built_now};
}

std::string LocalResources::PostgresHost() const { return runtime::BaseAddress(home_); }

Status LocalResources::CheckHomeKept() const {
  // Starting a daemon writes into the home; into a removed one (rm -rf) that would bring it back.
  std::error_code ec;
  if (!fs::exists(paths::StateDb(home_), ec))
    return Failed("the home " + home_.string() + " was removed");
  return OkStatus();
}

Status LocalResources::EnsurePostgres() {
  std::lock_guard lock(base_mu_);
  ADHOC_RETURN_IF_ERROR(CheckHomeKept());
  resources::PostgresCluster cluster(home_,
                                     {.listen_address = PostgresHost(), .port = postgres_port_});
  return std::move(cluster.Start()).context("starting the base PostgreSQL");
}

Status LocalResources::StopPostgres() {
  std::lock_guard lock(base_mu_);
  resources::PostgresCluster cluster(home_,
                                     {.listen_address = PostgresHost(), .port = postgres_port_});
  return cluster.Stop();
}

Status LocalResources::EnsureRouter() {
  bool started = false;
  {
    std::lock_guard lock(base_mu_);
    ADHOC_RETURN_IF_ERROR(CheckHomeKept());
    ADHOC_RETURN_IF_ERROR(router_.EnsureRunning(&started));
  }
  if (started && on_router_started_) on_router_started_();
  return OkStatus();
}

Status LocalResources::CheckRouterPort() { return router_.CheckPortFree(); }

Result<state::DatabaseCredentials> LocalResources::CreateDatabase(const std::string& env,
                                                                  const std::string& database) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  resources::EnvironmentDatabases dbs(*admin, PostgresHost(), postgres_port_);
  ADHOC_ASSIGN_OR_RETURN(auto creds, dbs.CreateEnvironmentDatabase(env, database, true));
  return state::DatabaseCredentials{env, creds.user, creds.password, creds.database};
}

Result<state::DatabaseCredentials> LocalResources::CreateRole(const std::string& env,
                                                              const std::string& database) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  resources::EnvironmentDatabases dbs(*admin, PostgresHost(), postgres_port_);
  ADHOC_ASSIGN_OR_RETURN(auto creds, dbs.CreateEnvironmentDatabase(env, database, true, false));
  return state::DatabaseCredentials{env, creds.user, creds.password, creds.database};
}

Status LocalResources::DropDatabases(const std::string& env) {
  std::error_code ec;
  // No cluster was ever made in this home: nothing to drop.
  if (!fs::exists(paths::PostgresData(home_) / "PG_VERSION", ec)) return OkStatus();
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  resources::EnvironmentDatabases dbs(*admin, PostgresHost(), postgres_port_);
  auto drop_all = [&]() -> Status {
    ADHOC_ASSIGN_OR_RETURN(auto databases, dbs.DatabasesOf(env));
    for (const auto& name : databases)
      ADHOC_RETURN_IF_ERROR(dbs.DropEnvironmentDatabase(env, name));
    return dbs.DropEnvironmentRole(env);
  };
  // A control plane killed in the middle of making them leaves its statement running in the
  // cluster (a CREATE DATABASE for the role commits after its client died): wait it out.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Status dropped = drop_all();
  while (!dropped.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    dropped = drop_all();
  }
  return dropped;
}

std::shared_ptr<std::mutex> LocalResources::RedisLock(const std::string& env) {
  std::lock_guard lock(redis_mu_);
  auto& m = redis_locks_[env];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

Result<RedisEndpoint> LocalResources::EnsureRedis(const std::string& env,
                                                  const std::string& address, int memory_mib) {
  auto env_lock = RedisLock(env);
  std::lock_guard held(*env_lock);
  {
    std::lock_guard lock(redis_mu_);
    redis_stopped_.erase(env);
  }
  return StartRedis(env, address, memory_mib);
}

Status LocalResources::KeepRedisRunning(const std::string& env, const std::string& address,
                                        int memory_mib) {
  auto env_lock = RedisLock(env);
  std::lock_guard held(*env_lock);
  {
    std::lock_guard lock(redis_mu_);
    if (redis_stopped_.count(env)) return OkStatus();
  }
  return StartRedis(env, address, memory_mib);
}

Result<RedisEndpoint> LocalResources::StartRedis(const std::string& env, const std::string& address,
                                                 int memory_mib) {
  ADHOC_RETURN_IF_ERROR(CheckHomeKept());
  // Start() adopts a running server (changing its bound when it differs) or starts one.
  resources::RedisInstance redis(home_, env, {.host = address, .memory_mib = memory_mib});
  ADHOC_RETURN_IF_ERROR(redis.Start());
  auto c = redis.credentials();
  return RedisEndpoint{c.host, c.port, c.password};
}

Status LocalResources::StopRedis(const std::string& env, const std::string& address) {
  auto env_lock = RedisLock(env);
  std::lock_guard held(*env_lock);
  {
    std::lock_guard lock(redis_mu_);
    redis_stopped_.insert(env);
  }
  resources::RedisInstance redis(home_, env, {.host = address});
  if (!redis.Adopt().ok()) return OkStatus();
  return redis.Stop();
}

Status LocalResources::DestroyRedis(const std::string& env, const std::string& address) {
  auto env_lock = RedisLock(env);
  std::lock_guard held(*env_lock);
  {
    std::lock_guard lock(redis_mu_);
    redis_stopped_.insert(env);
  }
  std::error_code ec;
  if (!fs::exists(paths::RedisDir(home_, env), ec)) return OkStatus();
  resources::RedisInstance redis(home_, env, {.host = address.empty() ? "127.0.0.1" : address});
  return std::move(redis.Destroy()).context("removing Redis");
}

Status LocalResources::CreateFolders(const std::string& env) {
  return resources::CreateEnvironmentFolders(home_, env);
}

Status LocalResources::RemoveFolders(const std::string& env) {
  ADHOC_RETURN_IF_ERROR(resources::RemoveEnvironmentFolders(home_, env));
  std::error_code ec;
  fs::remove(paths::AccessLog(home_, env), ec);
  return OkStatus();
}

std::shared_ptr<std::mutex> LocalResources::KeyLock(const std::string& key) {
  std::lock_guard lock(keys_mu_);
  auto& mu = key_locks_[key];
  if (!mu) mu = std::make_shared<std::mutex>();
  return mu;
}

Result<EnvResources::TemplateCopy> LocalResources::CopyDatabaseTemplate(
    const std::string& env, const std::string& database, const std::string& key,
    const std::string& release, const TemplateBuild& build) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  resources::DatabaseTemplates templates(
      *admin,
      [this](const std::string& db) {
        return resources::ConnectPostgresAdmin(home_, postgres_port_, db);
      },
      PostgresHost(), postgres_port_);
  bool built = false;
  {
    auto key_lock = KeyLock(key);
    std::lock_guard building(*key_lock);
    ADHOC_ASSIGN_OR_RETURN(bool ready, templates.Ready(key));
    if (!ready) {
      ADHOC_ASSIGN_OR_RETURN(auto creds, templates.BeginBuild(key, release));
      Status made =
          build(state::DatabaseCredentials{env, creds.user, creds.password, creds.database});
      if (made.ok()) made = templates.FinishBuild(key);
      if (!made.ok()) {
        (void)templates.Remove(key);  // a failed build leaves no template behind
        return std::move(made)
            .context("building template database '" + creds.database + "'")
            .error();
      }
      built = true;
    }
  }
  TemplateCopy copy{built, false};
  {
    // Not while the spare is being made: it would be copied again instead of taken.
    auto key_lock = KeyLock(key);
    std::lock_guard taking(*key_lock);
    ADHOC_ASSIGN_OR_RETURN(copy.spare, templates.CopyInto(key, env, database));
  }
  QueueSpare(key);
  return copy;
}

void LocalResources::QueueSpare(const std::string& key) {
  std::lock_guard lock(spares_mu_);
  if (spares_stop_) return;
  if (std::find(spares_wanted_.begin(), spares_wanted_.end(), key) == spares_wanted_.end())
    spares_wanted_.push_back(key);
  if (!spares_thread_.joinable()) spares_thread_ = std::thread([this] { MakeSpares(); });
  spares_cv_.notify_all();
}

void LocalResources::MakeSpares() {
  std::unique_lock lock(spares_mu_);
  while (true) {
    spares_cv_.wait(lock, [&] { return spares_stop_ || !spares_wanted_.empty(); });
    if (spares_stop_) return;
    // A moment later: the copy just taken belongs to an `up` whose services are starting.
    if (spares_cv_.wait_for(lock, kSpareDelay, [&] { return spares_stop_; })) return;
    std::string key = spares_wanted_.front();
    spares_wanted_.pop_front();
    lock.unlock();
    // Connecting only: a cluster stopped meanwhile (base down, a removed home) stays stopped.
    if (auto admin = resources::ConnectPostgresAdmin(home_, postgres_port_); admin.ok()) {
      resources::DatabaseTemplates templates(**admin, nullptr, PostgresHost(), postgres_port_);
      auto key_lock = KeyLock(key);
      std::lock_guard making(*key_lock);
      (void)templates.MakeSpare(key);
    }
    lock.lock();
  }
}

Status LocalResources::RemoveUnfinishedTemplates() {
  std::error_code ec;
  if (!fs::exists(paths::PostgresData(home_) / "PG_VERSION", ec)) return OkStatus();
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  resources::DatabaseTemplates templates(*admin, nullptr, PostgresHost(), postgres_port_);
  return Status(templates.RemoveUnfinished());
}

Result<bool> LocalResources::CopyStaticCache(const std::string& env, const std::string& key,
                                             const std::string& release,
                                             const std::function<Status()>& build) {
  resources::StaticCache cache(home_);
  const fs::path folder = paths::StaticDir(home_, env);
  auto key_lock = KeyLock("static-" + key);
  std::lock_guard building(*key_lock);
  if (cache.Has(key)) {
    ADHOC_RETURN_IF_ERROR(cache.CopyInto(key, folder));
    return false;
  }
  ADHOC_RETURN_IF_ERROR(build());
  ADHOC_RETURN_IF_ERROR(cache.Save(key, release, folder));
  return true;
}

Result<int64_t> LocalResources::DumpDatabase(const std::string& database, const fs::path& file) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto tools, resources::PgToolsFor(home_, postgres_port_));
  return resources::DumpDatabase(tools, database, file);
}

Status LocalResources::LoadDatabase(const std::string& env, const std::string& database,
                                    const fs::path& file) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto role, resources::RoleNameFor(env));
  {
    // Empty whatever made it (a clone of a migrated template has tables already).
    ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
    ADHOC_RETURN_IF_ERROR(resources::RecreateEmpty(*admin, env, role, database));
  }
  ADHOC_ASSIGN_OR_RETURN(auto tools, resources::PgToolsFor(home_, postgres_port_));
  return resources::LoadDatabase(tools, file, database, role);
}

Result<int64_t> LocalResources::DumpRedis(const RedisEndpoint& redis, const fs::path& file) {
  auto client = resources::MakeRedisClient(redis.host, redis.port, redis.password);
  ADHOC_ASSIGN_OR_RETURN(auto count, resources::DumpRedisKeys(*client, file));
  return count.keys;
}

Result<int64_t> LocalResources::LoadRedis(const RedisEndpoint& redis, const fs::path& file) {
  auto client = resources::MakeRedisClient(redis.host, redis.port, redis.password);
  ADHOC_ASSIGN_OR_RETURN(auto count, resources::RestoreRedisKeys(*client, file));
  return count.keys;
}

Status LocalResources::KeepStartDatabase(const std::string& env, const std::string& database) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto role, resources::RoleNameFor(env));
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  return resources::MakeStartCopy(*admin, env, role, database, resources::StartCopyName(env));
}

Status LocalResources::ResetDatabase(const std::string& env, const std::string& database) {
  ADHOC_RETURN_IF_ERROR(EnsurePostgres());
  ADHOC_ASSIGN_OR_RETURN(auto role, resources::RoleNameFor(env));
  ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
  return resources::SwapInStartCopy(*admin, env, role, resources::StartCopyName(env), database);
}

}  // namespace adhoc::server
