#include "server/executor.h"

#include <fmt/format.h>

#include <mutex>
#include <set>
#include <thread>

#include "common/hash.h"
#include "common/paths.h"
#include "plan/recorded.h"
#include "resources/release_cache.h"
#include "runtime/addresses.h"
#include "server/access_rules.h"
#include "server/data_ops.h"
#include "spec/loader.h"
#include "spec/names.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string RouterUrl(const std::string& hostname, int port) {
  return port == 80 ? "http://" + hostname + "/"
                    : "http://" + hostname + ":" + std::to_string(port) + "/";
}

std::string ShortVersion(const plan::Version& v) {
  return v.commit.empty() ? v.ref : fmt::format("{} ({})", v.ref, v.commit.substr(0, 7));
}

json UndoNone() { return {{"undo", "none"}}; }

// What a rollback cannot undo of a task that ran (journaled with its step, for recovery).
std::string TaskRanNote(const std::string& task, const std::string& image, const std::string& ref) {
  return fmt::format("{} ran with {} {}; a rollback does not undo what it did", task, image, ref);
}

// The TTL and idle time the record keeps: the env file's, else (sleep_after) adhoc.toml's;
// "never" (0s) and absent are both nullopt in the record (lifetimes.h reads it so).
std::optional<int64_t> RecordedTtl(const spec::EnvFile& file) {
  if (!file.ttl || file.ttl->count() <= 0) return std::nullopt;
  return file.ttl->count();
}

std::optional<int64_t> RecordedSleepAfter(const spec::Project& project, const spec::EnvFile& file) {
  std::optional<spec::Seconds> d = file.sleep_after ? file.sleep_after : project.sleep_after;
  if (!d || d->count() <= 0) return std::nullopt;
  return d->count();
}

// Progress shared by threads that start services at once: one event at a time.
class SerializedProgress : public Progress {
 public:
  explicit SerializedProgress(Progress& inner) : inner_(inner) {}
  void OperationStarted(int64_t id, const std::string& env, const std::string& kind) override {
    std::lock_guard lock(mu_);
    inner_.OperationStarted(id, env, kind);
  }
  void StepStarted(const std::string& step) override {
    std::lock_guard lock(mu_);
    inner_.StepStarted(step);
  }
  void StepDone(const std::string& step, long long ms, const std::string& detail) override {
    std::lock_guard lock(mu_);
    inner_.StepDone(step, ms, detail);
  }
  void StepFailed(const std::string& step, long long ms, const std::string& message) override {
    std::lock_guard lock(mu_);
    inner_.StepFailed(step, ms, message);
  }
  void Log(const std::string& process, const std::string& task, const std::string& line) override {
    std::lock_guard lock(mu_);
    inner_.Log(process, task, line);
  }
  void Note(const std::string& message) override {
    std::lock_guard lock(mu_);
    inner_.Note(message);
  }

 private:
  Progress& inner_;
  std::mutex mu_;
};

}  // namespace

std::string StepName(const plan::Step& step) {
  switch (step.action) {
    case plan::Action::kBuildRelease:
      return "release " + step.target;
    case plan::Action::kCreateDatabase:
      return "database";
    case plan::Action::kStartRedis:
      return "redis";
    case plan::Action::kRunTask:
      return "task " + step.target;
    case plan::Action::kStartService:
    case plan::Action::kRollService:
      return "service " + step.target;
    case plan::Action::kRemoveService:
      return "remove " + step.target;
    case plan::Action::kAddRoutes:
      return "routes " + step.target;
    case plan::Action::kSetAccess:
      return "access " + step.target;
  }
  return step.target;
}

json UndoFor(const plan::Step& step, const std::string& redis_address) {
  switch (step.action) {
    case plan::Action::kCreateDatabase:
      return {{"undo", "drop_databases"}};
    case plan::Action::kStartRedis:
      return {{"undo", "destroy_redis"}, {"address", redis_address}};
    case plan::Action::kRunTask:
      return {{"undo", "none"}, {"note", TaskRanNote(step.target, step.image, step.version.ref)}};
    case plan::Action::kStartService:
    case plan::Action::kRollService:
      return {{"undo", "converge"}, {"service", step.target}};
    default:
      return UndoNone();
  }
}

// What one Apply knows as it goes.
struct Executor::Run {
  const Prepared& prepared;
  JournaledOperation& op;
  Progress& progress;
  bool create = false;
  state::Environment record;
  runtime::AddressBlock block;
  std::map<std::string, fs::path> release_paths;  // image -> built release
  std::shared_ptr<const LaunchContext> old_context;
  std::shared_ptr<const LaunchContext> context;  // made before the first task or service
  std::vector<const plan::Step*> touched;        // steps that started, in order
  bool routes_recorded = false;
  // The database was made empty by this run (no `data`): a migrated template may stand in for
  // the `cache = "database"` tasks, and did once template_copied.
  bool fresh_database = false;
  bool template_copied = false;
  std::mutex mu;  // release_paths, written by releases built at once
};

Executor::Executor(state::Store& store, Fleet& fleet, EnvResources& resources,
                   ExecutorOptions options)
    : store_(store), fleet_(fleet), resources_(resources), options_(std::move(options)) {}

Result<EnvironmentFacts> Executor::LoadFacts(const state::Environment& env,
                                             const spec::Project& project) {
  EnvironmentFacts f;
  f.home = options_.home;
  f.env = env.name;
  f.hostname = env.hostname;
  f.url = env.url;
  ADHOC_ASSIGN_OR_RETURN(auto versions, store_.ListVersions(env.name));
  for (const auto& v : versions) {
    f.version_refs[v.image] = v.ref;
    f.release_paths[v.image] = v.release_path;
  }
  if (project.postgres) {
    auto creds = store_.GetDatabaseCredentials(env.name);
    if (creds.ok()) f.database = *creds;
    f.postgres_host = resources_.PostgresHost();
    f.postgres_port = resources_.PostgresPort();
  }
  if (project.redis) {
    ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(env.address_block));
    ADHOC_ASSIGN_OR_RETURN(
        auto redis, resources_.EnsureRedis(env.name, block.RedisAddress(), project.redis->memory));
    f.redis_host = redis.host;
    f.redis_port = redis.port;
    f.redis_password = redis.password;
  }
  return f;
}

Status Executor::EnsureContext(Run& run) {
  if (run.context) return OkStatus();
  const Prepared& p = run.prepared;
  ADHOC_ASSIGN_OR_RETURN(run.record, store_.GetEnvironment(p.env));
  ADHOC_ASSIGN_OR_RETURN(auto facts, LoadFacts(run.record, *p.project));
  for (const auto& [image, v] : p.resolved) {
    facts.version_refs[image] = v.ref;
    auto built = run.release_paths.find(image);
    if (built != run.release_paths.end()) facts.release_paths[image] = built->second;
  }
  auto context = std::make_shared<LaunchContext>();
  context->project = p.project;
  context->env_file = p.env_file;
  context->facts = std::move(facts);
  context->generations = plan::Applied(p.wanted).services;
  run.context = context;
  return OkStatus();
}

