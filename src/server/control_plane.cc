#include "server/control_plane.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "common/exec.h"
#include "common/paths.h"
#include "common/proc_files.h"
#include "plan/recorded.h"
#include "runtime/addresses.h"
#include "server/api_auth.h"
#include "server/api_routes.h"
#include "server/data_ops.h"
#include "server/garbage.h"
#include "server/keeper.h"
#include "server/launcher.h"
#include "server/lifetimes.h"
#include "server/planning.h"
#include "server/status_view.h"
#include "spec/duration.h"
#include "spec/names.h"

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

Result<int> ParsePort(const std::string& variable, const std::string& text) {
  int port = 0;
  bool digits = !text.empty() && text.size() <= 5 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) port = std::stoi(text);
  if (!digits || port < 1 || port > 65535)
    return BadInput(variable + "=" + text + ": the port must be a number from 1 to 65535");
  return port;
}

}  // namespace

Result<ControlPlaneOptions> OptionsFromEnvironment(const fs::path& home) {
  ControlPlaneOptions o;
  o.home = home;
  o.adhoc_binary = SelfBinary();
  o.router.adhoc_binary = o.adhoc_binary;
  if (const char* must = getenv("ADHOC_HOME_MUST_EXIST"); must && std::string(must) == "1")
    o.create_home = false;
  unsetenv("ADHOC_HOME_MUST_EXIST");  // for this process only, not those it starts
  if (const char* listen = getenv("ADHOC_ROUTER_LISTEN"); listen && *listen) {
    std::string l = listen;
    auto colon = l.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return BadInput("ADHOC_ROUTER_LISTEN=" + l + ": expected ADDRESS:PORT (127.0.0.1:8080)");
    o.router.listen_address = l.substr(0, colon);
    ADHOC_ASSIGN_OR_RETURN(o.router.listen_port,
                           ParsePort("ADHOC_ROUTER_LISTEN", l.substr(colon + 1)));
  }
  if (const char* https = getenv("ADHOC_ROUTER_HTTPS"); https && *https) {
    std::string l = https;
    auto colon = l.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return BadInput("ADHOC_ROUTER_HTTPS=" + l + ": expected ADDRESS:PORT (127.0.0.1:8443)");
    if (auto port = ParsePort("ADHOC_ROUTER_HTTPS", l.substr(colon + 1)); !port.ok())
      return port.error();
    o.router.tls_listen = l;
    const char* cert = getenv("ADHOC_ROUTER_TLS_CERT");
    const char* key = getenv("ADHOC_ROUTER_TLS_KEY");
    bool has_cert = cert && *cert, has_key = key && *key;
    if (has_cert != has_key)
      return BadInput(
          "ADHOC_ROUTER_TLS_CERT and ADHOC_ROUTER_TLS_KEY go together (or neither: "
          "adhoc makes a certificate and its CA)");
    if (has_cert) {
      o.router.tls_cert = cert;
      o.router.tls_key = key;
    }
    if (const char* domain = getenv("ADHOC_ROUTER_TLS_DOMAIN"); domain && *domain)
      o.router.tls_domain = domain;
    if (const char* redirect = getenv("ADHOC_ROUTER_REDIRECT_HTTP"); redirect && *redirect) {
      std::string r = redirect;
      if (r != "0" && r != "1")
        return BadInput("ADHOC_ROUTER_REDIRECT_HTTP=" + r + ": expected 1 or 0");
      o.router.redirect_http = r == "1";
    }
  }
  if (const char* threads = getenv("ADHOC_ROUTER_THREADS"); threads && *threads) {
    ADHOC_ASSIGN_OR_RETURN(o.router.threads, ParsePort("ADHOC_ROUTER_THREADS", threads));
  }
  if (const char* port = getenv("ADHOC_POSTGRES_PORT"); port && *port) {
    ADHOC_ASSIGN_OR_RETURN(o.postgres_port, ParsePort("ADHOC_POSTGRES_PORT", port));
  }
  return o;
}

ControlPlane::ControlPlane(ControlPlaneOptions options) : options_(std::move(options)) {}

ControlPlane::~ControlPlane() { Shutdown(false); }

