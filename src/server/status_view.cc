#include "server/status_view.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/paths.h"
#include "common/proc_files.h"
#include "server/access_rules.h"
#include "server/lifetimes.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Resident memory summed by process group, from one pass over /proc (a task's pid is its
// process group's id, so this gives each task's memory with its children).
std::map<pid_t, uint64_t> RssByProcessGroup() {
  std::map<pid_t, uint64_t> total;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !isdigit(static_cast<unsigned char>(name[0]))) continue;
    auto stat_text = ReadProcFile(entry.path() / "stat");
    if (!stat_text) continue;
    std::string line = stat_text->substr(0, stat_text->find('\n'));
    auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 > line.size()) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    std::istringstream status(ReadProcFile(entry.path() / "status").value_or(""));
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) {
        try {
          total[pgrp] += std::stoull(line.substr(6)) * 1024;
        } catch (const std::exception&) {
        }
      }
  }
  return total;
}

// The pid Redis wrote for `env` (0 when none): Redis daemonizes into a process group of its own.
pid_t RedisPid(const fs::path& home, const std::string& env) {
  auto text = ReadProcFile(paths::RedisDir(home, env) / "redis.pid", 64);
  return text ? static_cast<pid_t>(std::atol(text->c_str())) : 0;
}

// Who may enter and how, for `status` and `up`: the caller owns the home (the API socket is
// 0600), so the credentials are shown. Rules that cannot be rendered are shown as the reason
// the router serves nothing of the environment.
void AddAccess(state::Store& store, const LaunchContext& context, const std::string& url,
               json* out) {
  auto access =
      RenderAccess(*context.project, *context.env_file, AccessValuesFor(context.facts, store));
  if (!access.ok())
    (*out)["access"] = {{"error", access.error().message() + " (the router serves none of it)"}};
  else if (*access)
    (*out)["access"] = AccessViewJson(**access, url);
}

Result<json> OneEnvironment(state::Store& store, Fleet& fleet, const state::Environment& e,
                            const std::map<pid_t, uint64_t>& rss_by_group, const Costs& costs,
                            bool with_access) {
  const std::string& env = e.name;
  json out = {{"name", e.name},
              {"status", state::ToString(e.status)},
              {"url", e.url},
              {"hostname", e.hostname},
              {"owner", e.owner},
              {"created_ms", e.created_at},
              {"updated_ms", e.updated_at},
              {"address_block", e.address_block}};
  if (e.last_request_at) out["last_request_ms"] = *e.last_request_at;
  if (auto expires = ExpiresAt(e)) {
    out["ttl_ms"] = *e.ttl_seconds * 1000;
    out["expires_ms"] = *expires;
  }
  if (e.sleep_after_seconds) out["sleep_after_ms"] = *e.sleep_after_seconds * 1000;
  json versions = json::object();
  ADHOC_ASSIGN_OR_RETURN(auto vs, store.ListVersions(env));
  for (const auto& v : vs)
    versions[v.image] = {{"ref", v.ref}, {"commit", v.commit}, {"tree", v.tree}};
  out["versions"] = versions;

  std::shared_ptr<const LaunchContext> context = fleet.Context(env);
  if (with_access && context) AddAccess(store, *context, e.url, &out);
  json services = json::array();
  uint64_t total_memory = 0;
  for (const ServiceView& view : fleet.Describe(env)) {
    const spec::Service* svc = context ? context->project->FindService(view.name) : nullptr;
    json s = {{"name", view.name}, {"tasks", json::array()}};
    int count = svc ? svc->count : 0;
    s["count"] = count;
    if (svc && svc->port) s["port"] = *svc->port;
    json routes = json::array();
    if (svc)
      for (const auto& r : svc->routes) routes.push_back(r.pattern);
    s["routes"] = routes;
    int healthy = 0;
    bool failed = false;
    for (const TaskView& t : view.tasks) {
      auto rss_it = rss_by_group.find(static_cast<pid_t>(t.pid));
      uint64_t rss = rss_it != rss_by_group.end() && t.status != "exited" ? rss_it->second : 0;
      total_memory += rss;
      healthy += t.status == "healthy";
      failed |= t.status == "failed";
      s["tasks"].push_back({{"id", t.id},
                            {"status", t.status},
                            {"pid", t.pid},
                            {"address", t.address},
                            {"restarts", t.restarts},
                            {"memory_bytes", rss}});
    }
    s["status"] = failed ? "failed" : healthy >= count ? "healthy" : "starting";
    services.push_back(s);
  }
  out["services"] = services;
  if (!costs.home.empty() && e.status != state::EnvStatus::kSleeping)
    if (pid_t redis = RedisPid(costs.home, env); redis > 0)
      if (auto it = rss_by_group.find(redis); it != rss_by_group.end()) {
        out["redis_memory_bytes"] = it->second;
        total_memory += it->second;
      }
  out["memory_bytes"] = total_memory;
  if (costs.disk)
    if (auto d = costs.disk->Get(env))
      out["disk"] = {{"database_bytes", d->database},
                     {"redis_bytes", d->redis},
                     {"files_bytes", d->files},
                     {"total_bytes", d->total()}};
  ADHOC_ASSIGN_OR_RETURN(auto tasks, store.ListTasks(env));
  json one_off = json::array();
  for (const auto& t : tasks)
    if (t.kind == "task")
      one_off.push_back({{"id", t.id},
                         {"process", t.process},
                         {"status", state::ToString(t.status)},
                         {"exit_code", t.exit_code ? json(*t.exit_code) : json(nullptr)}});
  out["tasks"] = one_off;
  ADHOC_ASSIGN_OR_RETURN(auto last, store.LastOperation(env));
  if (last)
    out["last_operation"] = {{"id", last->id},
                             {"kind", last->kind},
                             {"status", state::ToString(last->status)},
                             {"started_ms", last->started_at},
                             {"error", last->error}};
  std::string first_service = context && !context->project->services.empty()
                                  ? context->project->services.front().name
                                  : "SERVICE";
  json commands = {{"shell", "adhoc exec " + env + " " + first_service},
                   {"logs", "adhoc logs " + env + " " + first_service + " -f"},
                   {"destroy", "adhoc destroy " + env}};
  if (context)
    if (std::string db = DatabaseCommand(*context, env, first_service); !db.empty())
      commands["database"] = db;
  out["commands"] = commands;
  return out;
}

}  // namespace