Status Executor::RecordRoutes(const std::string& env, const spec::Project& project,
                              const std::string& hostname) {
  std::vector<state::Route> routes;
  for (const auto& svc : project.services)
    for (const auto& r : svc.routes)
      routes.push_back(
          {env, hostname, r.pattern, svc.priority, svc.name, state::RouteKind::kService, ""});
  if (project.static_files)
    for (const auto& r : project.static_files->routes)
      routes.push_back({env, hostname, r.pattern, std::nullopt, "", state::RouteKind::kFolder,
                        paths::StaticDir(options_.home, env).string()});
  return store_.ReplaceRoutes(env, routes);
}

Result<std::string> Executor::Allocate(Run& run) {
  const Prepared& p = run.prepared;
  state::Environment e;
  e.name = p.env;
  e.status = state::EnvStatus::kCreating;
  e.owner = p.env_file->owner;
  e.ttl_seconds = RecordedTtl(*p.env_file);
  e.sleep_after_seconds = RecordedSleepAfter(*p.project, *p.env_file);
  e.hostname = p.env + "." + p.project->domain;
  e.url = RouterUrl(e.hostname, options_.router_port);
  std::lock_guard allocating(allocate_mu_);
  ADHOC_ASSIGN_OR_RETURN(auto blocks, store_.ListBlocks());
  std::set<runtime::AddressBlock> used;
  for (auto& b : blocks)
    if (auto parsed = runtime::ParseBlock(b.block); parsed.ok()) used.insert(*parsed);
  runtime::BindProbe probe;
  ADHOC_ASSIGN_OR_RETURN(
      auto block, runtime::AllocateBlock(options_.home, used, [&](const runtime::AddressBlock& b) {
        // Something outside adhoc may listen in a block: skip it.
        return probe.CheckFree(b.RedisAddress(), 6379).ok() &&
               probe.CheckFree(b.Address(10), 8000).ok();
      }));
  e.address_block = block.Cidr();
  ADHOC_RETURN_IF_ERROR(store_.Transact([&](state::Store& tx) -> Status {
    ADHOC_RETURN_IF_ERROR(tx.PutEnvironment(e));
    return tx.AllocateBlock(p.env, e.address_block);
  }));
  ADHOC_RETURN_IF_ERROR(resources_.CreateFolders(p.env));
  return e.address_block;
}

Result<std::string> Executor::BuildRelease(Run& run, const plan::Step& step) {
  const Prepared& p = run.prepared;
  const spec::Image* image = p.project->FindImage(step.target);
  if (!image) return Failed("no image '" + step.target + "'");
  ADHOC_ASSIGN_OR_RETURN(auto release,
                         resources_.EnsureRelease(*image, p.resolved.at(step.target), p.repo));
  {
    std::lock_guard lock(run.mu);
    run.release_paths[step.target] = release.path;
  }
  return ShortVersion(step.version) + (release.built_now ? ", built" : ", cached");
}

Result<std::string> Executor::CreateDatabase(Run& run, const plan::Step& step) {
  const Prepared& p = run.prepared;
  run.fresh_database = !run.create || p.env_file->data.kind == spec::DataSource::Kind::kEmpty;
  // A template copy will make the database: only the role now.
  const bool copy_later = run.fresh_database && TemplateWillRun(p);
  ADHOC_ASSIGN_OR_RETURN(auto creds, copy_later ? resources_.CreateRole(p.env, step.target)
                                                : resources_.CreateDatabase(p.env, step.target));
  ADHOC_RETURN_IF_ERROR(store_.PutDatabaseCredentials(creds));
  ADHOC_ASSIGN_OR_RETURN(std::string data, LoadDataIntoDatabase(run, creds.database));
  return creds.database + " owned by " + creds.role + (copy_later ? " (a template's copy)" : "") +
         data;
}

Result<std::string> Executor::StartRedis(Run& run, const plan::Step&) {
  ADHOC_ASSIGN_OR_RETURN(auto redis,
                         resources_.EnsureRedis(run.prepared.env, run.block.RedisAddress(),
                                                run.prepared.project->redis->memory));
  ADHOC_ASSIGN_OR_RETURN(std::string data, LoadDataIntoRedis(run, redis));
  return fmt::format("{}:{}, own password{}", redis.host, redis.port, data);
}

Result<std::string> Executor::RunTask(Run& run, const plan::Step& step) {
  ADHOC_RETURN_IF_ERROR(EnsureContext(run));
  const spec::Task* task = run.prepared.project->FindTask(step.target);
  if (!task) return Failed("no task '" + step.target + "'");
  if (step.phase == plan::TaskPhase::kBeforeDeploy) {
    if (task->cache == spec::Task::Cache::kDatabase && run.fresh_database)
      return RunFromTemplate(run);
    if (task->cache == spec::Task::Cache::kStatic && run.create)
      return RunFromStaticCache(run, *task);
  }
  ADHOC_RETURN_IF_ERROR(RunTaskNow(run, *task, *run.context));
  return std::string("exit 0");
}

Status Executor::RunTaskNow(Run& run, const spec::Task& task, const LaunchContext& context) {
  ADHOC_ASSIGN_OR_RETURN(std::string id, store_.NextTaskId(run.prepared.env, task.name));
  json undo = {{"undo", "stop_task"},
               {"task", id},
               {"note", TaskRanNote(task.name, task.image,
                                    context.facts.version_refs.count(task.image)
                                        ? context.facts.version_refs.at(task.image)
                                        : std::string("?"))}};
  run.op.RecordUndo(undo);
  std::string tail;
  ADHOC_ASSIGN_OR_RETURN(int code, fleet_.RunOnce(run.prepared.env, context,
                                                  TaskLaunch(task, id, run.block.Address(2)),
                                                  task.timeout, run.progress, &tail));
  if (code != 0)
    return Failed(
        fmt::format("{} ({}) exited with status {}; its last lines:{}", task.name, id, code, tail));
  return OkStatus();
}

std::string Executor::CacheKey(const Run& run, const std::vector<const spec::Task*>& tasks) {
  // What the cached tasks' output depends on: their releases (tree and build), commands and
  // [env] layers as written (rendered values differ per environment and do not count).
  const Prepared& p = run.prepared;
  json inputs = json::array();
  for (const spec::Task* t : tasks) {
    json env = json::object();
    for (const auto& v : t->env) env[v.name] = v.value;
    auto release = run.context->facts.release_paths.find(t->image);
    inputs.push_back(
        {t->name, t->image,
         release == run.context->facts.release_paths.end() ? "" : release->second.string(),
         t->command, env});
  }
  inputs.push_back(plan::EnvFingerprint(*p.project, *p.env_file));
  return Sha256Hex("adhoc cache 1\n" + inputs.dump()).substr(0, 16);
}

