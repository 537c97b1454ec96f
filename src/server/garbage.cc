#include "server/garbage.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/paths.h"
#include "common/proc_files.h"
#include "resources/env_folders.h"
#include "server/api_route.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The <name> right after `prefix` ("<home>/envs/") in `text`, if it is there.
std::string EnvAfter(const std::string& text, const std::string& prefix) {
  size_t at = text.find(prefix);
  if (at == std::string::npos) return "";
  size_t start = at + prefix.size();
  size_t end = start;
  while (end < text.size() && text[end] != '/' && text[end] != '\0' && text[end] != ' ') ++end;
  return text.substr(start, end - start);
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

}  // namespace

std::vector<HomeProcess> ProcessesOfEnvironments(const fs::path& home) {
  std::vector<HomeProcess> out;
  const std::string prefix = (home / "envs").string() + "/";
  std::error_code ec;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = std::atoi(name.c_str());
    if (pid == getpid()) continue;
    std::string cmdline = ReadProcFile(entry.path() / "cmdline").value_or("");
    if (cmdline.empty()) continue;  // kernel threads and zombies
    std::string env = EnvAfter(cmdline, prefix);
    if (env.empty()) {
      std::error_code link_ec;
      env = EnvAfter(fs::read_symlink(entry.path() / "cwd", link_ec).string() + "/", prefix);
    }
    if (env.empty()) env = EnvAfter(ReadProcFile(entry.path() / "environ").value_or(""), prefix);
    if (env.empty()) continue;
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    while (!cmdline.empty() && cmdline.back() == ' ') cmdline.pop_back();
    out.push_back({pid, env, cmdline});
  }
  return out;
}

std::vector<Garbage> FindGarbage(const HomeInventory& inv) {
  std::vector<Garbage> out;
  // The control plane's own route (and its access log) belongs to no environment.
  auto owned = [&](const std::string& env) {
    return inv.recorded.count(env) > 0 || env == kApiRouteName;
  };
  for (const auto& p : inv.processes)
    if (!owned(p.env))
      out.push_back({"process", std::to_string(p.pid), p.env, p.cmdline.substr(0, 120), ""});
  for (const auto& o : inv.routed)
    if (!owned(o)) out.push_back({"route", o, o, "in the router's table", ""});
  // Databases before roles: a role goes once its databases are gone.
  for (const auto& o : inv.databases)
    if (o.kind == resources::ManagedObject::Kind::kDatabase && !o.env.empty() && !owned(o.env))
      out.push_back({"database", o.name, o.env, "owned by " + o.owner, ""});
  for (const auto& o : inv.databases)
    if (o.kind == resources::ManagedObject::Kind::kRole && !o.env.empty() && !owned(o.env))
      out.push_back({"role", o.name, o.env, "", ""});
  for (const auto& f : inv.folders)
    if (!owned(f)) out.push_back({"folder", "envs/" + f, f, "", ""});
  for (const auto& l : inv.access_logs)
    if (!owned(l)) out.push_back({"log", "router/access/" + l + ".log", l, "", ""});
  for (const auto& f : inv.fork_servers)
    if (!inv.used_releases.count(f.release.string()))
      out.push_back({"fork-server", f.key, "",
                     "serves " + f.release.string() + ", which no environment runs", ""});
  for (const auto& r : inv.releases)
    if (!inv.used_releases.count(r.path.string()))
      out.push_back({"release", r.image + "/" + r.key, "", "no environment runs it", ""});
  // Caches made for a release go with it: "<image>/<release key>", as they record it.
  std::set<std::string> used_names;
  for (const auto& used : inv.used_releases) used_names.insert(resources::ReleaseName(used));
  for (const auto& t : inv.templates) {
    if (t.ready && !used_names.count(t.release))
      out.push_back({"template", t.database, "",
                     "migrated for " + t.release + ", which no environment runs", ""});
    // A spare copy whose template was removed while it was being made.
    if (!t.ready && t.database.rfind("adhoc_spr_", 0) == 0)
      out.push_back({"template", t.database, "", "a spare copy of a template that is gone", ""});
  }
  for (const auto& c : inv.static_caches)
    if (!used_names.count(c.release))
      out.push_back({"static", c.key, "",
                     "static files of " + c.release + ", which no environment runs", ""});
  return out;
}

Result<std::set<std::string>> UsedReleases(state::Store& store) {
  std::set<std::string> used;
  ADHOC_ASSIGN_OR_RETURN(auto envs, store.ListEnvironments());
  for (const auto& e : envs) {
    ADHOC_ASSIGN_OR_RETURN(auto versions, store.ListVersions(e.name));
    for (const auto& v : versions) used.insert(v.release_path);
  }
  ADHOC_ASSIGN_OR_RETURN(auto tasks, store.ListAllTasks());
  for (const auto& t : tasks) used.insert(t.release_path);
  return used;
}

GarbageCollector::GarbageCollector(fs::path home, int postgres_port, state::Store& store,
                                   RouterLink& router, ForkServers* fork_servers)
    : home_(std::move(home)),
      postgres_port_(postgres_port),
      store_(store),
      router_(router),
      fork_servers_(fork_servers) {}

