#include "server/control_plane.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "common/paths.h"
#include "plan/recorded.h"
#include "resources/databases.h"
#include "resources/env_folders.h"
#include "resources/postgres_cluster.h"
#include "resources/redis.h"
#include "runtime/addresses.h"
#include "runtime/logs.h"
#include "server/launcher.h"
#include "server/operation.h"
#include "spec/loader.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

void ServerLog(const std::string& text) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::fprintf(stderr, "%s %s\n", buf, text.c_str());
}

namespace {

// Progress of an API request: ndjson events when the client asked for a stream.
class ApiProgress : public Progress {
 public:
  explicit ApiProgress(ApiResponder* responder) : responder_(responder) {}
  void StepStarted(const std::string& step) override {
    Send({{"type", "step"}, {"name", step}, {"status", "running"}});
  }
  void StepDone(const std::string& step, long long ms, const std::string& detail) override {
    Send({{"type", "step"},
          {"name", step},
          {"status", "done"},
          {"elapsed_ms", ms},
          {"detail", detail}});
  }
  void StepFailed(const std::string& step, long long ms, const std::string& message) override {
    Send({{"type", "step"},
          {"name", step},
          {"status", "failed"},
          {"elapsed_ms", ms},
          {"detail", message}});
  }
  void Log(const std::string& process, const std::string& task, const std::string& line) override {
    Send({{"type", "log"}, {"process", process}, {"task", task}, {"line", line}});
  }
  void Note(const std::string& message) override { Send({{"type", "note"}, {"message", message}}); }