std::string Executor::ReleaseName(const Run& run, const std::string& image) {
  auto release = run.context->facts.release_paths.find(image);
  if (release == run.context->facts.release_paths.end()) return image;
  return resources::ReleaseName(release->second);
}

bool TemplateWillRun(const Prepared& p) {
  for (const plan::Step& step : p.plan.steps) {
    if (step.action != plan::Action::kRunTask || step.phase != plan::TaskPhase::kBeforeDeploy)
      continue;
    const spec::Task* task = p.project->FindTask(step.target);
    if (task && task->cache == spec::Task::Cache::kDatabase) return true;
  }
  return false;
}

Result<std::string> Executor::RunFromTemplate(Run& run) {
  if (run.template_copied) return std::string("in the template copied above");
  std::vector<const spec::Task*> cached;
  for (const spec::Task& t : run.prepared.project->tasks)
    if (t.cache == spec::Task::Cache::kDatabase && t.before == spec::Task::Before::kDeploy)
      cached.push_back(&t);
  const LaunchContext& context = *run.context;
  if (!context.facts.database) return Failed("the environment has no database to copy into");
  const std::string key = CacheKey(run, cached);
  auto build = [&](const state::DatabaseCredentials& template_database) -> Status {
    // The cached tasks, in file order, against the template instead of the environment's own.
    LaunchContext on_template = context;
    on_template.facts.database = template_database;
    for (const spec::Task* t : cached) ADHOC_RETURN_IF_ERROR(RunTaskNow(run, *t, on_template));
    return OkStatus();
  };
  ADHOC_ASSIGN_OR_RETURN(auto copy, resources_.CopyDatabaseTemplate(
                                        run.prepared.env, context.facts.database->database, key,
                                        ReleaseName(run, cached.front()->image), build));
  run.template_copied = true;
  run.op.RecordUndo(UndoNone());  // the database step's undo drops the copy
  return fmt::format("copied from template {}{}", key.substr(0, 8),
                     copy.built ? ", built now" : (copy.spare ? ", made ahead" : ""));
}

Result<std::string> Executor::RunFromStaticCache(Run& run, const spec::Task& task) {
  const std::string key = CacheKey(run, {&task});
  ADHOC_ASSIGN_OR_RETURN(
      bool built, resources_.CopyStaticCache(run.prepared.env, key, ReleaseName(run, task.image),
                                             [&] { return RunTaskNow(run, task, *run.context); }));
  run.op.RecordUndo(UndoNone());  // files in its own folder: they go with the environment
  return fmt::format("linked from cache {}{}", key.substr(0, 8), built ? ", built now" : "");
}

Result<std::string> Executor::ConvergeService(Run& run, const plan::Step& step) {
  ADHOC_RETURN_IF_ERROR(EnsureContext(run));
  if (!run.routes_recorded) {
    ADHOC_RETURN_IF_ERROR(
        RecordRoutes(run.prepared.env, *run.prepared.project, run.record.hostname));
    run.routes_recorded = true;
  }
  return fleet_.Converge(run.prepared.env, run.context, step.target, run.progress);
}

Result<std::string> Executor::AddRoutes(Run& run, const plan::Step& step) {
  ADHOC_RETURN_IF_ERROR(EnsureContext(run));
  ADHOC_RETURN_IF_ERROR(RecordRoutes(run.prepared.env, *run.prepared.project, run.record.hostname));
  run.routes_recorded = true;
  ADHOC_RETURN_IF_ERROR(PushRoutesToARunningRouter(run.prepared.env));
  return step.Detail();
}

Status Executor::PushRoutesToARunningRouter(const std::string& env) {
  if (fleet_.PushRoutes(env).ok()) return OkStatus();
  // A router that died (kill -9 during an up) is started again, and a new router gets the
  // whole table; then this environment's entry once more.
  ADHOC_RETURN_IF_ERROR(resources_.EnsureRouter());
  return fleet_.PushRoutes(env);
}

Result<std::string> Executor::SetAccess(Run& run, const plan::Step& step) {
  ADHOC_RETURN_IF_ERROR(EnsureContext(run));
  const LaunchContext& c = *run.context;
  ADHOC_ASSIGN_OR_RETURN(auto rules,
                         RenderAccess(*c.project, *c.env_file, AccessValuesFor(c.facts, store_)));
  // The router takes the rules from the environment's context: this run's from now on (a
  // failure later sets the old one back, and with it the old rules).
  fleet_.SetContext(run.prepared.env, run.context);
  ADHOC_RETURN_IF_ERROR(PushRoutesToARunningRouter(run.prepared.env));
  return rules ? step.Detail() : std::string("none: open to everyone");
}

Status Executor::CheckAccess(const Prepared& p) {
  // The values `up` will render with: the record's names when it exists, and {random.*} as
  // made (a new one has the same shape as the one the store will make).
  std::string hostname = p.env + "." + p.project->domain;
  std::string url = RouterUrl(hostname, options_.router_port);
  std::map<std::string, std::string> randoms;
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(p.env));
  if (found) {
    hostname = found->hostname;
    url = found->url;
    ADHOC_ASSIGN_OR_RETURN(randoms, store_.ListRandoms(p.env));
  }
  AccessValues values = [&](const std::string& key) -> std::optional<std::string> {
    if (key == "env") return p.env;
    if (key == "hostname") return hostname;
    if (key == "url") return url;
    if (key.starts_with("random.")) {
      auto it = randoms.find(key.substr(7));
      return it != randoms.end() ? it->second : RandomHex(25);
    }
    return std::nullopt;
  };
  auto rules = RenderAccess(*p.project, *p.env_file, values);
  if (!rules.ok())
    return Failed("the access rules of '" + p.env + "': " + rules.error().message() +
                  "\nNothing was changed.");
  return OkStatus();
}

std::vector<std::vector<const plan::Step*>> Waves(const plan::Plan& plan,
                                                  const spec::Project& project) {
  // What a step needs decides when it may start: releases, the database and Redis need
  // nothing of each other; before-deploy tasks need all three and run in file order (a
  // later one may need an earlier one's work); services need the tasks; routed services
  // come before the others (workers, beat), so a new environment answers sooner.
  enum class Kind { kPrepare, kRouted, kUnrouted, kAlone };
  auto kind_of = [&](const plan::Step& s) {
    switch (s.action) {
      case plan::Action::kBuildRelease:
      case plan::Action::kCreateDatabase:
      case plan::Action::kStartRedis:
        return Kind::kPrepare;
      case plan::Action::kStartService:
      case plan::Action::kRollService: {
        const spec::Service* svc = project.FindService(s.target);
        return svc && !svc->routes.empty() ? Kind::kRouted : Kind::kUnrouted;
      }
      default:
        return Kind::kAlone;
    }
  };
  std::vector<std::vector<const plan::Step*>> waves;
  const auto& steps = plan.steps;
  for (size_t i = 0; i < steps.size();) {
    Kind kind = kind_of(steps[i]);
    if (kind == Kind::kAlone) {
      waves.push_back({&steps[i++]});
      continue;
    }
    size_t end = i;
    if (kind == Kind::kPrepare) {
      while (end < steps.size() && kind_of(steps[end]) == Kind::kPrepare) ++end;
      waves.emplace_back();
      for (size_t j = i; j < end; ++j) waves.back().push_back(&steps[j]);
    } else {
      // A run of services: the routed ones at once, then the others at once.
      while (end < steps.size() && kind_of(steps[end]) != Kind::kAlone &&
             kind_of(steps[end]) != Kind::kPrepare)
        ++end;
      for (Kind wanted : {Kind::kRouted, Kind::kUnrouted}) {
        std::vector<const plan::Step*> wave;
        for (size_t j = i; j < end; ++j)
          if (kind_of(steps[j]) == wanted) wave.push_back(&steps[j]);
        if (!wave.empty()) waves.push_back(std::move(wave));
      }
    }
    i = end;
  }
  return waves;
}