Result<std::unique_ptr<ControlPlane>> ControlPlane::Open(ControlPlaneOptions options) {
  std::error_code ec;
  if (!options.create_home && !fs::exists(paths::StateDb(options.home), ec))
    return NotFound("adhoc's home " + options.home.string() + " is gone; not making it again");
  fs::create_directories(options.home, ec);
  if (ec) return Failed("creating adhoc's home " + options.home.string() + ": " + ec.message());
  // Others (PostgreSQL's own user, nginx's workers) must be able to traverse the home.
  chmod(options.home.c_str(), 0711);
  std::unique_ptr<ControlPlane> cp(new ControlPlane(std::move(options)));
  ControlPlane& c = *cp;
  ADHOC_ASSIGN_OR_RETURN(c.store_, state::Store::Open(paths::StateDb(c.options_.home)));
  runtime::LocalRuntimeOptions ro;
  ro.shim_binary = c.options_.adhoc_binary;
  ro.warn = [](const std::string& w) { ServerLog("warning: " + w); };
  c.runtime_ = std::make_unique<runtime::LocalRuntime>(ro);
  c.options_.router.adhoc_binary = c.options_.adhoc_binary;
  c.router_ = std::make_unique<RouterLink>(c.options_.home, *c.runtime_, c.options_.router);
  c.api_route_ = std::make_unique<ApiRouteSink>(
      *c.router_, std::vector<std::string>{c.options_.router.tls_domain});
  c.fork_servers_ = std::make_unique<ForkServers>(
      c.options_.home, *c.runtime_, [](const std::string& w) { ServerLog("warning: " + w); });
  c.factory_ = std::make_unique<LocalTaskFactory>(*c.store_, c.fork_servers_.get());
  c.fleet_ = std::make_unique<Fleet>(*c.runtime_, c.clock_, *c.store_, *c.api_route_, *c.factory_,
                                     FleetOptions{.home = c.options_.home});
  c.resources_ = std::make_unique<LocalResources>(
      c.options_.home, c.options_.postgres_port, *c.router_,
      [&c] {
        // A new router starts empty: give it the whole table.
        if (Status s = c.fleet_->PushAll(); !s.ok()) ServerLog("router: " + s.error().message());
      },
      c.fork_servers_.get());
  c.executor_ = std::make_unique<Executor>(
      *c.store_, *c.fleet_, *c.resources_,
      ExecutorOptions{.home = c.options_.home, .router_port = c.options_.router.listen_port});
  c.disk_ = std::make_unique<DiskUsage>(c.options_.home, c.options_.postgres_port);
  c.notifier_ = std::make_unique<Notifier>(*c.store_);
  RegisterApi(c.api_, c);
  c.started_ms_ = c.store_->Now();
  return cp;
}

Status ControlPlane::Serve() {
  ADHOC_ASSIGN_OR_RETURN(auto lock, HomeLock::Acquire(paths::ServerLock(options_.home)));
  ServerLog(fmt::format("adhoc serve: pid {}, home {}", getpid(), options_.home.string()));
  if (options_.keeper) AllowKeeper(options_.home);
  // The API first: ls and status answer while recovery runs.
  int tcp_port = 0;
  if (options_.api_over_tcp) {
    // Without its token the API stays on the Unix socket alone: the CLI still works.
    auto token = LoadOrCreateApiToken(options_.home);
    auto port = token.ok() ? api_.ListenTcp("127.0.0.1", 0, *token) : Result<int>(token.error());
    if (port.ok()) {
      api_token_ = *token;
      tcp_port = *port;
    } else {
      ServerLog("warning: the API is not served through the router (adhoc." +
                options_.router.tls_domain + "): " + port.error().message());
    }
  }
  ADHOC_RETURN_IF_ERROR(api_.Start(paths::ServerSocket(options_.home)));
  // No router yet is fine: the whole table it gets when it starts has the entry.
  if (tcp_port) (void)api_route_->SetApiAddress("127.0.0.1:" + std::to_string(tcp_port));
  if (options_.keeper)
    if (Status k = EnsureKeeper(options_.home, options_.adhoc_binary); !k.ok())
      ServerLog("keeper: " + k.error().message());
  Recover();
  std::thread loop([this] { Loop(); });
  {
    std::unique_lock lk(stop_mu_);
    stop_cv_.wait(lk, [this] { return stop_.load(); });
  }
  loop.join();
  jobs_.JoinAll();  // an expiry, sleep or wake under way finishes
  if (stop_keeper_ && options_.keeper) (void)StopKeeper(options_.home);
  api_.Stop();
  ServerLog("adhoc serve: stopped (tasks, Redis, PostgreSQL and the router keep running)");
  return OkStatus();
}