 private:
  void Send(const json& event) {
    if (responder_) responder_->Event(event);
  }
  ApiResponder* responder_;
};

std::string Iso(state::Millis ms) {
  std::time_t t = ms / 1000;
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

}  // namespace

ControlPlaneOptions OptionsFromEnvironment(const fs::path& home) {
  ControlPlaneOptions o;
  o.home = home;
  o.adhoc_binary = SelfBinary();
  o.router.adhoc_binary = o.adhoc_binary;
  if (const char* listen = getenv("ADHOC_ROUTER_LISTEN"); listen && *listen) {
    std::string l = listen;
    auto colon = l.rfind(':');
    if (colon != std::string::npos) {
      o.router.listen_address = l.substr(0, colon);
      o.router.listen_port = std::atoi(l.c_str() + colon + 1);
    }
  }
  if (const char* threads = getenv("ADHOC_ROUTER_THREADS"); threads && *threads)
    o.router.threads = std::atoi(threads);
  if (const char* port = getenv("ADHOC_POSTGRES_PORT"); port && *port)
    o.postgres_port = std::atoi(port);
  return o;
}

ControlPlane::ControlPlane(ControlPlaneOptions options) : options_(std::move(options)) {}

ControlPlane::~ControlPlane() { Shutdown(); }

Result<std::unique_ptr<ControlPlane>> ControlPlane::Open(ControlPlaneOptions options) {
  std::error_code ec;
  fs::create_directories(options.home, ec);
  if (ec) return Failed("creating adhoc's home " + options.home.string() + ": " + ec.message());
  // Others (PostgreSQL's own user, nginx's workers) must be able to traverse the home.
  chmod(options.home.c_str(), 0711);
  std::unique_ptr<ControlPlane> cp(new ControlPlane(std::move(options)));
  ADHOC_ASSIGN_OR_RETURN(cp->store_, state::Store::Open(paths::StateDb(cp->options_.home)));
  runtime::LocalRuntimeOptions ro;
  ro.shim_binary = cp->options_.adhoc_binary;
  ro.warn = [](const std::string& w) { ServerLog("warning: " + w); };
  cp->runtime_ = std::make_unique<runtime::LocalRuntime>(ro);
  cp->supervisor_ = std::make_unique<runtime::Supervisor>(*cp->runtime_, cp->clock_);
  cp->options_.router.adhoc_binary = cp->options_.adhoc_binary;
  cp->router_ = std::make_unique<RouterLink>(cp->options_.home, *cp->runtime_, cp->options_.router);
  cp->RegisterApi();
  return cp;
}

Status ControlPlane::Serve() {
  ADHOC_ASSIGN_OR_RETURN(auto lock, HomeLock::Acquire(paths::ServerLock(options_.home)));
  ServerLog(fmt::format("adhoc serve: pid {}, home {}", getpid(), options_.home.string()));
  Status recovered = Recover();
  if (!recovered.ok()) ServerLog("recovery: " + recovered.error().message());
  ADHOC_RETURN_IF_ERROR(api_.Start(paths::ServerSocket(options_.home)));
  std::thread loop([this] { Loop(); });
  {
    std::unique_lock lk(stop_mu_);
    stop_cv_.wait(lk, [this] { return stop_.load(); });
  }
  loop.join();
  api_.Stop();
  ServerLog("adhoc serve: stopped (tasks, Redis, PostgreSQL and the router keep running)");
  return OkStatus();
}

void ControlPlane::Shutdown() {
  {
    std::lock_guard lk(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
}

void ControlPlane::Loop() {
  while (!stop_) {
    LoopOnce();
    std::unique_lock lk(stop_mu_);
    stop_cv_.wait_for(lk, options_.loop_interval, [this] { return stop_.load(); });
  }
}

void ControlPlane::LoopOnce() {
  std::vector<std::string> changed;
  {
    std::lock_guard lock(mu_);
    for (const runtime::SupervisorEvent& e : supervisor_->Tick()) {
      auto slash = e.slot.find('/');
      std::string env = e.slot.substr(0, slash), slot_name = e.slot.substr(slash + 1);
      auto live = envs_.find(env);
      if (live == envs_.end()) continue;
      Slot* slot = nullptr;
      for (auto& s : live->second->slots)
        if (s->name == slot_name) slot = s.get();
      if (!slot) continue;
      if (e.kind == runtime::SupervisorEvent::Kind::kStarted) {
        if (slot->task_id != e.handle.id) (void)store_->DeleteTask(env, slot->task_id);
        slot->task_id = e.handle.id;
        slot->handle = e.handle;
        slot->healthy = slot->prober == nullptr;
        if (slot->prober) {
          const spec::Service* svc = slot->context->project->FindService(slot->service);
          slot->health = std::make_unique<runtime::HealthTracker>(
              svc ? HealthSettingsFor(*svc) : runtime::HealthSettings{}, clock_);
        }
        auto task = store_->GetTask(env, e.handle.id);
        if (task.ok()) {
          task->pid = e.handle.task.pid;
          task->start_time = e.handle.task.start_time;
          task->shim_pid = e.handle.shim.pid;
          task->shim_start_time = e.handle.shim.start_time;
          task->status = state::TaskStatus::kStarting;
          (void)store_->PutTask(*task);
        }
        (void)store_->AppendEvent(env, "task-started", e.message);
      } else if (e.kind == runtime::SupervisorEvent::Kind::kExited) {
        slot->healthy = false;
        auto task = store_->GetTask(env, slot->task_id);
        if (task.ok()) {
          task->status = state::TaskStatus::kExited;
          task->exit_code = e.exit.ShellCode();
          task->restarts = supervisor_->Restarts(e.slot);
          (void)store_->PutTask(*task);
        }
        (void)store_->AppendEvent(env, "task-exited", e.message);
        changed.push_back(env);
      } else {
        slot->healthy = false;
        slot->failed = true;
        std::string lines;
        for (const auto& l : e.last_lines) lines += "\n  " + l;
        (void)store_->AppendEvent(env, "service-failed", e.message + lines);
        auto task = store_->GetTask(env, slot->task_id);
        if (task.ok()) {
          task->status = state::TaskStatus::kFailed;
          (void)store_->PutTask(*task);
        }
        (void)store_->SetEnvironmentStatus(env, state::EnvStatus::kFailed);
        changed.push_back(env);
      }
    }
  }
  CheckHealth();
  for (const auto& env : changed) PushRoutes(env);
  // PostgreSQL and each environment's Redis are their own daemons: if one died, start it again.
  if (std::chrono::steady_clock::now() >= next_base_check_) {
    next_base_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    CheckBase();
  }
  // A router that died is started again and given the whole table.
  if (!stop_ && !envs_.empty() && !router_->Running()) {
    bool started = false;
    if (router_->EnsureRunning(&started).ok() && started) (void)PushAllRoutes();
  }
}

void ControlPlane::CheckBase() {
  bool postgres = false;
  std::vector<std::pair<std::string, std::string>> redis;  // env, address
  {
    std::lock_guard lock(mu_);
    for (auto& [env, live] : envs_) {
      if (!live->context) continue;
      postgres |= live->context->project->postgres.has_value();
      if (live->context->project->redis) redis.push_back({env, live->context->facts.redis_host});
    }
  }
  if (postgres)
    if (Status s = EnsureBase(true); !s.ok()) ServerLog("base: " + s.error().message());
  RecordRequests();
  for (const auto& [env, address] : redis)
    if (Status s = EnsureRedisRunning(env, address); !s.ok())
      ServerLog("redis of " + env + ": " + s.error().message());
}

void ControlPlane::RecordRequests() {
  // The router counts requests per environment; their last time feeds `ls` and the TTL.
  if (!router_->Running()) return;
  auto stats = router_->Stats();
  if (!stats.ok() || !stats->contains("envs")) return;
  for (auto& [env, counters] : (*stats)["envs"].items()) {
    long long last = counters.value("last_request_ms", 0LL);
    if (last <= 0) continue;
    auto record = store_->FindEnvironment(env);
    if (!record.ok() || !*record) continue;
    if ((*record)->last_request_at.value_or(0) < last) (void)store_->RecordRequest(env, last);
  }
}

void ControlPlane::CheckHealth() {
  struct Due {
    std::string env;
    std::string slot;
    std::string task_id;
    std::shared_ptr<runtime::Prober> prober;
    std::chrono::milliseconds timeout;
  };
  std::vector<Due> due;
  {
    std::lock_guard lock(mu_);
    for (auto& [env, live] : envs_)
      for (auto& slot : live->slots)
        if (slot->prober && slot->health && !slot->failed && slot->health->Due())
          due.push_back({env, slot->name, slot->task_id, slot->prober,
                         slot->health->state() == runtime::HealthTracker::State::kStarting
                             ? std::chrono::milliseconds(1000)
                             : std::chrono::milliseconds(5000)});
  }
  if (due.empty()) return;
  std::vector<runtime::ProbeResult> results;
  for (auto& d : due) results.push_back(d.prober->Probe(d.timeout));
  std::set<std::string> changed;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < due.size(); ++i) {
      auto live = envs_.find(due[i].env);
      if (live == envs_.end()) continue;
      for (auto& slot : live->second->slots) {
        if (slot->name != due[i].slot || slot->task_id != due[i].task_id || !slot->health) continue;
        auto state = slot->health->Record(results[i]);
        bool healthy = state == runtime::HealthTracker::State::kHealthy;
        if (healthy != slot->healthy) {
          slot->healthy = healthy;
          changed.insert(due[i].env);
          auto task = store_->GetTask(due[i].env, slot->task_id);
          if (task.ok()) {
            task->status = healthy ? state::TaskStatus::kHealthy : state::TaskStatus::kUnhealthy;
            (void)store_->PutTask(*task);
          }
          (void)store_->AppendEvent(due[i].env, healthy ? "task-healthy" : "task-unhealthy",
                                    slot->task_id + ": " + results[i].detail);
        }
      }
    }
  }
  for (const auto& env : changed) PushRoutes(env);
}

json ControlPlane::RouterEnvJson(const std::string& env) {
  auto record = store_->GetEnvironment(env);
  auto routes = store_->ListRoutes(env);
  json out = {{"name", env}, {"hosts", json::array()}, {"routes", json::array()}};
  if (!record.ok()) return out;
  out["hosts"].push_back(record->hostname);
  // Routes without a healthy target answer 503 "starting" on their own; the whole
  // environment is only marked when it sleeps.
  std::string status = record->status == state::EnvStatus::kSleeping ? "sleeping" : "running";
  out["status"] = status;
  auto live = envs_.find(env);
  if (!routes.ok()) return out;
  for (const auto& r : *routes) {
    json route = {{"pattern", r.pattern}};
    if (r.priority) route["priority"] = *r.priority;
    if (r.kind == state::RouteKind::kFolder) {
      route["folder"] = r.folder_path;
    } else {
      route["service"] = r.service;
      json targets = json::array();
      if (live != envs_.end()) {
        const spec::Service* svc = live->second->context->project->FindService(r.service);
        for (auto& slot : live->second->slots)
          if (slot->service == r.service && slot->healthy && svc && svc->port)
            targets.push_back({{"id", slot->task_id},
                               {"address", slot->address + ":" + std::to_string(*svc->port)}});
      }
      route["targets"] = targets;
    }
    out["routes"].push_back(route);
  }
  return out;
}

void ControlPlane::PushRoutes(const std::string& env) {
  json body;
  {
    std::lock_guard lock(mu_);
    body = RouterEnvJson(env);
  }
  Status s = router_->PutEnv(body);
  if (!s.ok()) ServerLog("router: " + s.error().message());
}

Status ControlPlane::PushAllRoutes() {
  json envs = json::array();
  {
    std::lock_guard lock(mu_);
    ADHOC_ASSIGN_OR_RETURN(auto all, store_->ListEnvironments());
    for (const auto& e : all) envs.push_back(RouterEnvJson(e.name));
  }
  return router_->ReplaceAll(envs);
}

Status ControlPlane::EnsureBase(bool postgres) {
  std::lock_guard lock(base_mu_);
  if (postgres) {
    resources::PostgresCluster cluster(
        options_.home,
        {.listen_address = runtime::BaseAddress(options_.home), .port = options_.postgres_port});
    ADHOC_RETURN_IF_ERROR(std::move(cluster.Start()).context("starting the base PostgreSQL"));
  }
  bool started = false;
  ADHOC_RETURN_IF_ERROR(router_->EnsureRunning(&started));
  if (started) {
    // A new router starts empty: give it the table without blocking on our own lock.
    json envs = json::array();
    {
      std::lock_guard l(mu_);
      auto all = store_->ListEnvironments();
      if (all.ok())
        for (const auto& e : *all) envs.push_back(RouterEnvJson(e.name));
    }
    ADHOC_RETURN_IF_ERROR(router_->ReplaceAll(envs));
  }
  return OkStatus();
}

Status ControlPlane::BaseUp(Progress& progress) {
  progress.StepStarted("base");
  auto t0 = std::chrono::steady_clock::now();
  Status s = EnsureBase(true);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!s.ok()) {
    progress.StepFailed("base", ms, s.error().message());
    return s;
  }
  progress.StepDone("base", ms, "PostgreSQL and the router are running");
  return OkStatus();
}