Result<HomeInventory> GarbageCollector::Inventory() {
  HomeInventory inv;
  // The home first, the records last (see garbage.h).
  inv.processes = ProcessesOfEnvironments(home_);
  if (fork_servers_) inv.fork_servers = fork_servers_->List();
  std::error_code ec;
  if (fs::exists(paths::PostgresData(home_) / "PG_VERSION", ec)) {
    ADHOC_ASSIGN_OR_RETURN(auto admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
    resources::EnvironmentDatabases dbs(*admin, "", postgres_port_);
    ADHOC_ASSIGN_OR_RETURN(inv.databases, dbs.ListEnvironmentDatabases());
    resources::DatabaseTemplates templates(*admin, nullptr, "", postgres_port_);
    ADHOC_ASSIGN_OR_RETURN(inv.templates, templates.List());
  }
  if (auto cached = resources::StaticCache(home_).List(); cached.ok()) inv.static_caches = *cached;
  if (router_.Running())
    if (auto stats = router_.Stats(); stats.ok() && (*stats)["envs"].is_object())
      for (auto& [name, counters] : (*stats)["envs"].items()) inv.routed.push_back(name);
  for (auto& e : fs::directory_iterator(paths::EnvsDir(home_), ec))
    if (e.is_directory(ec)) inv.folders.push_back(e.path().filename().string());
  for (auto& e : fs::directory_iterator(paths::RouterDir(home_) / "access", ec))
    if (e.path().extension() == ".log") inv.access_logs.push_back(e.path().stem().string());
  resources::ReleaseCache cache(home_);
  if (auto releases = cache.List(); releases.ok()) inv.releases = *releases;
  ADHOC_ASSIGN_OR_RETURN(auto envs, store_.ListEnvironments());
  for (const auto& e : envs) inv.recorded.insert(e.name);
  ADHOC_ASSIGN_OR_RETURN(inv.used_releases, UsedReleases(store_));
  return inv;
}

std::vector<Garbage> GarbageCollector::Remove(std::vector<Garbage> garbage) {
  // Processes: SIGTERM, then SIGKILL after 5 s, all at once.
  std::vector<pid_t> pids;
  for (auto& g : garbage)
    if (g.kind == "process") {
      pid_t pid = std::atoi(g.name.c_str());
      if (pid > 1 && kill(pid, SIGTERM) == 0) pids.push_back(pid);
    }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t pid : pids)
    while (Alive(pid) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (pid_t pid : pids)
    if (Alive(pid)) kill(pid, SIGKILL);

  std::unique_ptr<resources::SqlSession> admin;
  std::unique_ptr<resources::EnvironmentDatabases> dbs;
  auto databases = [&]() -> Result<resources::EnvironmentDatabases*> {
    if (!dbs) {
      ADHOC_ASSIGN_OR_RETURN(admin, resources::ConnectPostgresAdmin(home_, postgres_port_));
      dbs = std::make_unique<resources::EnvironmentDatabases>(*admin, "", postgres_port_);
    }
    return dbs.get();
  };
  resources::ReleaseCache cache(home_);
  for (auto& g : garbage) {
    Status s;
    if (g.kind == "route") {
      s = router_.RemoveEnv(g.env);
    } else if (g.kind == "database" || g.kind == "role") {
      auto d = databases();
      if (!d.ok())
        s = d.error();
      else
        s = g.kind == "database" ? (*d)->DropEnvironmentDatabase(g.env, g.name)
                                 : (*d)->DropEnvironmentRole(g.env);
    } else if (g.kind == "folder") {
      s = resources::IsValidEnvironmentName(g.env)
              ? resources::RemoveEnvironmentFolders(home_, g.env)
              : Status(Failed("'" + g.env + "' is not an environment name: left for a human"));
    } else if (g.kind == "log") {
      std::error_code ec;
      fs::remove(paths::AccessLog(home_, g.env), ec);
      if (ec) s = Failed(ec.message());
    } else if (g.kind == "template") {
      auto d = databases();
      if (!d.ok()) {
        s = d.error();
      } else {
        resources::DatabaseTemplates templates(*admin, nullptr, "", postgres_port_);
        s = templates.Remove(g.name.substr(g.name.rfind('_') + 1));
      }
    } else if (g.kind == "static") {
      s = resources::StaticCache(home_).Remove(g.name);
    } else if (g.kind == "fork-server") {
      s = fork_servers_ ? fork_servers_->Stop(g.name) : Status(Failed("no fork servers here"));
    } else if (g.kind == "release") {
      size_t slash = g.name.find('/');
      s = cache.Remove(g.name.substr(0, slash), g.name.substr(slash + 1));
    } else if (g.kind == "process") {
      if (Alive(std::atoi(g.name.c_str()))) s = Failed("still running after SIGKILL");
    }
    if (!s.ok()) g.error = s.error().message();
  }
  return garbage;
}

json GarbageJson(const Garbage& g) {
  json out = {{"kind", g.kind}, {"name", g.name}};
  if (!g.env.empty()) out["env"] = g.env;
  if (!g.detail.empty()) out["detail"] = g.detail;
  if (!g.error.empty()) out["error"] = g.error;
  return out;
}

}  // namespace adhoc::server
