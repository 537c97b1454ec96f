// The environment operations of the control plane: up, destroy, run, and recovery.
#include <fmt/format.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/exec.h"
#include "common/hash.h"
#include "common/paths.h"
#include "plan/plan.h"
#include "plan/recorded.h"
#include "resources/databases.h"
#include "resources/env_folders.h"
#include "resources/git.h"
#include "resources/postgres_cluster.h"
#include "resources/redis.h"
#include "resources/release_cache.h"
#include "runtime/addresses.h"
#include "runtime/logs.h"
#include "server/control_plane.h"
#include "server/operation.h"
#include "spec/loader.h"
#include "spec/names.h"
#include "spec/placeholders.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path.string());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Tail(const fs::path& log, size_t n) {
  auto lines = runtime::ReadLastLines(log, n);
  std::string out;
  if (!lines.ok()) return out;
  for (const auto& l : *lines) out += "\n    " + l.text;
  return out;
}

long long Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

std::string Seconds(long long ms) { return fmt::format("{:.1f}s", ms / 1000.0); }

// Resident memory summed by process group, from one pass over /proc (a task's pid is its
// process group's id, so this gives each task's memory with its children).
std::map<pid_t, uint64_t> RssByProcessGroup() {
  std::map<pid_t, uint64_t> total;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !isdigit(name[0])) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    long ppid, pgrp;
    rest >> state >> ppid >> pgrp;
    std::ifstream status(entry.path() / "status");
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) total[pgrp] += std::stoull(line.substr(6)) * 1024;
  }
  return total;
}

std::string RouterUrl(const std::string& hostname, int port) {
  return port == 80 ? "http://" + hostname + "/"
                    : "http://" + hostname + ":" + std::to_string(port) + "/";
}

}  // namespace

Result<EnvironmentFacts> ControlPlane::LoadFacts(const state::Environment& env,
                                                 const spec::Project& project) {
  EnvironmentFacts f;
  f.home = options_.home;
  f.env = env.name;
  f.hostname = env.hostname;
  f.url = env.url;
  ADHOC_ASSIGN_OR_RETURN(auto versions, store_->ListVersions(env.name));
  for (const auto& v : versions) {
    f.version_refs[v.image] = v.ref;
    f.release_paths[v.image] = v.release_path;
  }
  if (project.postgres) {
    auto creds = store_->GetDatabaseCredentials(env.name);
    if (creds.ok()) f.database = *creds;
    f.postgres_host = runtime::BaseAddress(options_.home);
    f.postgres_port = options_.postgres_port;
  }
  if (project.redis) {
    ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(env.address_block));
    resources::RedisInstance redis(options_.home, env.name, {.host = block.RedisAddress()});
    if (!redis.Adopt().ok()) ADHOC_RETURN_IF_ERROR(redis.Start());
    f.redis_host = block.RedisAddress();
    f.redis_port = redis.credentials().port;
    f.redis_password = redis.credentials().password;
  }
  return f;
}

Result<std::string> ControlPlane::AllocateAddress(const std::string& env) {
  ADHOC_ASSIGN_OR_RETURN(auto record, store_->GetEnvironment(env));
  ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(record.address_block));
  std::set<std::string> used;
  auto live = envs_.find(env);
  if (live != envs_.end())
    for (auto& s : live->second->slots) used.insert(s->address);
  auto tasks = store_->ListTasks(env);
  if (tasks.ok())
    for (auto& t : *tasks)
      if (t.kind == "service" && t.status != state::TaskStatus::kStopped) used.insert(t.address);
  return runtime::AllocateTaskAddress(block, used);
}

std::unique_ptr<ControlPlane::Slot> ControlPlane::NewSlot(
    const std::string& env, std::shared_ptr<const LaunchContext> context,
    const spec::Service& service, int index, const std::string& address) {
  auto slot = std::make_unique<Slot>();
  slot->name = service.name + "/" + std::to_string(index);
  slot->service = service.name;
  slot->address = address;
  slot->context = std::move(context);
  if (service.health) {
    const auto& h = *service.health;
    if (!h.path.empty() && service.port) {
      auto matcher = runtime::StatusMatcher::Parse(h.matcher);
      if (matcher.ok())
        slot->prober = std::make_shared<runtime::HttpProber>(
            address, *service.port, slot->context->facts.hostname, h.path, *matcher);
    }
  }
  if (slot->prober)
    slot->health = std::make_unique<runtime::HealthTracker>(HealthSettingsFor(service), clock_);
  return slot;
}