void ControlPlane::Shutdown(bool stop_keeper) {
  {
    std::lock_guard lk(stop_mu_);
    stop_keeper_ = stop_keeper;
    stop_ = true;
  }
  stop_cv_.notify_all();
  {
    std::lock_guard lk(recovered_mu_);
    recovered_ = true;  // nobody waits for a recovery that will not come
  }
  recovered_cv_.notify_all();
}

void ControlPlane::WaitUntilRecovered(Progress& progress) {
  std::unique_lock lk(recovered_mu_);
  // A recovery of a few environments takes milliseconds: say nothing unless it is long.
  if (recovered_cv_.wait_for(lk, std::chrono::milliseconds(500), [this] { return recovered_; }))
    return;
  progress.Note("waiting for the control plane to finish its recovery");
  recovered_cv_.wait(lk, [this] { return recovered_; });
}

void ControlPlane::Recover() {
  auto t0 = std::chrono::steady_clock::now();
  auto all = store_->ListEnvironments();
  // The router first: routing must not wait for the rest.
  if (all.ok() && !all->empty())
    if (Status s = resources_->EnsureRouter(); !s.ok())
      ServerLog("recovery: router: " + s.error().message());
  // Operations a dead control plane left: finished or undone from their journal.
  auto unfinished = store_->ListUnfinishedOperations();
  if (unfinished.ok() && !unfinished->empty()) {
    for (const auto& op : *unfinished) {
      auto result = executor_->Recover(op);
      ServerLog("recovery: " + (result.ok() ? *result : result.error().message()));
    }
    // An up it died in may have been building a template: nothing builds one now.
    if (Status s = resources_->RemoveUnfinishedTemplates(); !s.ok())
      ServerLog("recovery: unfinished templates: " + s.error().message());
  }
  all = store_->ListEnvironments();
  if (all.ok()) {
    // The order of DESIGN: the database before the services that need it.
    std::vector<std::pair<std::string, std::shared_ptr<const LaunchContext>>> contexts;
    bool postgres = false;
    for (const auto& env : *all) {
      auto context = executor_->RecordedContext(env);
      if (!context.ok()) {
        ServerLog("recovery of " + env.name + ": " + context.error().message());
        continue;
      }
      // A sleeping environment's next wake finds its releases' fork servers ready.
      factory_->EnsureForkServers(**context);
      if (env.status == state::EnvStatus::kSleeping) continue;
      postgres |= (*context)->project->postgres.has_value();
      contexts.push_back({env.name, *context});
    }
    if (postgres)
      if (Status s = resources_->EnsurePostgres(); !s.ok())
        ServerLog("recovery: " + s.error().message());
    for (const auto& [name, context] : contexts) {
      auto restored = fleet_->Restore(name, context);
      ServerLog("recovery of " + name + ": " +
                (restored.ok() ? *restored : restored.error().message()));
    }
    if (!all->empty() || router_->Running())
      if (Status s = fleet_->PushAll(); !s.ok())
        ServerLog("recovery: router: " + s.error().message());
  }
  ServerLog(fmt::format(
      "recovery: {} environment(s) in {} ms", all.ok() ? all->size() : 0,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count()));
  {
    std::lock_guard lk(recovered_mu_);
    recovered_ = true;
  }
  recovered_cv_.notify_all();
}

void ControlPlane::Loop() {
  while (!stop_) {
    LoopOnce();
    std::unique_lock lk(stop_mu_);
    stop_cv_.wait_for(lk, options_.loop_interval, [this] { return stop_.load(); });
  }
}