Status Executor::RunWave(Run& run, const std::vector<const plan::Step*>& wave) {
  // Tasks and services read the run's context: made before the wave's threads share it.
  for (const plan::Step* step : wave) {
    run.touched.push_back(step);
    if (step->action != plan::Action::kBuildRelease &&
        step->action != plan::Action::kCreateDatabase &&
        step->action != plan::Action::kStartRedis) {
      ADHOC_RETURN_IF_ERROR(EnsureContext(run));
      const bool service = step->action == plan::Action::kStartService ||
                           step->action == plan::Action::kRollService ||
                           step->action == plan::Action::kRemoveService;
      if (service && !run.routes_recorded) {
        ADHOC_RETURN_IF_ERROR(
            RecordRoutes(run.prepared.env, *run.prepared.project, run.record.hostname));
        run.routes_recorded = true;
      }
    }
  }
  auto one = [&](const plan::Step& step) -> Status {
    return Status(run.op.Step(StepName(step), UndoFor(step, run.block.RedisAddress()),
                              [&] { return Execute(run, step); }));
  };
  if (wave.size() == 1) return one(*wave.front());
  std::vector<Status> results(wave.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < wave.size(); ++i)
    threads.emplace_back([&, i] { results[i] = one(*wave[i]); });
  for (auto& t : threads) t.join();
  for (Status& r : results)
    if (!r.ok()) return r;
  return OkStatus();
}

Result<std::string> Executor::Execute(Run& run, const plan::Step& step) {
  if (on_step) on_step(step);
  switch (step.action) {
    case plan::Action::kBuildRelease:
      return BuildRelease(run, step);
    case plan::Action::kCreateDatabase:
      return CreateDatabase(run, step);
    case plan::Action::kStartRedis:
      return StartRedis(run, step);
    case plan::Action::kRunTask:
      return RunTask(run, step);
    case plan::Action::kStartService:
    case plan::Action::kRollService:
    case plan::Action::kRemoveService:
      return ConvergeService(run, step);
    case plan::Action::kAddRoutes:
      return AddRoutes(run, step);
    case plan::Action::kSetAccess:
      return SetAccess(run, step);
  }
  return Failed("unknown step");
}

Result<std::string> Executor::Record(Run& run) {
  const Prepared& p = run.prepared;
  ADHOC_RETURN_IF_ERROR(EnsureContext(run));
  if (!run.routes_recorded)
    ADHOC_RETURN_IF_ERROR(RecordRoutes(p.env, *p.project, run.record.hostname));
  json spec_json = plan::RecordedJson(plan::Applied(p.wanted));
  spec_json["project_toml"] = p.project_text;
  spec_json["env_toml"] = p.env_text;
  spec_json["project_dir"] = p.project_dir.string();
  ADHOC_RETURN_IF_ERROR(store_.Transact([&](state::Store& tx) -> Status {
    for (const auto& [image, v] : p.resolved) {
      auto release = run.context->facts.release_paths.find(image);
      std::string path =
          release == run.context->facts.release_paths.end() ? "" : release->second.string();
      ADHOC_RETURN_IF_ERROR(tx.PutVersion({p.env, image, v.ref, v.commit, v.tree, path, 0}));
    }
    ADHOC_ASSIGN_OR_RETURN(auto e, tx.GetEnvironment(p.env));
    e.status = state::EnvStatus::kRunning;
    e.owner = p.env_file->owner;
    e.ttl_seconds = RecordedTtl(*p.env_file);
    e.sleep_after_seconds = RecordedSleepAfter(*p.project, *p.env_file);
    e.spec_json = spec_json.dump();
    e.env_file_hash = Sha256Hex(p.env_text).substr(0, 16);
    return tx.PutEnvironment(e).ok() ? OkStatus() : Failed("recording the environment");
  }));
  fleet_.SetContext(p.env, run.context);
  (void)fleet_.PushRoutes(p.env);
  return std::string("versions and files recorded");
}

Result<ApplyOutcome> Executor::Apply(const Prepared& p, const std::string& kind,
                                     Progress& progress) {
  for (const auto& w : p.warnings) progress.Note(w.ToString());
  ApplyOutcome outcome;
  const bool create = !p.recorded.has_value();
  // Before anything is made: rules that cannot be rendered would leave the environment
  // unreachable (the fleet fails closed), so `up` refuses them now.
  ADHOC_RETURN_IF_ERROR(CheckAccess(p));
  if (create) ADHOC_RETURN_IF_ERROR(resources_.CheckRouterPort());
  if (create) ADHOC_RETURN_IF_ERROR(CheckDataSource(p));
  json input = {{"project", p.project_dir.string()}};
  // Steps of one wave report at once: their events come one at a time.
  SerializedProgress shared(progress);
  ADHOC_ASSIGN_OR_RETURN(auto op,
                         JournaledOperation::Begin(store_, shared, p.env, kind, input.dump()));
  Run run{p, op, shared};
  run.create = create;
  outcome.created = create;
  if (!create && p.plan.empty()) {
    (void)op.Finish(state::OperationStatus::kDone);
    progress.Note(p.env + " matches its files: nothing to do");
    return outcome;
  }
  outcome.changed = true;
  run.old_context = fleet_.Context(p.env);
  if (!run.old_context && !create) {
    // Not live (its restore failed): roll back to what the record says.
    if (auto found = store_.GetEnvironment(p.env); found.ok())
      if (auto recorded = RecordedContext(*found); recorded.ok()) run.old_context = *recorded;
  }

  if (create) {
    auto made =
        op.Step("allocate", {{"undo", "remove_environment"}}, [&] { return Allocate(run); });
    if (!made.ok()) return Fail(run, made.error());
  } else {
    (void)store_.SetEnvironmentStatus(p.env, state::EnvStatus::kUpdating);
  }
  auto record = store_.GetEnvironment(p.env);
  if (!record.ok()) return Fail(run, record.error());
  run.record = *record;
  auto block = runtime::ParseBlock(run.record.address_block);
  if (!block.ok()) return Fail(run, block.error());
  run.block = *block;
  // Images that do not change keep their recorded releases.
  if (auto versions = store_.ListVersions(p.env); versions.ok())
    for (const auto& v : *versions) run.release_paths[v.image] = v.release_path;

  auto base = op.Step("base", UndoNone(), [&]() -> Result<std::string> {
    if (p.project->postgres) ADHOC_RETURN_IF_ERROR(resources_.EnsurePostgres());
    ADHOC_RETURN_IF_ERROR(resources_.EnsureRouter());
    return p.project->postgres ? fmt::format("PostgreSQL {}:{}, router", resources_.PostgresHost(),
                                             resources_.PostgresPort())
                               : std::string("router");
  });
  if (!base.ok()) return Fail(run, base.error());

  for (const std::vector<const plan::Step*>& wave : Waves(p.plan, *p.project)) {
    Status done = RunWave(run, wave);
    if (!done.ok()) return Fail(run, done.error());
  }
  if (Status kept = create ? KeepStartData(run) : OkStatus(); !kept.ok())
    return Fail(run, kept.error());
  auto recorded = op.Step("record", UndoNone(), [&] { return Record(run); });
  if (!recorded.ok()) return Fail(run, recorded.error());
  (void)store_.AppendEvent(p.env,
                           create             ? "created"
                           : kind == "deploy" ? "deployed"
                                              : "updated",
                           fmt::format("{} by {}", create ? "created" : "updated", kind));
  (void)op.Finish(state::OperationStatus::kDone);
  return outcome;
}