Result<std::unique_ptr<ControlPlane::Slot>> ControlPlane::StartGated(
    const std::string& env, std::shared_ptr<const LaunchContext> context,
    const spec::Service& service, int index, const std::string& address, Progress& progress) {
  const LaunchContext& ctx = *context;
  auto slot = NewSlot(env, context, service, index, address);
  ADHOC_ASSIGN_OR_RETURN(std::string id, store_->NextTaskId(env, service.name));
  LaunchRequest request = ServiceLaunch(service, id, address);
  ADHOC_ASSIGN_OR_RETURN(runtime::TaskSpec spec,
                         MakeTaskSpec(*ctx.project, *ctx.env_file, ctx.facts, request, *store_));
  if (service.health && !service.health->command.empty()) {
    auto values = PlaceholderValues(ctx.facts, request, *store_);
    auto cmd = spec::RenderPlaceholders(
        service.health->command, [&](const spec::Placeholder& p) { return values(p.Key()); });
    if (!cmd.ok()) return std::move(cmd).context("health command of " + service.name).error();
    slot->prober = std::make_shared<runtime::CommandProber>(*cmd, spec.env, spec.working_folder);
    slot->health = std::make_unique<runtime::HealthTracker>(HealthSettingsFor(service), clock_);
  }
  state::Task row;
  row.env = env;
  row.id = id;
  row.process = service.name;
  row.kind = "service";
  auto ref = ctx.facts.version_refs.find(service.image);
  row.generation = service.image + "@" + (ref != ctx.facts.version_refs.end() ? ref->second : "");
  row.address = address;
  row.port = service.port.value_or(0);
  row.release_path = spec.working_folder;
  row.started_at = store_->Now();
  ADHOC_RETURN_IF_ERROR(store_->PutTask(row));
  auto handle = runtime_->Start(spec);
  if (!handle.ok()) {
    (void)store_->DeleteTask(env, id);
    return std::move(handle).context("starting " + service.name).error();
  }
  slot->task_id = id;
  slot->handle = *handle;
  row.pid = handle->task.pid;
  row.start_time = handle->task.start_time;
  row.shim_pid = handle->shim.pid;
  row.shim_start_time = handle->shim.start_time;
  (void)store_->PutTask(row);

  auto fail = [&](const std::string& why) -> Error {
    (void)runtime_->Stop(*handle);
    row.status = state::TaskStatus::kFailed;
    (void)store_->PutTask(row);
    return Failed(fmt::format("{} ({}) {}; its last lines:{}", service.name, id, why,
                              Tail(spec.log_path, 15)));
  };
  if (!slot->prober) {
    // Healthy while it runs: give it a moment to fail on a bad start.
    auto state = runtime_->Wait(*handle, std::chrono::milliseconds(300));
    if (state.kind != runtime::TaskState::kRunning)
      return fail("exited with " + state.exit.ToString() + " while starting");
    slot->healthy = true;
  } else {
    for (;;) {
      auto state = slot->health->Tick(*slot->prober);
      if (state == runtime::HealthTracker::State::kHealthy) break;
      if (state == runtime::HealthTracker::State::kStartFailed)
        return fail("did not become healthy in time (" + slot->health->last_detail() + ")");
      auto task_state = runtime_->Inspect(*handle);
      if (task_state.kind != runtime::TaskState::kRunning)
        return fail("exited with " + task_state.exit.ToString() + " while starting");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    slot->healthy = true;
  }
  row.status = state::TaskStatus::kHealthy;
  (void)store_->PutTask(row);
  return slot;
}

void ControlPlane::Supervise(const std::string& env, Slot& slot, bool running) {
  auto context = slot.context;
  std::string service = slot.service, address = slot.address;
  supervisor_->Add(
      SupervisorSlot(env, slot.name),
      [this, env, context, service, address]() -> runtime::TaskSpec {
        const spec::Service* svc = context->project->FindService(service);
        auto id = store_->NextTaskId(env, service);
        std::string task_id = id.ok() ? *id : service + "-restart";
        Result<runtime::TaskSpec> spec =
            svc ? MakeTaskSpec(*context->project, *context->env_file, context->facts,
                               ServiceLaunch(*svc, task_id, address), *store_)
                : Result<runtime::TaskSpec>(NotFound("service " + service + " is gone"));
        if (!spec.ok()) {
          // The failure shows in the task's log and counts toward the crash loop.
          runtime::TaskSpec failing;
          failing.id = task_id;
          failing.task_folder = paths::TaskDir(options_.home, env, task_id);
          failing.log_path = paths::TaskLog(options_.home, env, service, task_id);
          failing.command = "echo " + ShellQuote(spec.error().message()) + " >&2; exit 1";
          failing.env = {{"PATH", "/usr/bin:/bin"}};
          return failing;
        }
        state::Task row;
        row.env = env;
        row.id = task_id;
        row.process = service;
        row.kind = "service";
        row.address = address;
        row.port = svc->port.value_or(0);
        row.release_path = spec->working_folder;
        row.started_at = store_->Now();
        (void)store_->PutTask(row);
        return *spec;
      },
      running ? std::optional<runtime::TaskHandle>(slot.handle) : std::nullopt);
}

Status ControlPlane::EnsureRedisRunning(const std::string& env, const std::string& address) {
  resources::RedisInstance redis(options_.home, env, {.host = address});
  if (redis.Adopt().ok()) return OkStatus();
  return redis.Start();
}

Result<int> ControlPlane::RunTaskNow(const std::string& env, const LaunchContext& ctx,
                                     const LaunchRequest& request,
                                     std::chrono::milliseconds timeout, Progress& progress,
                                     std::string* log_tail) {
  ADHOC_ASSIGN_OR_RETURN(runtime::TaskSpec spec,
                         MakeTaskSpec(*ctx.project, *ctx.env_file, ctx.facts, request, *store_));
  state::Task row;
  row.env = env;
  row.id = request.task_id;
  row.process = request.process;
  row.kind = "task";
  row.address = request.address;
  row.release_path = spec.working_folder;
  row.started_at = store_->Now();
  ADHOC_RETURN_IF_ERROR(store_->PutTask(row));
  std::deque<std::string> tail;
  auto exit = runtime_->RunToCompletion(spec, timeout, [&](const std::string& line) {
    progress.Log(request.process, request.task_id, line);
    tail.push_back(line);
    if (tail.size() > 15) tail.pop_front();
  });
  if (log_tail)
    for (auto& l : tail) *log_tail += "\n    " + l;
  row.ended_at = store_->Now();
  if (!exit.ok()) {
    row.status = state::TaskStatus::kFailed;
    (void)store_->PutTask(row);
    return std::move(exit).context(request.process).error();
  }
  row.status = state::TaskStatus::kExited;
  row.exit_code = exit->ShellCode();
  (void)store_->PutTask(row);
  return exit->ShellCode();
}

Result<json> ControlPlane::Up(const std::string& env, const fs::path& project_dir,
                              Progress& progress) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  auto ws = spec::LoadWorkspace(project_dir);
  for (const auto& d : ws.diagnostics)
    if (!d.is_error()) progress.Note(d.ToString());
  if (!ws.ok()) return ws.status().error();
  const spec::EnvFile* env_file = ws.value.FindEnv(env);
  fs::path env_path = project_dir / "envs" / (env + ".toml");
  if (!env_file)
    return BadInput(
        fmt::format("{}: no such file; write it with `adhoc new {}`", env_path.string(), env));
  ADHOC_ASSIGN_OR_RETURN(std::string project_text, ReadFile(project_dir / "adhoc.toml"));
  ADHOC_ASSIGN_OR_RETURN(std::string env_text, ReadFile(env_path));
  auto project = std::make_shared<const spec::Project>(ws.value.project);
  auto env_spec = std::make_shared<const spec::EnvFile>(*env_file);

  ADHOC_ASSIGN_OR_RETURN(auto op, JournaledOperation::Begin(*store_, progress, env, "up",
                                                            json{{"project", project_dir}}.dump()));
  ADHOC_ASSIGN_OR_RETURN(auto recorded, plan::LoadRecorded(*store_, env));
  const bool create = !recorded.has_value();
  std::vector<std::unique_ptr<Slot>> started;  // new slots not yet handed to the supervisor

  auto fail = [&](Error error) -> Error {
    for (auto& s : started) (void)runtime_->Stop(s->handle);
    for (auto& s : started) (void)store_->DeleteTask(env, s->task_id);
    if (create) {
      Status removed = RemoveEverything(env);
      error = Error(error.kind(),
                    "up " + env + ": " + error.message() +
                        (removed.ok() ? "\nNothing of '" + env + "' was left behind."
                                      : "\nCleaning up failed too (" + removed.error().message() +
                                            "); run `adhoc destroy " + env + "`."));
    } else {
      error = Error(error.kind(), "up " + env + ": " + error.message() + "\n'" + env +
                                      "' still runs what it ran before.");
    }
    (void)op.Finish(state::OperationStatus::kFailed, error.message());
    return error;
  };

  // Versions: each image's ref resolved to its folder's tree in the repository.
  plan::Wanted wanted;
  wanted.project = project.get();
  wanted.env_file = env_spec.get();
  std::map<std::string, resources::ResolvedVersion> resolved;
  auto repo = resources::RepoRoot(project_dir);
  if (!repo.ok()) return fail(repo.error());
  for (const auto& image : project->images) {
    const std::string* pinned = env_spec->FindVersion(image.name);
    std::string ref = pinned ? *pinned : "HEAD";
    std::string folder = image.path == "." ? "" : image.path;
    auto v = resources::ResolveVersion(*repo, folder, ref, image.name);
    if (!v.ok()) return fail(v.error());
    resolved[image.name] = *v;
    wanted.versions[image.name] = {v->ref, v->commit, v->tree};
    wanted.release_built[image.name] =
        fs::exists(paths::Release(options_.home, image.name, v->tree) / ".adhoc-release");
  }
  plan::Plan plan = plan::MakePlan(wanted, recorded);

  if (!create && plan.empty()) {
    {
      std::lock_guard lock(mu_);
      if (!envs_.count(env)) {
        auto record = store_->GetEnvironment(env);
        if (record.ok()) {
          auto live = RestoreLive(*record);
          if (live.ok()) envs_[env] = *live;
        }
      }
    }
    (void)op.Finish(state::OperationStatus::kDone);
    progress.Note(env + " matches its files: nothing to do");
    return EnvironmentJson(env);
  }

  // The environment's record and address block.
  if (create) {
    auto made = op.Step("allocate", [&]() -> Result<std::string> {
      state::Environment e;
      e.name = env;
      e.status = state::EnvStatus::kCreating;
      e.owner = env_spec->owner;
      if (env_spec->ttl) e.ttl_seconds = env_spec->ttl->count();
      if (env_spec->sleep_after) e.sleep_after_seconds = env_spec->sleep_after->count();
      e.hostname = env + "." + project->domain;
      e.url = RouterUrl(e.hostname, options_.router.listen_port);
      ADHOC_ASSIGN_OR_RETURN(auto blocks, store_->ListBlocks());
      std::set<runtime::AddressBlock> used;
      for (auto& b : blocks)
        if (auto parsed = runtime::ParseBlock(b.block); parsed.ok()) used.insert(*parsed);
      runtime::BindProbe probe;
      ADHOC_ASSIGN_OR_RETURN(
          auto block,
          runtime::AllocateBlock(options_.home, used, [&](const runtime::AddressBlock& b) {
            // Something outside adhoc may listen in a block: skip it.
            return probe.CheckFree(b.RedisAddress(), 6379).ok() &&
                   probe.CheckFree(b.Address(10), 8000).ok();
          }));
      e.address_block = block.Cidr();
      ADHOC_RETURN_IF_ERROR(store_->Transact([&](state::Store& tx) -> Status {
        ADHOC_RETURN_IF_ERROR(tx.PutEnvironment(e));
        return tx.AllocateBlock(env, e.address_block);
      }));
      ADHOC_RETURN_IF_ERROR(resources::CreateEnvironmentFolders(options_.home, env));
      return e.address_block;
    });
    if (!made.ok()) return fail(made.error());
  } else {
    (void)store_->SetEnvironmentStatus(env, state::EnvStatus::kUpdating);
  }
  ADHOC_ASSIGN_OR_RETURN(state::Environment record, store_->GetEnvironment(env));
  ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(record.address_block));

  // Releases (cached by tree: usually instant).
  std::map<std::string, fs::path> release_paths;
  resources::ReleaseCache cache(options_.home);
  for (const auto& image : project->images) {
    auto r = op.Step("release " + image.name, [&]() -> Result<std::string> {
      ADHOC_ASSIGN_OR_RETURN(auto release,
                             cache.Ensure(image.name, resolved[image.name], *repo, image.build));
      release_paths[image.name] = release.path;
      std::string v = resolved[image.name].ref + " " + resolved[image.name].tree.substr(0, 7);
      return release.built_now ? v + ", built" : v + ", cached";
    });
    if (!r.ok()) return fail(r.error());
  }

  auto base = op.Step("base", [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(EnsureBase(project->postgres.has_value()));
    return project->postgres
               ? fmt::format("PostgreSQL {}:{}, router {}:{}", runtime::BaseAddress(options_.home),
                             options_.postgres_port, options_.router.listen_address,
                             options_.router.listen_port)
               : fmt::format("router {}:{}", options_.router.listen_address,
                             options_.router.listen_port);
  });
  if (!base.ok()) return fail(base.error());

  if (project->postgres && (create || !recorded->database)) {
    auto db = op.Step("database", [&]() -> Result<std::string> {
      ADHOC_ASSIGN_OR_RETURN(
          auto admin, resources::ConnectPostgresAdmin(options_.home, options_.postgres_port));
      resources::EnvironmentDatabases dbs(*admin, runtime::BaseAddress(options_.home),
                                          options_.postgres_port);
      ADHOC_ASSIGN_OR_RETURN(
          std::string name,
          spec::RenderPlaceholders(project->postgres->database,
                                   std::map<std::string, std::string>{{"env", env}}));
      ADHOC_ASSIGN_OR_RETURN(auto creds, dbs.CreateEnvironmentDatabase(env, name, true));
      ADHOC_RETURN_IF_ERROR(
          store_->PutDatabaseCredentials({env, creds.user, creds.password, creds.database}));
      return creds.database + " owned by " + creds.user;
    });
    if (!db.ok()) return fail(db.error());
  }
  if (project->redis && (create || !recorded->redis)) {
    auto redis = op.Step("redis", [&]() -> Result<std::string> {
      ADHOC_RETURN_IF_ERROR(EnsureRedisRunning(env, block.RedisAddress()));
      return block.RedisAddress() + ":6379, own password";
    });
    if (!redis.ok()) return fail(redis.error());
  }

  auto facts = LoadFacts(record, *project);
  if (!facts.ok()) return fail(facts.error());
  for (const auto& [image, v] : resolved) {
    facts->version_refs[image] = v.ref;
    facts->release_paths[image] = release_paths[image];
  }
  auto context = std::make_shared<LaunchContext>(LaunchContext{project, env_spec, *facts});

  // A one-off task as a step of this operation: it must exit 0.
  auto run_task = [&](const spec::Task& task) {
    return op.Step("task " + task.name, [&]() -> Result<std::string> {
      ADHOC_ASSIGN_OR_RETURN(std::string id, store_->NextTaskId(env, task.name));
      std::string tail;
      ADHOC_ASSIGN_OR_RETURN(
          int code, RunTaskNow(env, *context, TaskLaunch(task, id, block.Address(2)), task.timeout,
                               progress, &tail));
      if (code != 0)
        return Failed(fmt::format("{} ({}) exited with status {}; its last lines:{}", task.name, id,
                                  code, tail));
      return std::string("exit 0");
    });
  };

  // Before-deploy tasks, in file order: migrations before code (the seed's order).
  for (const auto& step : plan.steps) {
    if (step.action != plan::Action::kRunTask || step.detail != "before deploy") continue;
    const spec::Task* task = project->FindTask(step.target);
    auto ran = run_task(*task);
    if (!ran.ok()) return fail(ran.error());
  }

  // Routes are recorded now; each service's targets go live as it becomes healthy.
  std::vector<state::Route> routes;
  for (const auto& svc : project->services)
    for (const auto& r : svc.routes)
      routes.push_back({env, record.hostname, r.pattern, svc.priority, svc.name,
                        state::RouteKind::kService, ""});
  if (project->static_files)
    for (const auto& r : project->static_files->routes)
      routes.push_back({env, record.hostname, r.pattern, std::nullopt, "",
                        state::RouteKind::kFolder, paths::StaticDir(options_.home, env).string()});
  (void)store_->ReplaceRoutes(env, routes);
  {
    std::lock_guard lock(mu_);
    if (!envs_.count(env)) envs_[env] = std::make_shared<LiveEnv>();
    envs_[env]->context = context;
  }

  // Services: started (new) or rolled (new tasks beside the old, then the old stopped).
  for (const auto& step : plan.steps) {
    if (step.action != plan::Action::kStartService && step.action != plan::Action::kRollService)
      continue;
    const spec::Service* svc = project->FindService(step.target);
    std::vector<std::unique_ptr<Slot>> old;
    auto done = op.Step("service " + svc->name, [&]() -> Result<std::string> {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < svc->count; ++i) {
        std::string address;
        {
          std::lock_guard lock(mu_);
          ADHOC_ASSIGN_OR_RETURN(address, AllocateAddress(env));
          // Reserve it so the next allocation does not hand it out again.
          auto placeholder = std::make_unique<Slot>();
          placeholder->address = address;
          placeholder->name = "~starting";
          envs_[env]->slots.push_back(std::move(placeholder));
        }
        auto slot = StartGated(env, context, *svc, i, address, progress);
        {
          std::lock_guard lock(mu_);
          auto& slots = envs_[env]->slots;
          std::erase_if(slots,
                        [&](auto& s) { return s->name == "~starting" && s->address == address; });
        }
        if (!slot.ok()) return slot.error();
        started.push_back(std::move(*slot));
      }
      {
        std::lock_guard lock(mu_);
        auto& slots = envs_[env]->slots;
        for (auto it = slots.begin(); it != slots.end();) {
          if ((*it)->service == svc->name) {
            supervisor_->Remove(SupervisorSlot(env, (*it)->name));
            old.push_back(std::move(*it));
            it = slots.erase(it);
          } else {
            ++it;
          }
        }
        for (auto& s : started) {
          Supervise(env, *s, true);
          slots.push_back(std::move(s));
        }
        started.clear();
      }
      PushRoutes(env);
      // The old tasks leave rotation first, then stop once their open requests have finished.
      if (!old.empty()) WaitForDrain(env);
      for (auto& s : old) {
        (void)runtime_->Stop(s->handle);
        (void)store_->DeleteTask(env, s->task_id);
      }
      return fmt::format(
          "{} healthy in {}{}", svc->count == 1 ? "1 task" : fmt::format("{} tasks", svc->count),
          Seconds(Since(t0)), old.empty() ? "" : fmt::format(", {} old stopped", old.size()));
    });
    if (!done.ok()) return fail(done.error());
  }
  for (const auto& step : plan.steps) {
    if (step.action != plan::Action::kRemoveService) continue;
    (void)op.Step("remove " + step.target, [&]() -> Result<std::string> {
      std::vector<std::unique_ptr<Slot>> gone;
      {
        std::lock_guard lock(mu_);
        auto& slots = envs_[env]->slots;
        for (auto it = slots.begin(); it != slots.end();) {
          if ((*it)->service == step.target) {
            supervisor_->Remove(SupervisorSlot(env, (*it)->name));
            gone.push_back(std::move(*it));
            it = slots.erase(it);
          } else {
            ++it;
          }
        }
      }
      PushRoutes(env);
      if (!gone.empty()) WaitForDrain(env);
      for (auto& s : gone) {
        (void)runtime_->Stop(s->handle);
        (void)store_->DeleteTask(env, s->task_id);
      }
      return fmt::format("{} stopped", gone.size());
    });
  }
  PushRoutes(env);

  if (create) {
    for (const auto& task : project->tasks) {
      if (task.after != spec::Task::After::kCreate) continue;
      auto ran = run_task(task);
      if (!ran.ok()) return fail(ran.error());
    }
  }

  // What was applied, for the next plan and for recovery.
  plan::Recorded applied;
  applied.versions = wanted.versions;
  applied.env_fingerprint = plan::EnvFingerprint(*project, *env_spec);
  for (const auto& svc : project->services) {
    applied.services[svc.name] =
        plan::ServiceFingerprint(svc, wanted.versions[svc.image], applied.env_fingerprint);
    applied.service_counts[svc.name] = svc.count;
    applied.service_images[svc.name] = svc.image;
  }
  applied.database = project->postgres.has_value();
  applied.redis = project->redis.has_value();
  json spec_json = plan::RecordedJson(applied);
  spec_json["project_toml"] = project_text;
  spec_json["env_toml"] = env_text;
  spec_json["project_dir"] = project_dir.string();
  Status recorded_ok = store_->Transact([&](state::Store& tx) -> Status {
    for (const auto& [image, v] : resolved)
      ADHOC_RETURN_IF_ERROR(
          tx.PutVersion({env, image, v.ref, v.commit, v.tree, release_paths[image].string(), 0}));
    ADHOC_ASSIGN_OR_RETURN(auto e, tx.GetEnvironment(env));
    e.status = state::EnvStatus::kRunning;
    e.owner = env_spec->owner;
    e.ttl_seconds = env_spec->ttl ? std::optional<int64_t>(env_spec->ttl->count()) : std::nullopt;
    e.spec_json = spec_json.dump();
    e.env_file_hash = Sha256Hex(env_text).substr(0, 16);
    return tx.PutEnvironment(e).ok() ? OkStatus() : Failed("recording the environment");
  });
  if (!recorded_ok.ok()) return fail(recorded_ok.error());
  (void)store_->AppendEvent(env, create ? "created" : "updated",
                            fmt::format("{} by up", create ? "created" : "updated"));
  (void)op.Finish(state::OperationStatus::kDone);
  return EnvironmentJson(env);
}