void ControlPlane::LoopOnce() {
  // A home removed under a running control plane (rm -rf) must not be brought back: starting
  // its router or PostgreSQL again would recreate it. Stop what it ran and leave, keeper first.
  // Checked again after the fleet's tick, which may take a while: the removal can fall inside it
  // (the resources refuse to start into a removed home as well).
  auto home_removed = [this] {
    std::error_code ec;
    return !stop_ && !std::filesystem::exists(paths::StateDb(options_.home), ec);
  };
  if (home_removed()) {
    ServerLog("the home " + options_.home.string() +
              " was removed: stopping its processes and this control plane");
    NoProgress quiet;
    (void)BaseDown(quiet);
    // What could not be stopped through its files (they are gone: Redis, PostgreSQL) is known
    // by its working folder, which was in the home.
    for (int round = 0; round < 2; ++round) {
      auto left = ProcessesWorkingUnder(options_.home);
      if (left.empty()) break;
      for (pid_t pid : left) kill(pid, round == 0 ? SIGTERM : SIGKILL);
      if (round == 0) std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    return;
  }
  fleet_->Tick();
  if (home_removed()) return;  // the next loop stops everything
  // A router that died is started again and given the whole table.
  if (!stop_ && !fleet_->Envs().empty() && !router_->Running())
    if (Status s = resources_->EnsureRouter(); !s.ok()) ServerLog("router: " + s.error().message());
  if (std::chrono::steady_clock::now() >= next_base_check_) {
    next_base_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    CheckBase();
  }
  if (!stop_ && std::chrono::steady_clock::now() >= next_fork_server_check_) {
    next_fork_server_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    StopUnusedForkServers();
  }
}

void ControlPlane::CheckBase() {
  if (options_.keeper && !stop_ && !KeeperStopRequested(options_.home) &&
      !KeeperRunning(options_.home))
    if (Status k = EnsureKeeper(options_.home, options_.adhoc_binary); !k.ok())
      ServerLog("keeper: " + k.error().message());
  bool postgres = false;
  struct RedisOf {
    std::string env, address;
    int memory_mib = 0;
  };
  std::vector<RedisOf> redis;
  for (const auto& env : fleet_->Envs()) {
    auto context = fleet_->Context(env);
    if (!context) continue;
    postgres |= context->project->postgres.has_value();
    if (context->project->redis)
      redis.push_back({env, context->facts.redis_host, context->project->redis->memory});
  }
  // PostgreSQL and each environment's Redis are their own daemons: if one died, start it again.
  if (postgres)
    if (Status s = resources_->EnsurePostgres(); !s.ok()) ServerLog("base: " + s.error().message());
  RecordRequests();
  CollectDue();
  if (std::chrono::steady_clock::now() >= next_disk_check_) {
    // Folders are walked and the cluster asked: off the loop, every 30 s.
    next_disk_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    (void)jobs_.Start("#disk usage", [this] {
      std::vector<std::string> names;
      if (auto all = store_->ListEnvironments(); all.ok())
        for (const auto& e : *all) names.push_back(e.name);
      disk_->Refresh(names);
    });
  }
  for (const RedisOf& r : redis) {
    // The list is from the start of this round: an environment put to sleep or destroyed
    // since (or now) has its Redis stopped by that operation, not started again here.
    if (!fleet_->Context(r.env)) continue;
    if (Status s = resources_->KeepRedisRunning(r.env, r.address, r.memory_mib); !s.ok())
      ServerLog("redis of " + r.env + ": " + s.error().message());
  }
}

int64_t ControlPlane::RecordRequests(const std::string& only) {
  // The router counts requests per environment; their last time feeds `ls` and the TTL.
  if (!router_->Running()) return 0;
  auto stats = router_->Stats();
  if (!stats.ok() || !stats->contains("envs") || !(*stats)["envs"].is_object()) return 0;
  int64_t answering = 0;
  for (auto& [env, counters] : (*stats)["envs"].items()) {
    if (!counters.is_object() || (!only.empty() && env != only)) continue;
    if (!only.empty())
      answering = std::max<int64_t>(
          0, counters.value("in_flight", int64_t{0}) - counters.value("upgraded", int64_t{0}));
    long long last = counters.value("last_request_ms", 0LL);
    if (last <= 0) continue;
    auto record = store_->FindEnvironment(env);
    if (!record.ok() || !*record) continue;
    if ((*record)->last_request_at.value_or(0) < last)
      if (Status s = store_->RecordRequest(env, last); !s.ok())
        ServerLog("recording requests of " + env + ": " + s.error().message());
  }
  return answering;
}

state::Millis ControlPlane::AwakeSince(const std::string& env) {
  std::lock_guard lock(awake_mu_);
  auto it = awake_since_.find(env);
  return it == awake_since_.end() ? started_ms_ : std::max(started_ms_, it->second);
}

void ControlPlane::MarkAwake(const std::string& env) {
  std::lock_guard lock(awake_mu_);
  awake_since_[env] = store_->Now();
}

void ControlPlane::CollectDue() {
  if (stop_) return;
  auto all = store_->ListEnvironments();
  if (!all.ok()) return;
  const state::Millis now = store_->Now();
  notifier_->Tick(*all, now);
  for (const auto& e : *all) {
    Due due = WhatIsDue(e, now, AwakeSince(e.name));
    if (due == Due::kNothing) continue;
    std::string env = e.name;
    // At most one job per environment; one still running is simply not started again.
    (void)jobs_.Start(env, [this, env, due] {
      if (due == Due::kExpire)
        Expire(env);
      else
        SleepIdle(env);
    });
  }
}

void ControlPlane::Expire(const std::string& env) {
  // An operation on it runs: its end is looked at again next round.
  auto held = locks_.Acquire(env, "expiry", false);
  if (!held.ok()) return;
  auto record = store_->FindEnvironment(env);
  if (!record.ok() || !*record) return;
  // Looked at again under the lock: a request or an `up` may have come meanwhile.
  if (WhatIsDue(**record, store_->Now(), AwakeSince(env)) != Due::kExpire) return;
  std::string reason = ExpiryReason(**record);
  ServerLog("ttl: " + env + " is " + reason + "; destroying it");
  (void)store_->AppendEvent(env, "expired", reason + "; destroying it");
  NoProgress quiet;
  if (Status s = executor_->Destroy(env, quiet); !s.ok()) {
    ServerLog("ttl: destroying " + env + ": " + s.error().message());
    (void)store_->AppendEvent(env, "expiry-failed", s.error().message());
  } else {
    notifier_->Expired(**record);
    StopUnusedForkServers();
  }
  std::lock_guard lock(awake_mu_);
  awake_since_.erase(env);
}

void ControlPlane::SleepIdle(const std::string& env) {
  auto held = locks_.Acquire(env, "idle sleep", false);
  if (!held.ok()) return;
  // The loop's count may be a round old: a request since then keeps it awake, and so does one
  // begun long ago and still being answered (a long download).
  if (RecordRequests(env) > 0) return;
  auto record = store_->FindEnvironment(env);
  if (!record.ok() || !*record) return;
  if (WhatIsDue(**record, store_->Now(), AwakeSince(env)) != Due::kSleep) return;
  std::string why =
      "idle for " +
      spec::FormatDuration(std::chrono::seconds((*record)->sleep_after_seconds.value_or(0)));
  ServerLog("idle: " + env + " " + why + "; putting it to sleep");
  NoProgress quiet;
  if (Status s = executor_->Sleep(env, why, quiet); !s.ok())
    ServerLog("idle: putting " + env + " to sleep: " + s.error().message());
}

Result<json> ControlPlane::Sleep(const std::string& env, Progress& progress, bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire(env, "sleep", wait, [&](const std::string& h) {
    progress.Note("waiting for the running " + h + " of " + env + " to finish");
  }));
  ADHOC_RETURN_IF_ERROR(executor_->Sleep(env, "by hand", progress));
  return EnvironmentJson(env);
}

