// Fakes for the control plane's logic tests (not part of the library): a runtime that records
// what it starts and stops, a route sink that records what the router would be told, a task
// factory with health the test decides, resources that only record, and a fixture with a real
// state store in a temporary folder. Every event goes to one ordered log, so a test can assert
// the order of starts, route changes, drains and stops.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/paths.h"
#include "common/test_support.h"
#include "runtime/fake_runtime.h"
#include "server/env_resources.h"
#include "server/fleet.h"
#include "server/route_sink.h"
#include "server/task_launch.h"
#include "spec/loader.h"
#include "state/store.h"

namespace adhoc::server::testing {

// One ordered log of everything the fakes saw.
class EventLog {
 public:
  void Add(const std::string& e) {
    std::lock_guard lock(mu_);
    events_.push_back(e);
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  // Index of the first event starting with `prefix` (-1 when none).
  int Find(const std::string& prefix) const {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < events_.size(); ++i)
      if (events_[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    return -1;
  }
  std::string Dump() const {
    std::string out;
    for (const auto& e : events()) out += "  " + e + "\n";
    return out;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    events_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

class RecordingRuntime : public runtime::FakeRuntime {
 public:
  explicit RecordingRuntime(EventLog& log) : log_(log) {}
  Result<runtime::TaskHandle> Start(const runtime::TaskSpec& spec) override {
    auto h = FakeRuntime::Start(spec);
    log_.Add((h.ok() ? "start " : "start-failed ") + spec.id);
    return h;
  }
  Status Stop(const runtime::TaskHandle& handle) override {
    if (Inspect(handle).kind == runtime::TaskState::kRunning) log_.Add("stop " + handle.id);
    return FakeRuntime::Stop(handle);
  }
  Result<runtime::ExitStatus> RunToCompletion(
      const runtime::TaskSpec& spec, std::chrono::milliseconds timeout,
      const std::function<void(const std::string& line)>& on_line) override {
    log_.Add("run " + spec.id);
    return FakeRuntime::RunToCompletion(spec, timeout, on_line);
  }

 private:
  EventLog& log_;
};

// The router: records each environment's targets; in-flight counts per address are set by the
// test and count down by one per question (requests finishing).
class FakeRouteSink : public RouteSink {
 public:
  explicit FakeRouteSink(EventLog& log) : log_(log) {}
  Status PutEnv(const nlohmann::json& env) override {
    std::string targets;
    for (const auto& r : env["routes"])
      if (r.contains("targets"))
        for (const auto& t : r["targets"])
          targets += (targets.empty() ? "" : ",") + t["id"].get<std::string>();
    std::lock_guard lock(mu_);
    envs_[env["name"]] = env;
    log_.Add("route " + env["name"].get<std::string>() + " [" + targets + "]");
    return OkStatus();
  }
  Status RemoveEnv(const std::string& name) override {
    std::lock_guard lock(mu_);
    envs_.erase(name);
    log_.Add("route-remove " + name);
    return OkStatus();
  }
  Status ReplaceAll(const nlohmann::json& envs) override {
    std::lock_guard lock(mu_);
    envs_.clear();
    for (const auto& e : envs) envs_[e["name"]] = e;
    log_.Add("route-all");
    return OkStatus();
  }
  Result<int> InFlight(const std::string& address) override {
    std::lock_guard lock(mu_);
    int& n = in_flight_[address];
    log_.Add("in-flight " + address + " " + std::to_string(n));
    if (n < 0) return 1;  // never drains
    int now = n;
    if (n > 0) --n;
    return now;
  }
  // `n` requests in flight at `address`; -1: they never finish.
  void SetInFlight(const std::string& address, int n) {
    std::lock_guard lock(mu_);
    in_flight_[address] = n;
  }
  nlohmann::json Env(const std::string& name) {
    std::lock_guard lock(mu_);
    return envs_.count(name) ? envs_[name] : nlohmann::json();
  }

 private:
  EventLog& log_;
  std::mutex mu_;
  std::map<std::string, nlohmann::json> envs_;
  std::map<std::string, int> in_flight_;
};

// Health decided by the test, per address (default healthy).
class FakeHealth {
 public:
  void Set(const std::string& address, bool healthy) {
    std::lock_guard lock(mu_);
    healthy_[address] = healthy;
  }
  bool Get(const std::string& address) {
    std::lock_guard lock(mu_);
    auto it = healthy_.find(address);
    return it == healthy_.end() ? default_ : it->second;
  }
  // For every address not Set.
  void SetDefault(bool healthy) {
    std::lock_guard lock(mu_);
    default_ = healthy;
  }

 private:
  std::mutex mu_;
  std::map<std::string, bool> healthy_;
  bool default_ = true;
};

class FakeProber : public runtime::Prober {
 public:
  FakeProber(FakeHealth& health, std::string address) : health_(health), address_(address) {}
  runtime::ProbeResult Probe(std::chrono::milliseconds) override {
    bool ok = health_.Get(address_);
    return {ok, ok ? "HTTP 200" : "HTTP 503"};
  }

 private:
  FakeHealth& health_;
  std::string address_;
};

class FakeTaskFactory : public TaskFactory {
 public:
  FakeTaskFactory(std::filesystem::path home, FakeHealth& health) : home_(home), health_(health) {}
  Result<runtime::TaskSpec> Make(const LaunchContext& context,
                                 const LaunchRequest& request) override {
    runtime::TaskSpec spec;
    spec.id = request.task_id;
    spec.task_folder = paths::TaskDir(home_, context.facts.env, request.task_id);
    spec.log_path = paths::TaskLog(home_, context.facts.env, request.process, request.task_id);
    spec.command = request.command;
    spec.address = request.address;
    spec.port = request.port.value_or(0);
    spec.stop_signal = request.stop_signal;
    return spec;
  }
  Result<std::shared_ptr<runtime::Prober>> ProberFor(const LaunchContext&,
                                                     const spec::Service& service,
                                                     const std::string& address,
                                                     const runtime::TaskSpec&) override {
    if (!service.health) return std::shared_ptr<runtime::Prober>();
    return std::shared_ptr<runtime::Prober>(std::make_shared<FakeProber>(health_, address));
  }

 private:
  std::filesystem::path home_;
  FakeHealth& health_;
};

// Resources that only record, and fail where the test says.
class FakeResources : public EnvResources {
 public:
  explicit FakeResources(EventLog& log) : log_(log) {}
  Result<BuiltRelease> EnsureRelease(const spec::Image& image, const git::ResolvedVersion& version,
                                     const std::filesystem::path&) override {
    ADHOC_RETURN_IF_ERROR(Maybe("release " + image.name));
    return BuiltRelease{"/releases/" + image.name + "/" + version.tree, true};
  }
  Status EnsurePostgres() override { return Maybe("postgres"); }
  Status EnsureRouter() override { return Maybe("router"); }
  Status CheckRouterPort() override { return Maybe("router-port"); }
  std::string PostgresHost() const override { return "127.99.0.1"; }
  int PostgresPort() const override { return 5432; }
  Result<state::DatabaseCredentials> CreateDatabase(const std::string& env,
                                                    const std::string& database) override {
    ADHOC_RETURN_IF_ERROR(Maybe("create-database " + database));
    return state::DatabaseCredentials{env, "env_" + env, "secret", database};
  }
  Result<state::DatabaseCredentials> CreateRole(const std::string& env,
                                                const std::string& database) override {
    ADHOC_RETURN_IF_ERROR(Maybe("create-role " + database));
    return state::DatabaseCredentials{env, "env_" + env, "secret", database};
  }
  Status DropDatabases(const std::string& env) override { return Maybe("drop-databases " + env); }
  Result<RedisEndpoint> EnsureRedis(const std::string& env, const std::string& address,
                                    int) override {
    ADHOC_RETURN_IF_ERROR(Maybe("redis " + env));
    return RedisEndpoint{address, 6379, "pw"};
  }
  Status StopRedis(const std::string& env, const std::string&) override {
    return Maybe("stop-redis " + env);
  }
  Status DestroyRedis(const std::string& env, const std::string&) override {
    return Maybe("destroy-redis " + env);
  }
  Status CreateFolders(const std::string& env) override { return Maybe("folders " + env); }
  Status RemoveFolders(const std::string& env) override { return Maybe("remove-folders " + env); }
  Result<TemplateCopy> CopyDatabaseTemplate(const std::string& env, const std::string& database,
                                            const std::string& key, const std::string&,
                                            const TemplateBuild& build) override {
    bool built = !templates_.count(key);
    if (built) {
      ADHOC_RETURN_IF_ERROR(build({env, "adhoc_tpl_" + key, "tpl-secret", "adhoc_tpl_" + key}));
      templates_.insert(key);
    }
    ADHOC_RETURN_IF_ERROR(Maybe("copy-template " + key + " " + database));
    return TemplateCopy{built, false};
  }
  Result<bool> CopyStaticCache(const std::string& env, const std::string& key, const std::string&,
                               const std::function<Status()>& build) override {
    bool built = !static_caches_.count(key);
    if (built) {
      ADHOC_RETURN_IF_ERROR(build());
      static_caches_.insert(key);
    }
    ADHOC_RETURN_IF_ERROR(Maybe("copy-static " + key + " " + env));
    return built;
  }
  Result<int64_t> DumpDatabase(const std::string& database,
                               const std::filesystem::path& file) override {
    ADHOC_RETURN_IF_ERROR(Maybe("dump-database " + database));
    return WriteFake(file, "database " + database);
  }
  Status LoadDatabase(const std::string& env, const std::string& database,
                      const std::filesystem::path& file) override {
    if (!std::filesystem::exists(file)) return NotFound("no file " + file.string());
    return Maybe("load-database " + database + " from " + file.filename().string());
  }
  Result<int64_t> DumpRedis(const RedisEndpoint& redis,
                            const std::filesystem::path& file) override {
    ADHOC_RETURN_IF_ERROR(Maybe("dump-redis " + redis.host));
    WriteFake(file, "redis " + redis.host);
    return 2;
  }
  Result<int64_t> LoadRedis(const RedisEndpoint& redis,
                            const std::filesystem::path& file) override {
    if (!std::filesystem::exists(file)) return NotFound("no file " + file.string());
    ADHOC_RETURN_IF_ERROR(Maybe("load-redis " + redis.host + " from " + file.filename().string()));
    return 2;
  }
  Status KeepStartDatabase(const std::string& env, const std::string& database) override {
    return Maybe("keep-start " + database);
  }
  Status ResetDatabase(const std::string& env, const std::string& database) override {
    return Maybe("reset-database " + database);
  }

  // The next call named `what` fails.
  void FailOn(const std::string& what) { fail_.insert(what); }

 private:
  Status Maybe(const std::string& what) {
    log_.Add(what);
    if (fail_.erase(what)) return Failed(what + " failed (injected)");
    return OkStatus();
  }
  static int64_t WriteFake(const std::filesystem::path& file, const std::string& text) {
    std::ofstream(file) << text;
    return static_cast<int64_t>(text.size());
  }
  EventLog& log_;
  std::set<std::string> fail_;
  std::set<std::string> templates_, static_caches_;
};

// A real state store in a temporary home, with the fakes around it.
class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = state::Store::Open(paths::StateDb(home()));
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(*store);
  }

  std::filesystem::path home() const { return dir_.path() / "home"; }

  // The tasks of `env` as recorded now (a copy: safe to loop over).
  std::vector<state::Task> Tasks(const std::string& env = "demo") {
    auto tasks = store_->ListTasks(env);
    EXPECT_TRUE(tasks.ok());
    return tasks.ok() ? *tasks : std::vector<state::Task>{};
  }

  // A recorded environment with an address block, as `allocate` leaves it.
  void RecordEnvironment(const std::string& env, const std::string& block) {
    state::Environment e;
    e.name = env;
    e.status = state::EnvStatus::kRunning;
    e.hostname = env + ".localhost";
    e.url = "http://" + env + ".localhost:8080/";
    e.address_block = block;
    ASSERT_TRUE(store_->PutEnvironment(e).ok());
    ASSERT_TRUE(store_->AllocateBlock(env, block).ok());
  }

  // A context of `project_toml` (and `env_toml`), every service of generation `generation`.
  std::shared_ptr<const LaunchContext> Context(const std::string& env,
                                               const std::string& project_toml,
                                               const std::string& generation,
                                               const std::string& env_toml = "") {
    auto project = spec::ParseProject(project_toml);
    EXPECT_TRUE(project.ok()) << spec::FormatDiagnostics(project.diagnostics);
    auto env_file = spec::ParseEnvFile(env_toml, env, "envs/" + env + ".toml", &project.value);
    EXPECT_TRUE(env_file.ok()) << spec::FormatDiagnostics(env_file.diagnostics);
    auto context = std::make_shared<LaunchContext>();
    context->project = std::make_shared<const spec::Project>(project.value);
    context->env_file = std::make_shared<const spec::EnvFile>(env_file.value);
    context->facts.home = home();
    context->facts.env = env;
    context->facts.hostname = env + ".localhost";
    context->facts.url = "http://" + env + ".localhost:8080/";
    for (const auto& s : context->project->services) context->generations[s.name] = generation;
    return context;
  }

  testutil::TempDir dir_;
  std::unique_ptr<state::Store> store_;
  EventLog log_;
  RecordingRuntime runtime_{log_};
  runtime::FakeClock clock_;
  FakeRouteSink routes_{log_};
  FakeHealth health_;
  FakeTaskFactory factory_{home(), health_};
};

}  // namespace adhoc::server::testing