void ControlPlane::WaitForDrain(const std::string& env) {
  // The router applies a route change before it answers the feed, so requests that arrive
  // after PushRoutes go to the new targets; the ones already in flight may still be on an old
  // one. Wait (bounded, like the seed's deregistration delay of 5 s) until the environment has
  // none in flight: from then on nothing of it is on an old target.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    auto stats = router_->Stats();
    if (!stats.ok()) return;  // no router: nothing routes to the old tasks
    const json& counters = (*stats)["envs"];
    if (!counters.contains(env) || counters[env].value("in_flight", 0) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status ControlPlane::RemoveEverything(const std::string& env) {
  std::vector<std::unique_ptr<Slot>> slots;
  {
    std::lock_guard lock(mu_);
    auto live = envs_.find(env);
    if (live != envs_.end()) {
      for (auto& s : live->second->slots) {
        supervisor_->Remove(SupervisorSlot(env, s->name));
        slots.push_back(std::move(s));
      }
      envs_.erase(live);
    }
  }
  Status first;
  auto keep = [&first](Status s) {
    if (first.ok() && !s.ok()) first = s;
  };
  // Every task folder, supervised or not (a one-off task, a task started before a crash).
  std::vector<std::thread> stoppers;
  for (auto& s : slots) stoppers.emplace_back([this, h = s->handle] { (void)runtime_->Stop(h); });
  for (auto& t : stoppers) t.join();
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(paths::TasksDir(options_.home, env), ec)) {
    auto handle = runtime_->Adopt(entry.path());
    if (handle.ok() && runtime_->Inspect(*handle).kind == runtime::TaskState::kRunning)
      keep(runtime_->Stop(*handle));
  }
  // A router that does not answer now gets the whole table (without this env) when it is
  // started again, so its routes cannot outlive the environment.
  if (router_->Running())
    if (Status s = router_->RemoveEnv(env); !s.ok())
      ServerLog("destroy " + env + ": " + s.error().message());

  auto record = store_->FindEnvironment(env);
  std::string block = record.ok() && *record ? (*record)->address_block : "";
  if (fs::exists(paths::RedisDir(options_.home, env))) {
    std::string host = "127.0.0.1";
    if (auto b = runtime::ParseBlock(block); b.ok()) host = b->RedisAddress();
    resources::RedisInstance redis(options_.home, env, {.host = host});
    keep(std::move(redis.Destroy()).context("removing Redis"));
  }
  if (fs::exists(paths::PostgresData(options_.home) / "PG_VERSION")) {
    Status dropped = [&]() -> Status {
      ADHOC_RETURN_IF_ERROR(EnsureBase(true));
      ADHOC_ASSIGN_OR_RETURN(
          auto admin, resources::ConnectPostgresAdmin(options_.home, options_.postgres_port));
      resources::EnvironmentDatabases dbs(*admin, runtime::BaseAddress(options_.home),
                                          options_.postgres_port);
      ADHOC_ASSIGN_OR_RETURN(auto objects, dbs.ListEnvironmentDatabases());
      for (const auto& o : objects)
        if (o.env == env && o.kind == resources::ManagedObject::Kind::kDatabase)
          ADHOC_RETURN_IF_ERROR(dbs.DropEnvironmentDatabase(env, o.name));
      ADHOC_RETURN_IF_ERROR(dbs.DropEnvironmentRole(env));
      return OkStatus();
    }();
    keep(std::move(dropped).context("dropping the database"));
  }
  keep(resources::RemoveEnvironmentFolders(options_.home, env));
  fs::remove(paths::AccessLog(options_.home, env), ec);
  // The record goes last, and only when everything else is gone, so that `destroy` can be
  // run again to finish what failed.
  if (!first.ok()) return first;
  if (!block.empty()) keep(store_->ReleaseBlock(block));
  if (record.ok() && *record) keep(store_->DeleteEnvironment(env));
  return first;
}

Result<json> ControlPlane::Destroy(const std::string& env, Progress& progress) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  ADHOC_ASSIGN_OR_RETURN(auto op,
                         JournaledOperation::Begin(*store_, progress, env, "destroy", "{}"));
  (void)store_->SetEnvironmentStatus(env, state::EnvStatus::kDestroying);
  auto removed = op.Step("remove everything", [&]() -> Result<std::string> {
    ADHOC_RETURN_IF_ERROR(RemoveEverything(env));
    return std::string("processes, routes, Redis, database, role, folders and address");
  });
  if (!removed.ok()) {
    (void)op.Finish(state::OperationStatus::kFailed, removed.error().message());
    return Error(removed.error().kind(), "destroy " + env + ": " + removed.error().message() +
                                             "\nRun `adhoc destroy " + env + "` again to finish.");
  }
  (void)store_->AppendEvent(env, "destroyed", "destroyed");
  (void)op.Finish(state::OperationStatus::kDone);
  return json{{"destroyed", env}};
}