Error Executor::Fail(Run& run, Error error) {
  const std::string& env = run.prepared.env;
  const std::string what = run.op.kind() + " " + env;
  if (run.create) {
    Status removed = RemoveEverything(env);
    std::string message = what + ": " + error.message() +
                          (removed.ok() ? "\nNothing of '" + env + "' was left behind."
                                        : "\nCleaning up failed too (" + removed.error().message() +
                                              "); run `adhoc destroy " + env + "` to finish.");
    (void)run.op.Finish(
        removed.ok() ? state::OperationStatus::kUndone : state::OperationStatus::kFailed, message);
    return Error(error.kind(), message);
  }
  // Roll back what this run changed, newest first; the old version serves throughout.
  std::vector<std::string> rolled_back, failed_back, notes;
  NoProgress quiet;
  for (auto it = run.touched.rbegin(); it != run.touched.rend(); ++it) {
    const plan::Step& step = **it;
    switch (step.action) {
      case plan::Action::kStartService:
      case plan::Action::kRollService: {
        auto back = fleet_.Converge(env, run.old_context, step.target, quiet);
        (back.ok() ? rolled_back : failed_back).push_back("service " + step.target);
        break;
      }
      case plan::Action::kCreateDatabase:
        if (resources_.DropDatabases(env).ok()) rolled_back.push_back("database");
        (void)store_.DeleteDatabaseCredentials(env);
        break;
      case plan::Action::kStartRedis:
        if (resources_.DestroyRedis(env, run.block.RedisAddress()).ok())
          rolled_back.push_back("redis");
        break;
      case plan::Action::kRunTask:
        if (step.phase == plan::TaskPhase::kBeforeDeploy)
          notes.push_back(fmt::format(
              "{} ran with {} {}; a rollback does not undo what it did to the database (write "
              "migrations that the old version can run with: expand, then contract)",
              step.target, step.image, step.version.ref));
        break;
      default:
        break;
    }
  }
  if (run.old_context) fleet_.SetContext(env, run.old_context);
  (void)fleet_.PushRoutes(env);
  (void)store_.SetEnvironmentStatus(
      env, failed_back.empty() ? state::EnvStatus::kRunning : state::EnvStatus::kFailed);
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
  };
  std::string message = what + ": " + error.message();
  if (!rolled_back.empty()) message += "\nRolled back: " + join(rolled_back) + ".";
  if (!failed_back.empty())
    message +=
        "\nRolling back failed for: " + join(failed_back) + " (see `adhoc status " + env + "`).";
  else
    message += "\n'" + env + "' still runs what it ran before.";
  for (const auto& n : notes) message += "\nNote: " + n + ".";
  (void)run.op.Finish(state::OperationStatus::kFailed, message);
  (void)store_.AppendEvent(env, run.op.kind() + "-failed", message);
  return Error(error.kind(), message);
}

Status Executor::RemoveEverything(const std::string& env) {
  Status first;
  auto keep = [&first](Status s) {
    if (first.ok() && !s.ok()) first = s;
  };
  keep(fleet_.StopAll(env));
  // A router that does not answer gets the whole table (without this env) when it starts
  // again, so its routes cannot outlive the environment.
  (void)fleet_.RemoveEnvRoutes(env);
  auto record = store_.FindEnvironment(env);
  std::string block = record.ok() && *record ? (*record)->address_block : "";
  std::string redis_host;
  if (auto b = runtime::ParseBlock(block); b.ok()) redis_host = b->RedisAddress();
  keep(resources_.DestroyRedis(env, redis_host));
  keep(std::move(resources_.DropDatabases(env)).context("dropping the database"));
  keep(resources_.RemoveFolders(env));
  if (!first.ok()) return first;
  if (!block.empty()) keep(store_.ReleaseBlock(block));
  if (record.ok() && *record) keep(store_.DeleteEnvironment(env));
  return first;
}

Status Executor::Destroy(const std::string& env, Progress& progress) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  ADHOC_ASSIGN_OR_RETURN(auto op,
                         JournaledOperation::Begin(store_, progress, env, "destroy", "{}"));
  (void)store_.SetEnvironmentStatus(env, state::EnvStatus::kDestroying);
  auto removed = op.Step("remove everything", {{"undo", "none"}}, [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(RemoveEverything(env));
    return std::string("processes, routes, Redis, database, role, folders and address");
  });
  if (!removed.ok()) {
    std::string message = "destroy " + env + ": " + removed.error().message() +
                          "\nRun `adhoc destroy " + env + "` again to finish.";
    (void)op.Finish(state::OperationStatus::kFailed, message);
    return Error(removed.error().kind(), message);
  }
  (void)store_.AppendEvent(env, "destroyed", "destroyed");
  (void)op.Finish(state::OperationStatus::kDone);
  return OkStatus();
}

Status Executor::StopProcesses(const std::string& env, const std::string& address_block) {
  Status first = fleet_.StopAll(env);
  // The fleet forgot them: their rows would otherwise hold their addresses.
  if (auto tasks = store_.ListTasks(env); tasks.ok())
    for (const auto& t : *tasks)
      if (t.kind == "service") (void)store_.DeleteTask(env, t.id);
  if (auto block = runtime::ParseBlock(address_block); block.ok())
    if (Status s = resources_.StopRedis(env, block->RedisAddress()); !s.ok() && first.ok())
      first = s;
  return first;
}