Result<json> ControlPlane::Wake(const std::string& env, Progress& progress, bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire(env, "wake", wait, [&](const std::string& h) {
    progress.Note("waiting for the running " + h + " of " + env + " to finish");
  }));
  MarkAwake(env);  // before: the idle clock must not put it back to sleep as it wakes
  ADHOC_RETURN_IF_ERROR(executor_->Wake(env, progress));
  MarkAwake(env);
  return EnvironmentJson(env);
}

Result<json> ControlPlane::WakeInBackground(const std::string& env) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  bool started = false;
  if (found->status == state::EnvStatus::kSleeping)
    started = jobs_.Start(env, [this, env] {
      NoProgress quiet;
      auto woken = Wake(env, quiet, true);
      ServerLog("wake on request: " + env + ": " +
                (woken.ok() ? std::string("awake") : woken.error().message()));
    });
  return json{{"env", env},
              {"status", state::ToString(found->status)},
              {"waking", started || jobs_.Running(env)}};
}

Result<json> ControlPlane::Gc(bool dry_run, Progress& progress) {
  WaitUntilRecovered(progress);
  std::lock_guard one(gc_mu_);
  json expired = json::array(), removed = json::array();
  // What is past its TTL first, as the loop would take it.
  ADHOC_ASSIGN_OR_RETURN(auto all, store_->ListEnvironments());
  for (const auto& e : all) {
    auto expires = ExpiresAt(e);
    if (!expires || store_->Now() < *expires) continue;
    json item = {{"env", e.name}, {"reason", ExpiryReason(e)}};
    if (!dry_run) {
      auto held = locks_.Acquire(e.name, "gc", true, [&](const std::string& h) {
        progress.Note("waiting for the running " + h + " of " + e.name + " to finish");
      });
      if (!held.ok()) return held.error();
      auto again = store_->FindEnvironment(e.name);
      if (!again.ok() || !*again) continue;
      auto still = ExpiresAt(**again);
      if (!still || store_->Now() < *still) continue;  // a request came meanwhile
      (void)store_->AppendEvent(e.name, "expired", ExpiryReason(**again) + "; destroyed by gc");
      if (Status s = executor_->Destroy(e.name, progress); !s.ok())
        item["error"] = s.error().message();
      else
        notifier_->Expired(**again);
    }
    expired.push_back(item);
  }
  // Nobody chooses a release while gc decides which ones nobody uses.
  std::unique_lock releases(releases_mu_);
  GarbageCollector collector(options_.home, options_.postgres_port, *store_, *router_,
                             fork_servers_.get());
  ADHOC_ASSIGN_OR_RETURN(auto inventory, collector.Inventory());
  std::vector<Garbage> garbage = FindGarbage(inventory);
  if (!dry_run) garbage = collector.Remove(std::move(garbage));
  int failed = 0;
  for (const auto& g : garbage) {
    removed.push_back(GarbageJson(g));
    failed += !g.error.empty();
  }
  if (!dry_run && (!garbage.empty() || !expired.empty())) {
    std::string message = fmt::format(
        "gc: {} expired environment(s) destroyed, {} thing(s) "
        "no environment owned removed",
        expired.size(), garbage.size() - failed);
    if (failed) message += fmt::format(", {} could not be removed", failed);
    ServerLog(message);
    (void)store_->AppendEvent("", "gc", message);
  }
  return json{{"dry_run", dry_run}, {"expired", expired}, {"garbage", removed}};
}