Result<int> ControlPlane::Run(const std::string& env, const std::string& task_name,
                              const std::vector<std::string>& argv, Progress& progress) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  std::shared_ptr<const LaunchContext> context;
  {
    std::lock_guard lock(mu_);
    auto live = envs_.find(env);
    if (live == envs_.end() || !live->second->context)
      return Failed("'" + env + "' is not running (status " +
                    std::string(state::ToString(found->status)) + ")");
    context = live->second->context;
  }
  ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(found->address_block));
  LaunchRequest request;
  std::chrono::milliseconds timeout = std::chrono::hours(24);
  if (!task_name.empty()) {
    const spec::Task* task = context->project->FindTask(task_name);
    if (!task) {
      std::string names;
      for (const auto& t : context->project->tasks) names += (names.empty() ? "" : ", ") + t.name;
      return NotFound("no task '" + task_name + "' in adhoc.toml (tasks: " + names + ")");
    }
    ADHOC_ASSIGN_OR_RETURN(std::string id, store_->NextTaskId(env, task->name));
    request = TaskLaunch(*task, id, block.Address(2));
    timeout = task->timeout;
  } else {
    if (argv.empty()) return BadInput("give a task name or a command after --");
    // A command runs with the first service's image, environment and folder.
    const auto& project = *context->project;
    if (project.services.empty()) return BadInput("adhoc.toml has no service to run a command as");
    const spec::Service& svc = project.services.front();
    ADHOC_ASSIGN_OR_RETURN(std::string id, store_->NextTaskId(env, "run"));
    request.process = "run";
    request.task_id = id;
    request.image = svc.image;
    request.own_env = &svc.env;
    request.address = block.Address(2);
    std::string command;
    for (const auto& a : argv) {
      std::string quoted = ShellQuote(a), escaped;
      // The user's words are not templates: a literal brace stays a brace.
      for (char c : quoted) escaped += c == '{' ? std::string("{{") : std::string(1, c);
      command += (command.empty() ? "" : " ") + escaped;
    }
    request.command = command;
  }
  (void)store_->AppendEvent(env, "run", request.process + " (" + request.task_id + ")");
  return RunTaskNow(env, *context, request, timeout, progress, nullptr);
}