Status ControlPlane::BaseDown(Progress& progress) {
  progress.StepStarted("base down");
  auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    for (auto& [env, live] : envs_) {
      for (auto& slot : live->slots) {
        supervisor_->Remove(SupervisorSlot(env, slot->name));
        (void)runtime_->Stop(slot->handle);
      }
      resources::RedisInstance redis(options_.home, env, {.host = "127.0.0.1"});
      if (redis.Adopt().ok()) (void)redis.Stop();
    }
    envs_.clear();
  }
  Status router = router_->Stop();
  resources::PostgresCluster cluster(
      options_.home,
      {.listen_address = runtime::BaseAddress(options_.home), .port = options_.postgres_port});
  Status pg = cluster.Stop();
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!pg.ok()) {
    progress.StepFailed("base down", ms, pg.error().message());
    return pg;
  }
  progress.StepDone("base down", ms, "every process stopped; data kept");
  Shutdown();
  return router;
}

void ControlPlane::RegisterApi() {
  api_.Handle("GET", "/v1/health", [this](const ApiRequest&, ApiResponder& r) {
    r.Reply(200, {{"ok", true},
                  {"version", "0.1.0"},
                  {"pid", getpid()},
                  {"home", options_.home.string()},
                  {"router", options_.router.listen_address + ":" +
                                 std::to_string(options_.router.listen_port)}});
  });
  api_.Handle("GET", "/v1/environments", [this](const ApiRequest&, ApiResponder& r) {
    auto j = ListJson();
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api_.Handle("GET", "/v1/environments/{env}", [this](const ApiRequest& req, ApiResponder& r) {
    auto j = EnvironmentJson(req.params.at("env"));
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  // Long operations: progress streamed when asked, the result (or error) last.
  auto long_op = [](ApiResponder& r, bool stream, const Result<json>& result) {
    if (!result.ok()) return r.Fail(result.error());
    if (stream)
      r.Event({{"type", "result"}, {"ok", true}, {"env", *result}});
    else
      r.Reply(200, *result);
  };
  api_.Handle("POST", "/v1/environments/{env}/up",
              [this, long_op](const ApiRequest& req, ApiResponder& r) {
                ApiProgress progress(req.wants_stream ? &r : nullptr);
                std::string project = req.body.is_object() ? req.body.value("project", "") : "";
                if (project.empty())
                  return r.Fail(BadInput("the request needs \"project\": the repository's path"));
                long_op(r, req.wants_stream, Up(req.params.at("env"), project, progress));
              });
  api_.Handle("POST", "/v1/environments/{env}/destroy",
              [this, long_op](const ApiRequest& req, ApiResponder& r) {
                ApiProgress progress(req.wants_stream ? &r : nullptr);
                long_op(r, req.wants_stream, Destroy(req.params.at("env"), progress));
              });
  api_.Handle("POST", "/v1/environments/{env}/run",
              [this, long_op](const ApiRequest& req, ApiResponder& r) {
                ApiProgress progress(req.wants_stream ? &r : nullptr);
                std::string task;
                std::vector<std::string> argv;
                if (req.body.is_object()) {
                  task = req.body.value("task", "");
                  if (req.body.contains("command") && req.body["command"].is_array())
                    argv = req.body["command"].get<std::vector<std::string>>();
                }
                auto code = Run(req.params.at("env"), task, argv, progress);
                if (!code.ok()) return r.Fail(code.error());
                long_op(r, req.wants_stream, json{{"exit_code", *code}});
              });
  api_.Handle("GET", "/v1/environments/{env}/exec/{service}",
              [this](const ApiRequest& req, ApiResponder& r) {
                auto j = ExecSpec(req.params.at("env"), req.params.at("service"));
                j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
              });
  api_.Handle("GET", "/v1/environments/{env}/logs", [this](const ApiRequest& req, ApiResponder& r) {
    std::string env = req.params.at("env");
    auto tasks = store_->ListTasks(env);
    if (!tasks.ok()) return r.Fail(tasks.error());
    if (!store_->FindEnvironment(env).ok() || !*store_->FindEnvironment(env))
      return r.Fail(NotFound("no environment '" + env + "'"));
    std::string process = req.query.count("process") ? req.query.at("process") : "";
    size_t tail = req.query.count("tail") ? std::stoul(req.query.at("tail")) : 100;
    bool follow = req.query.count("follow") && req.query.at("follow") == "1";
    std::optional<std::chrono::system_clock::time_point> since;
    if (req.query.count("since_ms"))
      since = std::chrono::system_clock::time_point(
          std::chrono::milliseconds(std::stoll(req.query.at("since_ms"))));
    // The logs on disk, by process folder: tasks that ended keep theirs.
    std::vector<std::pair<std::string, fs::path>> logs;  // (process, log file)
    std::error_code ec;
    fs::path dir = paths::LogsDir(options_.home, env);
    for (auto& pdir : fs::directory_iterator(dir, ec)) {
      std::string name = pdir.path().filename();
      if (!process.empty() && name != process) continue;
      for (auto& f : fs::directory_iterator(pdir.path(), ec))
        if (f.path().extension() == ".log") logs.push_back({name, f.path()});
    }
    if (!process.empty() && logs.empty()) {
      std::lock_guard lock(mu_);
      auto live = envs_.find(env);
      bool known = false;
      if (live != envs_.end()) {
        const auto& p = *live->second->context->project;
        known = p.FindService(process) || p.FindTask(process);
      }
      if (!known) return r.Fail(NotFound("no service or task '" + process + "' in '" + env + "'"));
    }
    std::sort(logs.begin(), logs.end(), [](auto& a, auto& b) {
      std::error_code e1, e2;
      return fs::last_write_time(a.second, e1) < fs::last_write_time(b.second, e2);
    });
    std::vector<json> lines;
    for (auto& [proc, file] : logs) {
      std::string task = file.stem();
      auto read =
          since ? runtime::ReadLinesSince(file, *since) : runtime::ReadLastLines(file, tail);
      if (!read.ok()) continue;
      for (auto& l : *read)
        lines.push_back({{"type", "log"},
                         {"process", proc},
                         {"task", task},
                         {"time", std::chrono::duration_cast<std::chrono::milliseconds>(
                                      l.time.time_since_epoch())
                                      .count()},
                         {"line", l.text}});
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const json& a, const json& b) { return a["time"] < b["time"]; });
    if (!req.wants_stream) return r.Reply(200, {{"lines", lines}});
    for (auto& l : lines)
      if (!r.Event(l)) return;
    if (!follow) return;
    std::vector<std::pair<std::string, std::unique_ptr<runtime::LogFollower>>> followers;
    std::set<fs::path> followed;
    for (auto& [proc, file] : logs) {
      followers.push_back({proc, std::make_unique<runtime::LogFollower>(file, true)});
      followed.insert(file);
    }
    // New tasks (a restart) get followed as their logs appear.
    for (int idle = 0; !stop_; ++idle) {
      for (auto& [proc, f] : followers) {
        for (auto& l : f->Poll())
          if (!r.Event({{"type", "log"},
                        {"process", proc},
                        {"line", l.text},
                        {"time", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     l.time.time_since_epoch())
                                     .count()}}))
            return;
      }
      if (idle % 20 == 0) {
        if (!r.Event({{"type", "keepalive"}})) return;
        for (auto& pdir : fs::directory_iterator(dir, ec)) {
          std::string name = pdir.path().filename();
          if (!process.empty() && name != process) continue;
          for (auto& f : fs::directory_iterator(pdir.path(), ec))
            if (f.path().extension() == ".log" && !followed.count(f.path())) {
              followed.insert(f.path());
              followers.push_back({name, std::make_unique<runtime::LogFollower>(f.path(), false)});
            }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  api_.Handle("POST", "/v1/base/up", [this, long_op](const ApiRequest& req, ApiResponder& r) {
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Status s = BaseUp(progress);
    if (!s.ok()) return r.Fail(s.error());
    long_op(r, req.wants_stream, json{{"postgres", "running"}, {"router", "running"}});
  });
  api_.Handle("POST", "/v1/base/down", [this, long_op](const ApiRequest& req, ApiResponder& r) {
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Status s = BaseDown(progress);
    if (!s.ok()) return r.Fail(s.error());
    long_op(r, req.wants_stream, json{{"postgres", "stopped"}, {"router", "stopped"}});
  });
  api_.Handle("GET", "/v1/operations/{id}", [this](const ApiRequest& req, ApiResponder& r) {
    auto op = store_->GetOperation(std::stoll(req.params.at("id")));
    if (!op.ok()) return r.Fail(op.error());
    json steps = json::array();
    for (auto& s : op->steps)
      steps.push_back({{"name", s.name}, {"status", state::ToString(s.status)}});
    r.Reply(200, {{"id", op->id},
                  {"env", op->env},
                  {"kind", op->kind},
                  {"status", state::ToString(op->status)},
                  {"error", op->error},
                  {"started", Iso(op->started_at)},
                  {"steps", steps}});
  });
  api_.Handle("GET", "/v1/events", [this](const ApiRequest& req, ApiResponder& r) {
    state::EventQuery q;
    if (req.query.count("env")) q.env = req.query.at("env");
    if (req.query.count("limit")) q.limit = std::stoi(req.query.at("limit"));
    auto events = store_->ListEvents(q);
    if (!events.ok()) return r.Fail(events.error());
    json out = json::array();
    for (auto& e : *events)
      out.push_back(
          {{"time", Iso(e.time)}, {"env", e.env}, {"kind", e.kind}, {"message", e.message}});
    r.Reply(200, {{"events", out}});
  });
  api_.Handle("POST", "/v1/shutdown", [this](const ApiRequest&, ApiResponder& r) {
    r.Reply(200, {{"ok", true}});
    Shutdown();
  });
}

}  // namespace adhoc::server