Result<json> ControlPlane::Up(const std::string& env, const fs::path& project, Progress& progress,
                              bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire(env, "up", wait, [&](const std::string& h) {
    progress.Note("waiting for the running " + h + " of " + env + " to finish");
  }));
  std::shared_lock releases(releases_mu_);
  ADHOC_ASSIGN_OR_RETURN(auto prepared, Prepare({env, project, {}}, *store_, options_.home));
  auto found = store_->FindEnvironment(env);
  const bool is_new = found.ok() && !*found;
  if (found.ok() && *found && (*found)->status == state::EnvStatus::kSleeping) {
    // An update changes only what differs: everything else must run first.
    progress.Note(env + " is asleep: waking it first");
    MarkAwake(env);
    ADHOC_RETURN_IF_ERROR(executor_->Wake(env, progress));
  }
  ADHOC_ASSIGN_OR_RETURN(auto outcome, executor_->Apply(prepared, "up", progress));
  (void)outcome;
  // Nobody could send a new environment a request before now: its idle time starts here, not
  // at its creation (an `up` slower than `sleep_after` would otherwise end asleep).
  if (is_new) MarkAwake(env);
  return EnvironmentJson(env);
}

Result<json> ControlPlane::Plan(const std::string& env, const fs::path& project) {
  ADHOC_ASSIGN_OR_RETURN(auto prepared, Prepare({env, project, {}}, *store_, options_.home));
  return PreparedJson(prepared);
}

Result<json> ControlPlane::Deploy(const std::string& env,
                                  const std::map<std::string, std::string>& versions,
                                  Progress& progress, bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  if (versions.empty()) return BadInput("deploy needs at least one IMAGE=REF");
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire(env, "deploy", wait, [&](const std::string& h) {
    progress.Note("waiting for the running " + h + " of " + env + " to finish");
  }));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found)
    return NotFound("no environment '" + env + "'; create it with `adhoc up " + env + "`");
  if (found->status == state::EnvStatus::kSleeping)
    return Failed("'" + env + "' is asleep; wake it first (`adhoc wake " + env + "`)");
  std::shared_lock releases(releases_mu_);
  ADHOC_ASSIGN_OR_RETURN(auto prepared, Prepare({env, "", versions}, *store_, options_.home));
  ADHOC_ASSIGN_OR_RETURN(auto outcome, executor_->Apply(prepared, "deploy", progress));
  if (!outcome.changed) progress.Note(env + " already runs those versions");
  return EnvironmentJson(env);
}