Result<std::shared_ptr<ControlPlane::LiveEnv>> ControlPlane::RestoreLive(
    const state::Environment& env) {
  auto j = json::parse(env.spec_json, nullptr, false);
  if (j.is_discarded() || !j.contains("project_toml"))
    return Failed("'" + env.name + "' has no applied files recorded");
  auto project = spec::ParseProject(j.value("project_toml", ""));
  if (!project.ok()) return project.status().error();
  auto env_file = spec::ParseEnvFile(j.value("env_toml", ""), env.name,
                                     "envs/" + env.name + ".toml", &project.value);
  if (!env_file.ok()) return env_file.status().error();
  auto p = std::make_shared<const spec::Project>(std::move(project.value));
  auto e = std::make_shared<const spec::EnvFile>(std::move(env_file.value));
  ADHOC_ASSIGN_OR_RETURN(auto facts, LoadFacts(env, *p));
  auto context = std::make_shared<LaunchContext>(LaunchContext{p, e, facts});
  auto live = std::make_shared<LiveEnv>();
  live->context = context;
  ADHOC_ASSIGN_OR_RETURN(auto tasks, store_->ListTasks(env.name));
  for (const auto& svc : p->services) {
    int index = 0;
    for (const auto& t : tasks) {
      if (t.kind != "service" || t.process != svc.name) continue;
      if (t.status == state::TaskStatus::kStopped || t.status == state::TaskStatus::kFailed)
        continue;
      auto handle = runtime_->Adopt(paths::TaskDir(options_.home, env.name, t.id));
      bool running = handle.ok() && runtime_->Inspect(*handle).kind == runtime::TaskState::kRunning;
      if (index >= svc.count) {
        // More than wanted (an update interrupted mid-roll): the newest extras go.
        if (running) (void)runtime_->Stop(*handle);
        (void)store_->DeleteTask(env.name, t.id);
        continue;
      }
      auto slot = NewSlot(env.name, context, svc, index++, t.address);
      slot->task_id = t.id;
      if (running) {
        slot->handle = *handle;
        slot->healthy = true;  // it served before the restart; probes confirm it
      }
      // Not running (after a machine restart: nothing is): the supervisor starts it again.
      Supervise(env.name, *slot, running);
      live->slots.push_back(std::move(slot));
    }
    while (index < svc.count) {
      ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(env.address_block));
      std::set<std::string> used;
      for (auto& s : live->slots) used.insert(s->address);
      ADHOC_ASSIGN_OR_RETURN(std::string address, runtime::AllocateTaskAddress(block, used));
      auto slot = NewSlot(env.name, context, svc, index++, address);
      Supervise(env.name, *slot, false);
      live->slots.push_back(std::move(slot));
    }
  }
  return live;
}