Status Executor::Sleep(const std::string& env, const std::string& why, Progress& progress) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  if (found->status == state::EnvStatus::kSleeping) {
    progress.Note(env + " is already asleep");
    return OkStatus();
  }
  if (found->status != state::EnvStatus::kRunning && found->status != state::EnvStatus::kFailed)
    return Failed("'" + env + "' is " + std::string(state::ToString(found->status)) +
                  "; it can sleep once that is over");
  ADHOC_ASSIGN_OR_RETURN(auto op, JournaledOperation::Begin(store_, progress, env, "sleep", "{}"));
  const json undo = {{"undo", "finish_sleep"}};
  auto routes = op.Step("routes", undo, [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(store_.SetEnvironmentStatus(env, state::EnvStatus::kSleeping));
    // A router that does not answer gets the status with the whole table when it starts.
    (void)fleet_.PushRoutes(env);
    return std::string("sleeping: the router holds its requests");
  });
  Result<std::string> stopped =
      routes.ok() ? op.Step("processes", undo,
                            [&]() -> Result<std::string> {
                              // New requests are held now; those already sent finish first.
                              fleet_.DrainAll(env);
                              ADHOC_RETURN_IF_ERROR(StopProcesses(env, found->address_block));
                              return std::string(
                                  "services, tasks and Redis stopped; "
                                  "data kept");
                            })
                  : routes;
  if (!stopped.ok()) {
    std::string message = "sleep " + env + ": " + stopped.error().message() +
                          "\nRun `adhoc sleep " + env + "` again to finish.";
    (void)op.Finish(state::OperationStatus::kFailed, message);
    return Error(stopped.error().kind(), message);
  }
  (void)store_.AppendEvent(env, "slept", "asleep (" + why + ")");
  (void)op.Finish(state::OperationStatus::kDone);
  return OkStatus();
}

Status Executor::Wake(const std::string& env, Progress& progress) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  if (found->status == state::EnvStatus::kRunning) {
    progress.Note(env + " is awake");
    return OkStatus();
  }
  if (found->status != state::EnvStatus::kSleeping)
    return Failed("'" + env + "' is " + std::string(state::ToString(found->status)) +
                  ", not asleep");
  ADHOC_ASSIGN_OR_RETURN(auto op, JournaledOperation::Begin(store_, progress, env, "wake", "{}"));
  const json undo = {{"undo", "finish_wake"}};
  std::shared_ptr<const LaunchContext> context;
  auto redis = op.Step("redis", undo, [&]() -> Result<std::string> {
    // The recorded context starts the environment's Redis (with its data) as it is made.
    ADHOC_ASSIGN_OR_RETURN(context, RecordedContext(*found));
    return context->project->redis ? std::string("started with its data")
                                   : std::string("none in adhoc.toml");
  });
  // Services start at once (independent processes, each gated by its own health check):
  // first those with routes, which a held request waits for, then, once the routes say
  // running, the others (workers, beat), so they do not take the CPU from what a request
  // needs.
  SerializedProgress shared(progress);
  auto start_all = [&](bool routed) -> Result<std::string> {
    std::vector<const spec::Service*> list;
    for (const auto& svc : context->project->services)
      if (svc.routes.empty() != routed) list.push_back(&svc);
    std::vector<Result<std::string>> results(list.size(), std::string());
    std::vector<std::thread> starters;
    for (size_t i = 0; i < list.size(); ++i)
      starters.emplace_back(
          [&, i] { results[i] = fleet_.Converge(env, context, list[i]->name, shared); });
    for (auto& t : starters) t.join();
    std::string done;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!results[i].ok())
        return std::move(results[i]).context("service " + list[i]->name).error();
      done += (done.empty() ? "" : ", ") + list[i]->name;
    }
    return done.empty() ? std::string("none") : done + " healthy";
  };
  auto services = !redis.ok() ? redis : op.Step("services", undo, [&]() -> Result<std::string> {
    fleet_.SetContext(env, context);
    return start_all(true);
  });
  auto running = !services.ok() ? services : op.Step("routes", undo, [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(store_.SetEnvironmentStatus(env, state::EnvStatus::kRunning));
    (void)fleet_.PushRoutes(env);
    return std::string("running");
  });
  auto routes =
      !running.ok() ? running : op.Step("workers", undo, [&] { return start_all(false); });
  if (!routes.ok()) {
    // Back to sleep: nothing half awake is left running.
    (void)store_.SetEnvironmentStatus(env, state::EnvStatus::kSleeping);
    Status stopped = StopProcesses(env, found->address_block);
    (void)fleet_.PushRoutes(env);
    std::string message =
        "wake " + env + ": " + routes.error().message() +
        (stopped.ok() ? "\n'" + env + "' is still asleep."
                      : "\nStopping what started failed too (" + stopped.error().message() + ").");
    (void)op.Finish(state::OperationStatus::kFailed, message);
    (void)store_.AppendEvent(env, "wake-failed", message);
    return Error(routes.error().kind(), message);
  }
  (void)store_.AppendEvent(env, "woke", "awake");
  (void)op.Finish(state::OperationStatus::kDone);
  return OkStatus();
}

std::string Executor::FinishRecovery(const state::Operation& op, state::OperationStatus status,
                                     const std::string& message) {
  (void)store_.FinishOperation(op.id, status, message);
  return fmt::format("{} #{} of {}: {}", op.kind, op.id, op.env, message);
}