Result<json> ControlPlane::Destroy(const std::string& env, Progress& progress, bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire(env, "destroy", wait, [&](const std::string& h) {
    progress.Note("waiting for the running " + h + " of " + env + " to finish");
  }));
  ADHOC_RETURN_IF_ERROR(executor_->Destroy(env, progress));
  StopUnusedForkServers();
  return json{{"destroyed", env}};
}

void ControlPlane::StopUnusedForkServers() {
  std::unique_lock releases(releases_mu_, std::try_to_lock);
  if (!releases.owns_lock()) return;
  auto used = UsedReleases(*store_);
  if (!used.ok()) return;
  if (int stopped = fork_servers_->StopUnused(*used, kForkServerGrace); stopped > 0)
    ServerLog(fmt::format("{} fork server(s) of releases no environment used for {} min stopped",
                          stopped, kForkServerGrace.count()));
}

Result<int> ControlPlane::Run(const std::string& env, const std::string& task_name,
                              const std::vector<std::string>& argv, Progress& progress) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  if (found->status == state::EnvStatus::kSleeping)
    return Failed("'" + env + "' is asleep; wake it first (`adhoc wake " + env + "`)");
  std::shared_ptr<const LaunchContext> context = fleet_->Context(env);
  if (!context) {
    auto recorded = executor_->RecordedContext(*found);
    if (!recorded.ok())
      return Failed("'" + env + "' is not running (status " +
                    std::string(state::ToString(found->status)) + ")");
    context = *recorded;
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
  return fleet_->RunOnce(env, *context, request, timeout, progress, nullptr);
}

Result<json> ControlPlane::ExecSpec(const std::string& env, const std::string& service) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_->FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  std::shared_ptr<const LaunchContext> context = fleet_->Context(env);
  if (!context)
    return Failed("'" + env + "' is " +
                  (found->status == state::EnvStatus::kSleeping
                       ? "asleep; wake it first (`adhoc wake " + env + "`)"
                       : std::string("not running")));
  const spec::Service* svc = context->project->FindService(service);
  if (!svc) {
    std::string names;
    for (const auto& s : context->project->services) names += (names.empty() ? "" : ", ") + s.name;
    return NotFound("no service '" + service + "' in '" + env + "' (services: " + names + ")");
  }
  std::string task_id = service + "-exec", address;
  for (const ServiceView& view : fleet_->Describe(env))
    if (view.name == service && !view.tasks.empty()) {
      task_id = view.tasks.front().id;
      address = view.tasks.front().address;
    }
  LaunchRequest request = ServiceLaunch(*svc, task_id, address);
  ADHOC_ASSIGN_OR_RETURN(auto environment, ProcessEnvironment(*context->project, *context->env_file,
                                                              context->facts, request, *store_));
  // psql finds the environment's database by itself (the app's own variables are kept).
  if (context->facts.database) {
    const auto& db = *context->facts.database;
    environment.try_emplace("PGHOST", context->facts.postgres_host);
    environment.try_emplace("PGPORT", std::to_string(context->facts.postgres_port));
    environment.try_emplace("PGUSER", db.role);
    environment.try_emplace("PGPASSWORD", db.password);
    environment.try_emplace("PGDATABASE", db.database);
  }
  auto release = context->facts.release_paths.find(svc->image);
  return json{
      {"env", environment},
      {"cwd", release != context->facts.release_paths.end() ? release->second.string() : "/"},
      {"service", service},
      {"task", task_id}};
}

bool ControlPlane::RecoveredWithin(std::chrono::milliseconds wait) {
  std::unique_lock lk(recovered_mu_);
  return recovered_cv_.wait_for(lk, wait, [this] { return recovered_; });
}

Result<json> ControlPlane::EnvironmentJson(const std::string& env) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  // A restart's recovery usually takes a moment: wait that long for a true picture, never more.
  bool recovered = RecoveredWithin(std::chrono::seconds(2));
  ADHOC_ASSIGN_OR_RETURN(
      json out, server::EnvironmentJson(*store_, *fleet_, env, Costs{options_.home, disk_.get()}));
  out["recovering"] = !recovered;
  return out;
}

Result<json> ControlPlane::ListJson() {
  bool recovered = RecoveredWithin(std::chrono::seconds(2));
  ADHOC_ASSIGN_OR_RETURN(json out,
                         server::ListJson(*store_, *fleet_, Costs{options_.home, disk_.get()}));
  // While a restarted control plane recovers, what it lists may still change.
  out["recovering"] = !recovered;
  return out;
}