std::string DatabaseCommand(const LaunchContext& context, const std::string& env,
                            const std::string& service) {
  if (!context.project->postgres) return "";
  const spec::Service* svc = context.project->FindService(service);
  if (svc) {
    auto release = context.facts.release_paths.find(svc->image);
    std::error_code ec;
    if (release != context.facts.release_paths.end() &&
        fs::exists(release->second / "manage.py", ec))
      return "adhoc exec " + env + " " + service + " -- /usr/bin/python3 manage.py dbshell";
  }
  return "adhoc exec " + env + " " + service + " -- psql";
}

Result<json> EnvironmentJson(state::Store& store, Fleet& fleet, const std::string& env,
                             const Costs& costs) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store.FindEnvironment(env));
  if (!found) return NotFound("no environment '" + env + "'");
  return OneEnvironment(store, fleet, *found, RssByProcessGroup(), costs, true);
}

Result<json> ListJson(state::Store& store, Fleet& fleet, const Costs& costs) {
  ADHOC_ASSIGN_OR_RETURN(auto all, store.ListEnvironments());
  const auto rss = RssByProcessGroup();
  json envs = json::array();
  uint64_t memory = 0, disk = 0;
  int running = 0, sleeping = 0;
  for (const auto& e : all) {
    auto j = OneEnvironment(store, fleet, e, rss, costs, false);
    if (!j.ok()) continue;
    memory += j->value("memory_bytes", uint64_t{0});
    if (j->contains("disk")) disk += (*j)["disk"].value("total_bytes", uint64_t{0});
    running += e.status == state::EnvStatus::kRunning;
    sleeping += e.status == state::EnvStatus::kSleeping;
    envs.push_back(std::move(*j));
  }
  return json{{"environments", envs},
              {"total",
               {{"environments", envs.size()},
                {"running", running},
                {"sleeping", sleeping},
                {"memory_bytes", memory},
                {"disk_bytes", disk}}}};
}

}  // namespace adhoc::server