Status ControlPlane::Recover() {
  // Operations a dead control plane left: a new environment half made is undone, a destroy is
  // finished, anything else is closed as interrupted (what ran before keeps running).
  ADHOC_ASSIGN_OR_RETURN(auto unfinished, store_->ListUnfinishedOperations());
  NoProgress quiet;
  for (const auto& op : unfinished) {
    auto record = store_->FindEnvironment(op.env);
    bool half_made = op.kind == "up" && record.ok() && *record &&
                     (*record)->status == state::EnvStatus::kCreating;
    if (half_made || op.kind == "destroy") {
      Status s = RemoveEverything(op.env);
      (void)store_->FinishOperation(
          op.id, half_made ? state::OperationStatus::kUndone : state::OperationStatus::kDone,
          s.ok() ? "interrupted; " + std::string(half_made ? "undone" : "finished") + " by recovery"
                 : s.error().message());
    } else {
      if (record.ok() && *record && (*record)->status == state::EnvStatus::kUpdating)
        (void)store_->SetEnvironmentStatus(op.env, state::EnvStatus::kRunning);
      (void)store_->FinishOperation(op.id, state::OperationStatus::kFailed,
                                    "interrupted by a restart of the control plane");
    }
  }
  ADHOC_ASSIGN_OR_RETURN(auto all, store_->ListEnvironments());
  // A router that outlived us may still route what recovery just removed.
  if (all.empty()) return router_->Running() ? PushAllRoutes() : OkStatus();
  // The order of DESIGN: database, Redis, services (before-deploy tasks are not re-run), routes.
  bool postgres = false;
  for (const auto& env : all) {
    auto j = json::parse(env.spec_json, nullptr, false);
    if (j.is_discarded()) continue;
    auto project = spec::ParseProject(j.value("project_toml", ""));
    if (project.ok() && project.value.postgres) postgres = true;
  }
  Status base = EnsureBase(postgres);
  ServerLog(fmt::format("recovery: {} environment(s); base {}", all.size(),
                        base.ok() ? std::string(postgres ? "with PostgreSQL" : "without PostgreSQL")
                                  : base.error().message()));
  for (const auto& env : all) {
    auto live = RestoreLive(env);
    if (!live.ok()) {
      ServerLog("recovery of " + env.name + ": " + live.error().message());
      continue;
    }
    std::lock_guard lock(mu_);
    envs_[env.name] = *live;
  }
  return PushAllRoutes();
}