Result<std::string> Executor::Recover(const state::Operation& op) {
  auto record = store_.FindEnvironment(op.env);
  bool exists = record.ok() && *record;
  if (op.kind == "destroy") {
    Status s = RemoveEverything(op.env);
    return FinishRecovery(op,
                          s.ok() ? state::OperationStatus::kDone : state::OperationStatus::kFailed,
                          s.ok() ? "interrupted; finished by recovery" : s.error().message());
  }
  if (op.kind == "snapshot" || op.kind == "reset") return RecoverData(op);
  if (op.kind == "sleep") {
    // Forward: what a sleep stops can always be stopped; its data stays.
    if (!exists)
      return FinishRecovery(op, state::OperationStatus::kDone,
                            "interrupted; the environment is gone");
    (void)store_.SetEnvironmentStatus(op.env, state::EnvStatus::kSleeping);
    Status s = StopProcesses(op.env, (*record)->address_block);
    return FinishRecovery(
        op, s.ok() ? state::OperationStatus::kDone : state::OperationStatus::kFailed,
        s.ok() ? "interrupted; finished by recovery (asleep)" : s.error().message());
  }
  if (op.kind == "wake") {
    // Forward: the environment is restored as any running one (adopting the tasks the wake
    // started, starting the others) right after recovery.
    if (exists) (void)store_.SetEnvironmentStatus(op.env, state::EnvStatus::kRunning);
    return FinishRecovery(op, state::OperationStatus::kDone,
                          "interrupted; finished by recovery (its services are restored)");
  }
  bool recorded = false, allocated = false;
  for (const auto& s : op.steps) {
    if (s.name == "record" && s.status == state::StepStatus::kDone) recorded = true;
    if (s.name == "allocate" && s.status != state::StepStatus::kPending) allocated = true;
  }
  if (recorded) {
    if (exists) (void)store_.SetEnvironmentStatus(op.env, state::EnvStatus::kRunning);
    return FinishRecovery(op, state::OperationStatus::kDone,
                          "interrupted after it was recorded; done");
  }
  if (allocated || (exists && (*record)->status == state::EnvStatus::kCreating)) {
    // A new environment half made: every trace of it goes.
    Status s = RemoveEverything(op.env);
    return FinishRecovery(
        op, s.ok() ? state::OperationStatus::kUndone : state::OperationStatus::kFailed,
        s.ok() ? "interrupted; undone by recovery (nothing of it was left)"
               : "interrupted; undoing failed: " + s.error().message());
  }
  // An update: undo its started steps, newest first. Services go back to what the record
  // says when the environment is restored (Restore converges to the recorded generations).
  std::vector<std::string> undone, notes;
  for (auto it = op.steps.rbegin(); it != op.steps.rend(); ++it) {
    if (it->status == state::StepStatus::kPending || it->status == state::StepStatus::kUndone)
      continue;
    auto undo = json::parse(it->undo_json.empty() ? "{}" : it->undo_json, nullptr, false);
    if (!undo.is_object()) continue;
    std::string action = undo.value("undo", "none");
    if (undo.contains("note") && undo["note"].is_string())
      notes.push_back(undo["note"].get<std::string>());
    if (action == "drop_databases") {
      if (resources_.DropDatabases(op.env).ok()) undone.push_back(it->name);
      (void)store_.DeleteDatabaseCredentials(op.env);
    } else if (action == "destroy_redis") {
      if (resources_.DestroyRedis(op.env, undo.value("address", "")).ok())
        undone.push_back(it->name);
    } else if (action == "stop_task") {
      (void)fleet_.StopTask(op.env, undo.value("task", ""));
      undone.push_back(it->name);
    } else if (action == "converge") {
      undone.push_back(it->name);
    }
    (void)store_.UndoStep(op.id, it->name);
  }
  if (exists) (void)store_.SetEnvironmentStatus(op.env, state::EnvStatus::kRunning);
  std::string message = "interrupted by a restart of the control plane; rolled back";
  if (!undone.empty()) {
    message += ":";
    for (const auto& u : undone) message += " " + u + ";";
    message.pop_back();
  }
  for (const auto& n : notes) message += ". Note: " + n;
  return FinishRecovery(op, state::OperationStatus::kUndone, message);
}

Result<std::shared_ptr<const LaunchContext>> Executor::RecordedContext(
    const state::Environment& env) {
  auto j = json::parse(env.spec_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("project_toml"))
    return Failed("'" + env.name + "' has no applied files recorded");
  auto project = spec::ParseProject(j.value("project_toml", ""));
  if (!project.ok()) return project.status().error();
  auto env_file = spec::ParseEnvFile(j.value("env_toml", ""), env.name,
                                     "envs/" + env.name + ".toml", &project.value);
  if (!env_file.ok()) return env_file.status().error();
  auto context = std::make_shared<LaunchContext>();
  context->project = std::make_shared<const spec::Project>(std::move(project.value));
  context->env_file = std::make_shared<const spec::EnvFile>(std::move(env_file.value));
  ADHOC_ASSIGN_OR_RETURN(context->facts, LoadFacts(env, *context->project));
  ADHOC_ASSIGN_OR_RETURN(auto recorded, plan::LoadRecorded(store_, env.name));
  if (recorded) context->generations = recorded->services;
  return std::shared_ptr<const LaunchContext>(context);
}

// ---- Data: an env file's `data`, start data, snapshots and reset (data_ops.h) -----------

Status Executor::CheckDataSource(const Prepared& p) {
  DataOps data(store_, resources_, options_.home);
  Status s = data.CheckSource(p.env_file->data, p.project_dir, p.env);
  if (!s.ok())
    return Error(s.error().kind(), "up " + p.env + ": " + s.error().message() + "\nNothing of '" +
                                       p.env + "' was made.");
  return OkStatus();
}

Result<std::string> Executor::LoadDataIntoDatabase(Run& run, const std::string& database) {
  const spec::DataSource& source = run.prepared.env_file->data;
  if (!run.create || source.kind == spec::DataSource::Kind::kEmpty) return std::string();
  DataOps data(store_, resources_, options_.home);
  ADHOC_ASSIGN_OR_RETURN(std::string detail, data.LoadDatabase(source, run.prepared.project_dir,
                                                               run.prepared.env, database));
  return detail.empty() ? detail : ", " + detail;
}

Result<std::string> Executor::LoadDataIntoRedis(Run& run, const RedisEndpoint& redis) {
  const spec::DataSource& source = run.prepared.env_file->data;
  if (!run.create || source.kind == spec::DataSource::Kind::kEmpty) return std::string();
  DataOps data(store_, resources_, options_.home);
  ADHOC_ASSIGN_OR_RETURN(std::string detail, data.LoadRedis(source, run.prepared.env, redis));
  return detail.empty() ? detail : ", " + detail;
}

Status Executor::KeepStartData(Run& run) {
  const Prepared& p = run.prepared;
  if (!p.project->postgres && !p.project->redis) return OkStatus();
  auto kept = run.op.Step("start data", UndoNone(), [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(EnsureContext(run));
    const EnvironmentFacts& f = run.context->facts;
    DataOrigin origin;
    origin.env = p.env;
    if (p.project->postgres && f.database) origin.database = f.database->database;
    if (p.project->redis)
      origin.redis = RedisEndpoint{f.redis_host, f.redis_port, f.redis_password};
    json versions = json::array();
    for (const auto& [image, v] : p.resolved)
      versions.push_back(
          {{"image", image}, {"ref", v.ref}, {"commit", v.commit}, {"tree", v.tree}});
    DataOps data(store_, resources_, options_.home);
    return data.KeepStartData(origin, versions);
  });
  return Status(kept);
}