Result<json> ControlPlane::DashboardJson() {
  if (api_token_.empty())
    return NotFound("the API is not served on TCP (see the control plane's log: adhoc logs)");
  const RouterOptions& r = options_.router;
  bool https = !r.tls_listen.empty();
  int port = r.listen_port;
  if (https) port = std::stoi(r.tls_listen.substr(r.tls_listen.rfind(':') + 1));
  bool default_port = port == (https ? 443 : 80);
  std::vector<std::string> hosts = api_route_->Hosts();
  // The TLS domain when served over HTTPS; else the first domain an environment uses.
  std::string host = hosts.empty() ? std::string(kApiRouteName) + ".localhost" : hosts.front();
  if (!https)
    for (const auto& h : hosts)
      if (h != std::string(kApiRouteName) + ".localhost") {
        host = h;
        break;
      }
  std::string url = fmt::format("{}://{}{}/", https ? "https" : "http", host,
                                default_port ? "" : ":" + std::to_string(port));
  return json{{"url", url},
              {"token", api_token_},
              {"token_url", url + "?" + std::string(kApiTokenParam) + "=" + api_token_},
              {"hosts", hosts}};
}

Status ControlPlane::BaseUp(Progress& progress) {
  progress.StepStarted("base");
  auto t0 = std::chrono::steady_clock::now();
  Status s = resources_->EnsurePostgres();
  if (s.ok()) s = resources_->EnsureRouter();
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
  // The keeper first, or it would start the control plane again.
  if (options_.keeper) (void)StopKeeper(options_.home);
  for (const auto& env : fleet_->Envs()) {
    auto context = fleet_->Context(env);
    (void)fleet_->StopAll(env);
    if (context && context->project->redis)
      (void)resources_->StopRedis(env, context->facts.redis_host);
  }
  fork_servers_->StopAll();
  Status router = router_->Stop();
  Status pg = resources_->StopPostgres();
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!pg.ok()) {
    progress.StepFailed("base down", ms, pg.error().message());
    return pg;
  }
  progress.StepDone("base down", ms, "every process stopped; data kept");
  Shutdown(false);
  return router;
}

Status ControlPlane::BaseDestroy(Progress& progress) {
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto all, store_->ListEnvironments());
  for (const auto& env : all) {
    auto destroyed = Destroy(env.name, progress, true);
    if (!destroyed.ok()) return destroyed.error();
  }
  return BaseDown(progress);
}

// ---- Data ------------------------------------------------------------------------------

Result<json> ControlPlane::Snapshot(const std::string& env, const std::string& name,
                                    Progress& progress, bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  ADHOC_RETURN_IF_ERROR(spec::ValidateObjectName("snapshot", name));
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(
      auto held, locks_.Acquire(env, "snapshot", wait, [&](const std::string& h) {
        progress.Note("waiting for the running " + h + " of " + env + " to finish");
      }));
  ADHOC_RETURN_IF_ERROR(executor_->Snapshot(env, name, progress));
  ADHOC_ASSIGN_OR_RETURN(auto all, SnapshotsJson());
  for (const auto& s : all["snapshots"])
    if (s.value("name", "") == name) return s;
  return json{{"name", name}, {"env", env}};
}

Result<json> ControlPlane::Reset(const std::string& env, Progress& progress, bool wait) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateEnvName(env));
  WaitUntilRecovered(progress);
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire(env, "reset", wait, [&](const std::string& h) {
    progress.Note("waiting for the running " + h + " of " + env + " to finish");
  }));
  ADHOC_RETURN_IF_ERROR(executor_->Reset(env, progress));
  return EnvironmentJson(env);
}

Result<json> ControlPlane::SnapshotsJson() {
  DataOps data(*store_, *resources_, options_.home);
  return data.ListJson();
}

Result<json> ControlPlane::RemoveSnapshot(const std::string& name) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateObjectName("snapshot", name));
  // One removal at a time per home: the snapshot lock is its own environment-like name.
  ADHOC_ASSIGN_OR_RETURN(auto held, locks_.Acquire("snapshot:" + name, "removal", true));
  DataOps data(*store_, *resources_, options_.home);
  ADHOC_RETURN_IF_ERROR(data.Remove(name));
  return json{{"removed", name}};
}

}  // namespace adhoc::server