Result<json> ControlPlane::EnvironmentJson(const std::string& env) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  const auto& e = *found;
  json out = {{"name", e.name},
              {"status", state::ToString(e.status)},
              {"url", e.url},
              {"hostname", e.hostname},
              {"owner", e.owner},
              {"created_ms", e.created_at},
              {"updated_ms", e.updated_at},
              {"address_block", e.address_block}};
  if (e.last_request_at) out["last_request_ms"] = *e.last_request_at;
  if (e.ttl_seconds) {
    out["ttl_ms"] = *e.ttl_seconds * 1000;
    out["expires_ms"] = e.last_request_at.value_or(e.created_at) + *e.ttl_seconds * 1000;
  }
  json versions = json::object();
  ADHOC_ASSIGN_OR_RETURN(auto vs, store_->ListVersions(env));
  for (const auto& v : vs)
    versions[v.image] = {{"ref", v.ref}, {"commit", v.commit}, {"tree", v.tree}};
  out["versions"] = versions;
  ADHOC_ASSIGN_OR_RETURN(auto tasks, store_->ListTasks(env));
  json services = json::array();
  uint64_t total_memory = 0;
  const std::map<pid_t, uint64_t> rss_by_group = RssByProcessGroup();
  {
    std::lock_guard lock(mu_);
    auto live = envs_.find(env);
    if (live != envs_.end() && live->second->context) {
      const auto& project = *live->second->context->project;
      for (const auto& svc : project.services) {
        json s = {{"name", svc.name}, {"count", svc.count}, {"tasks", json::array()}};
        if (svc.port) s["port"] = *svc.port;
        json routes = json::array();
        for (const auto& r : svc.routes) routes.push_back(r.pattern);
        s["routes"] = routes;
        int healthy = 0;
        bool failed = false;
        for (const auto& slot : live->second->slots) {
          if (slot->service != svc.name) continue;
          auto rss_it = rss_by_group.find(static_cast<pid_t>(slot->handle.task.pid));
          uint64_t rss = rss_it != rss_by_group.end() ? rss_it->second : 0;
          total_memory += rss;
          healthy += slot->healthy;
          failed |= slot->failed;
          int restarts = supervisor_->Restarts(SupervisorSlot(env, slot->name));
          s["tasks"].push_back({{"id", slot->task_id},
                                {"status", slot->failed    ? "failed"
                                           : slot->healthy ? "healthy"
                                                           : "starting"},
                                {"pid", slot->handle.task.pid},
                                {"address", slot->address},
                                {"restarts", restarts},
                                {"memory_bytes", rss}});
        }
        s["status"] = failed ? "failed" : healthy >= svc.count ? "healthy" : "starting";
        services.push_back(s);
      }
    }
  }
  out["services"] = services;
  out["memory_bytes"] = total_memory;
  json one_off = json::array();
  for (const auto& t : tasks)
    if (t.kind == "task")
      one_off.push_back({{"id", t.id},
                         {"process", t.process},
                         {"status", state::ToString(t.status)},
                         {"exit_code", t.exit_code ? json(*t.exit_code) : json(nullptr)}});
  out["tasks"] = one_off;
  ADHOC_ASSIGN_OR_RETURN(auto last, store_->LastOperation(env));
  if (last)
    out["last_operation"] = {{"id", last->id},
                             {"kind", last->kind},
                             {"status", state::ToString(last->status)},
                             {"started_ms", last->started_at},
                             {"error", last->error}};
  std::string first_service = services.empty() ? "SERVICE" : services[0]["name"].get<std::string>();
  out["commands"] = {{"shell", "adhoc exec " + env + " " + first_service},
                     {"logs", "adhoc logs " + env + " " + first_service + " -f"},
                     {"database", "adhoc exec " + env + " " + first_service +
                                      " -- /usr/bin/python3 manage.py dbshell"},
                     {"destroy", "adhoc destroy " + env}};
  return out;
}