Status Executor::Snapshot(const std::string& env, const std::string& name, Progress& progress) {
  DataOps data(store_, resources_, options_.home);
  ADHOC_RETURN_IF_ERROR(data.CheckNewSnapshot(name));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  if (found->status == state::EnvStatus::kSleeping)
    return Failed("'" + env + "' is asleep; wake it first (`adhoc wake " + env + "`)");
  if (found->status != state::EnvStatus::kRunning && found->status != state::EnvStatus::kFailed)
    return Failed("'" + env + "' is " + std::string(state::ToString(found->status)) +
                  "; it can be saved once that is over");
  std::shared_ptr<const LaunchContext> context = fleet_.Context(env);
  if (!context) {
    ADHOC_ASSIGN_OR_RETURN(context, RecordedContext(*found));
  }
  ADHOC_ASSIGN_OR_RETURN(json versions, data.VersionsJson(env));
  ADHOC_ASSIGN_OR_RETURN(auto op, JournaledOperation::Begin(store_, progress, env, "snapshot",
                                                            json{{"name", name}}.dump()));
  const EnvironmentFacts& f = context->facts;
  DataOrigin origin;
  origin.env = env;
  if (context->project->postgres && f.database) origin.database = f.database->database;
  if (context->project->redis)
    origin.redis = RedisEndpoint{f.redis_host, f.redis_port, f.redis_password};
  state::Snapshot record{name, env, versions.dump(), "", 0, 0, 0, 0};
  fs::path saved;
  auto save = op.Step("save", UndoNone(), [&]() -> Result<std::string> {
    ADHOC_ASSIGN_OR_RETURN(saved, data.SaveFiles(origin, name, &record.database_bytes,
                                                 &record.redis_bytes, &record.redis_keys));
    return fmt::format("database {}, Redis {} key(s) ({})", HumanBytes(record.database_bytes),
                       record.redis_keys, HumanBytes(record.redis_bytes));
  });
  auto published = !save.ok() ? save : op.Step("record", UndoNone(), [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(data.Publish(saved, record));
    return "snapshot " + name;
  });
  if (!published.ok()) {
    std::string message = "snapshot " + env + " " + name + ": " + published.error().message() +
                          "\nNothing was kept; '" + env + "' was not touched.";
    (void)op.Finish(state::OperationStatus::kFailed, message);
    return Error(published.error().kind(), message);
  }
  (void)store_.AppendEvent(env, "snapshot", "data saved as snapshot " + name);
  (void)op.Finish(state::OperationStatus::kDone);
  return OkStatus();
}

Status Executor::Reset(const std::string& env, Progress& progress) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  if (found->status == state::EnvStatus::kSleeping)
    return Failed("'" + env + "' is asleep; wake it first (`adhoc wake " + env + "`)");
  if (found->status != state::EnvStatus::kRunning && found->status != state::EnvStatus::kFailed)
    return Failed("'" + env + "' is " + std::string(state::ToString(found->status)) +
                  "; it can be reset once that is over");
  DataOps data(store_, resources_, options_.home);
  ADHOC_ASSIGN_OR_RETURN(auto start, data.StartVersions(env));
  if (!start)
    return NotFound("'" + env +
                    "' has no start data (it was created by an adhoc that did not keep it); "
                    "`adhoc destroy " +
                    env + "` and `adhoc up " + env + "` make it again");
  std::shared_ptr<const LaunchContext> context = fleet_.Context(env);
  if (!context) {
    ADHOC_ASSIGN_OR_RETURN(context, RecordedContext(*found));
  }
  ADHOC_ASSIGN_OR_RETURN(json now, data.VersionsJson(env));
  // The trees it runs now against those it started with: newer code needs its migrations.
  auto trees = [](const json& versions) {
    std::map<std::string, std::string> out;
    for (const auto& v : versions)
      if (v.is_object()) out[v.value("image", "")] = v.value("tree", "");
    return out;
  };
  const bool changed = trees(now) != trees(*start);
  ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(found->address_block));
  ADHOC_ASSIGN_OR_RETURN(auto op, JournaledOperation::Begin(store_, progress, env, "reset", "{}"));
  const json undo = {{"undo", "finish_reset"}};
  const EnvironmentFacts& f = context->facts;
  Result<std::string> done = std::string();
  if (context->project->postgres && f.database)
    done = op.Step("database", undo, [&]() -> Result<std::string> {
      ADHOC_RETURN_IF_ERROR(resources_.ResetDatabase(env, f.database->database));
      return f.database->database + " back to its start data";
    });
  if (done.ok() && context->project->redis)
    done = op.Step("redis", undo, [&]() -> Result<std::string> {
      ADHOC_ASSIGN_OR_RETURN(int64_t keys,
                             resources_.LoadRedis({f.redis_host, f.redis_port, f.redis_password},
                                                  data.StartRedisKeys(env)));
      return fmt::format("{} key(s) restored", keys);
    });
  if (done.ok() && changed) {
    for (const spec::Task& task : context->project->tasks) {
      if (task.before != spec::Task::Before::kDeploy) continue;
      done = op.Step("task " + task.name, undo, [&]() -> Result<std::string> {
        ADHOC_ASSIGN_OR_RETURN(std::string id, store_.NextTaskId(env, task.name));
        std::string tail;
        ADHOC_ASSIGN_OR_RETURN(int code,
                               fleet_.RunOnce(env, *context, TaskLaunch(task, id, block.Address(2)),
                                              task.timeout, progress, &tail));
        if (code != 0)
          return Failed(fmt::format("{} ({}) exited with status {}; its last lines:{}", task.name,
                                    id, code, tail));
        return std::string("its start data came from older versions");
      });
      if (!done.ok()) break;
    }
  }
  if (!done.ok()) {
    std::string message = "reset " + env + ": " + done.error().message() + "\nRun `adhoc reset " +
                          env + "` again to finish.";
    (void)op.Finish(state::OperationStatus::kFailed, message);
    (void)store_.AppendEvent(env, "reset-failed", message);
    return Error(done.error().kind(), message);
  }
  (void)store_.AppendEvent(env, "reset", "back to its start data");
  (void)op.Finish(state::OperationStatus::kDone);
  return OkStatus();
}

Result<std::string> Executor::RecoverData(const state::Operation& op) {
  DataOps data(store_, resources_, options_.home);
  if (op.kind == "snapshot") {
    // Undone: its half-saved files go; a folder moved into place without its record too.
    data.RemoveIncoming();
    auto input = json::parse(op.input_json, nullptr, false);
    std::string name = input.is_object() ? input.value("name", "") : "";
    if (spec::ValidateObjectName("snapshot", name).ok()) {
      auto found = store_.FindSnapshot(name);
      if (found.ok() && !*found) {
        std::error_code ec;
        fs::remove_all(paths::SnapshotDir(options_.home, name), ec);
      }
    }
    return FinishRecovery(op, state::OperationStatus::kUndone, "interrupted; nothing was kept");
  }
  // A reset: forward, from its start again (a half-swapped database is finished).
  auto record = store_.FindEnvironment(op.env);
  if (!record.ok() || !*record)
    return FinishRecovery(op, state::OperationStatus::kDone,
                          "interrupted; the environment is gone");
  auto context = RecordedContext(**record);
  Status s = Status(context);
  if (s.ok() && (*context)->project->postgres && (*context)->facts.database)
    s = resources_.ResetDatabase(op.env, (*context)->facts.database->database);
  if (s.ok() && (*context)->project->redis) {
    const EnvironmentFacts& f = (*context)->facts;
    s = Status(resources_.LoadRedis({f.redis_host, f.redis_port, f.redis_password},
                                    data.StartRedisKeys(op.env)));
  }
  return FinishRecovery(op,
                        s.ok() ? state::OperationStatus::kDone : state::OperationStatus::kFailed,
                        s.ok() ? "interrupted; finished by recovery (back to its start data)"
                               : "interrupted; finishing failed: " + s.error().message() +
                                     " (run `adhoc reset " + op.env + "` again)");
}

}  // namespace adhoc::server