Result<json> ControlPlane::ListJson() {
  ADHOC_ASSIGN_OR_RETURN(auto all, store_->ListEnvironments());
  json envs = json::array();
  for (const auto& e : all) {
    auto j = EnvironmentJson(e.name);
    if (j.ok()) envs.push_back(*j);
  }
  return json{{"environments", envs}};
}

Result<json> ControlPlane::ExecSpec(const std::string& env, const std::string& service) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  std::shared_ptr<const LaunchContext> context;
  std::string task_id, address;
  {
    std::lock_guard lock(mu_);
    auto live = envs_.find(env);
    if (live == envs_.end() || !live->second->context)
      return Failed("'" + env + "' is not running");
    context = live->second->context;
    for (auto& s : live->second->slots)
      if (s->service == service) {
        task_id = s->task_id;
        address = s->address;
        break;
      }
  }
  const spec::Service* svc = context->project->FindService(service);
  if (!svc) {
    std::string names;
    for (const auto& s : context->project->services) names += (names.empty() ? "" : ", ") + s.name;
    return NotFound("no service '" + service + "' in '" + env + "' (services: " + names + ")");
  }
  if (task_id.empty()) task_id = service + "-exec";
  LaunchRequest request = ServiceLaunch(*svc, task_id, address);
  ADHOC_ASSIGN_OR_RETURN(auto environment, ProcessEnvironment(*context->project, *context->env_file,
                                                              context->facts, request, *store_));
  auto release = context->facts.release_paths.find(svc->image);
  return json{
      {"env", environment},
      {"cwd", release != context->facts.release_paths.end() ? release->second.string() : "/"},
      {"service", service},
      {"task", task_id}};
}

}  // namespace adhoc::server
