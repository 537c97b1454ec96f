#include "plan/plan.h"

#include <fmt/format.h>

#include <set>

#include "common/hash.h"

namespace adhoc::plan {
namespace {

std::string ShortVersion(const Version& v) {
  std::string commit = v.commit.substr(0, 7);
  return commit.empty() ? v.ref : fmt::format("{} ({})", v.ref, commit);
}

void AppendEnv(std::string& s, const spec::EnvList& env) {
  for (const auto& var : env) s += var.name + "=" + var.value + "\n";
}

const Version* Find(const std::map<std::string, Version>& versions, const std::string& image) {
  auto it = versions.find(image);
  return it == versions.end() ? nullptr : &it->second;
}

bool ImageChanged(const Wanted& wanted, const Recorded& recorded, const std::string& image) {
  const Version* now = Find(recorded.versions, image);
  const Version* want = Find(wanted.versions, image);
  if (!want) return false;
  return !now || now->tree != want->tree || (recorded.builds_known && now->build != want->build);
}

std::string VersionChange(const Wanted& wanted, const Recorded& recorded,
                          const std::string& image) {
  const Version* now = Find(recorded.versions, image);
  const Version* want = Find(wanted.versions, image);
  if (!want) return "";
  if (!now) return fmt::format("{} {}", image, ShortVersion(*want));
  if (now->tree == want->tree && recorded.builds_known && now->build != want->build)
    return fmt::format("{} build commands changed", image);
  return fmt::format("{} {} -> {}", image, ShortVersion(*now), ShortVersion(*want));
}

}  // namespace

std::string EnvFingerprint(const spec::Project& project, const spec::EnvFile& env_file) {
  std::string s = "project\n";
  AppendEnv(s, project.env);
  s += "envfile\n";
  AppendEnv(s, env_file.env);
  return Sha256Hex(s).substr(0, 16);
}

std::string AccessFingerprint(const spec::Project& project, const spec::EnvFile& env_file) {
  std::optional<spec::Access> access = spec::EffectiveAccess(project, env_file);
  if (!access || !access->guards()) return "";
  std::string s;
  auto list = [&](const char* key, const std::optional<std::vector<std::string>>& values) {
    s += key;
    if (values)
      for (const auto& v : *values) s += "\n  " + v;
    s += "\n";
  };
  list("basic_auth", access->basic_auth);
  s += "token=" + access->token.value_or("") + "\n";
  list("allow", access->allow);
  list("public_paths", access->public_paths);
  return Sha256Hex(s).substr(0, 16);
}

namespace {

// What guards an environment, for people: "basic auth, token, allow 10.0.0.0/8".
std::vector<std::string> AccessParts(const spec::Project& project, const spec::EnvFile& env_file) {
  std::vector<std::string> parts;
  std::optional<spec::Access> a = spec::EffectiveAccess(project, env_file);
  if (!a) return parts;
  if (a->basic_auth && !a->basic_auth->empty()) parts.push_back("basic auth");
  if (a->token && !a->token->empty()) parts.push_back("token");
  if (a->allow && !a->allow->empty()) {
    std::string allow = "allow";
    for (const auto& cidr : *a->allow) allow += " " + cidr;
    parts.push_back(allow);
  }
  if (a->public_paths && !a->public_paths->empty() && parts.size() > 0)
    parts.push_back(fmt::format("{} public path{}", a->public_paths->size(),
                                a->public_paths->size() == 1 ? "" : "s"));
  return parts;
}

}  // namespace

std::string ServiceFingerprint(const spec::Service& service, const Version& version,
                               const std::string& env_fingerprint) {
  std::string s = fmt::format("image={}\ntree={}\ncommand={}\nport={}\ncpu={}\nmemory={}\n",
                              service.image, version.tree, service.command,
                              service.port ? *service.port : 0, service.cpu, service.memory);
  if (!version.build.empty()) s += "build=" + version.build + "\n";
  s += fmt::format("stop={}/{}\n", service.stop_signal, service.stop_timeout.count());
  if (service.health) {
    const auto& h = *service.health;
    s += fmt::format("health={}|{}|{}|{}|{}|{}|{}|{}\n", h.path, h.command, h.interval.count(),
                     h.timeout.count(), h.healthy, h.unhealthy, h.matcher, h.start_timeout.count());
  }
  for (const auto& t : service.templates) s += "template=" + t + "\n";
  AppendEnv(s, service.env);
  s += "env=" + env_fingerprint + "\n";
  return Sha256Hex(s).substr(0, 16);
}

Plan MakePlan(const Wanted& wanted, const std::optional<Recorded>& recorded) {
  const spec::Project& project = *wanted.project;
  Plan plan;
  plan.create = !recorded.has_value();
  const std::string env_fp = EnvFingerprint(project, *wanted.env_file);
  const char* kNew = "new environment";

  std::set<std::string> changed_images;
  for (const spec::Image& image : project.images) {
    const Version* want = Find(wanted.versions, image.name);
    if (!want) continue;
    if (recorded && !ImageChanged(wanted, *recorded, image.name)) continue;
    changed_images.insert(image.name);
    auto built = wanted.release_built.find(image.name);
    bool cached = built != wanted.release_built.end() && built->second;
    Step step{Action::kBuildRelease, image.name,
              recorded ? VersionChange(wanted, *recorded, image.name) : kNew};
    step.image = image.name;
    step.version = *want;
    step.release_cached = cached;
    plan.steps.push_back(std::move(step));
  }
  if (project.postgres && (!recorded || !recorded->database))
    plan.steps.push_back(
        {Action::kCreateDatabase,
         wanted.database_name.empty() ? project.postgres->database : wanted.database_name,
         recorded ? "[postgres] added" : kNew});
  if (project.redis && (!recorded || !recorded->redis))
    plan.steps.push_back({Action::kStartRedis, "redis", recorded ? "[redis] added" : kNew});

  bool env_changed = recorded && recorded->env_fingerprint != env_fp;
  for (const spec::Task& task : project.tasks) {
    if (task.before != spec::Task::Before::kDeploy) continue;
    std::string reason;
    if (!recorded)
      reason = kNew;
    else if (changed_images.count(task.image))
      reason = VersionChange(wanted, *recorded, task.image);
    else if (env_changed)
      reason = "[env] changed";
    if (reason.empty()) continue;
    Step step{Action::kRunTask, task.name, reason};
    step.image = task.image;
    if (const Version* v = Find(wanted.versions, task.image)) step.version = *v;
    step.phase = TaskPhase::kBeforeDeploy;
    plan.steps.push_back(std::move(step));
  }

  // The rules before the services, so that no new route is ever served by the old rules.
  const std::string access_fp = AccessFingerprint(project, *wanted.env_file);
  const std::string recorded_access = recorded ? recorded->access_fingerprint : "";
  if (access_fp != recorded_access) {
    Step step{Action::kSetAccess, "rules",
              !recorded                 ? kNew
              : recorded_access.empty() ? "[access] added"
              : access_fp.empty()       ? "[access] removed: open to everyone"
                                        : "[access] changed"};
    step.patterns = AccessParts(project, *wanted.env_file);
    plan.steps.push_back(std::move(step));
  }

  for (const spec::Service& service : project.services) {
    const Version* version = Find(wanted.versions, service.image);
    if (!version) continue;
    std::string fp = ServiceFingerprint(service, *version, env_fp);
    auto service_step = [&](Action action, std::string reason) {
      Step step{action, service.name, std::move(reason)};
      step.image = service.image;
      step.version = *version;
      step.count = service.count;
      plan.steps.push_back(std::move(step));
    };
    auto applied =
        recorded ? recorded->services.find(service.name) : decltype(recorded->services.end()){};
    if (!recorded || applied == recorded->services.end()) {
      service_step(Action::kStartService, recorded ? "new service" : kNew);
      continue;
    }
    if (applied->second != fp) {
      std::string reason = changed_images.count(service.image)
                               ? VersionChange(wanted, *recorded, service.image)
                           : env_changed ? "[env] changed"
                                         : "command or settings changed";
      service_step(Action::kRollService, reason);
      continue;
    }
    auto running = recorded->service_counts.find(service.name);
    if (running != recorded->service_counts.end() && running->second != service.count)
      service_step(Action::kRollService,
                   fmt::format("count {} -> {}", running->second, service.count));
  }
  if (!recorded && project.static_files && !project.static_files->routes.empty()) {
    Step step{Action::kAddRoutes, "static", kNew};
    for (const auto& r : project.static_files->routes) step.patterns.push_back(r.pattern);
    plan.steps.push_back(std::move(step));
  }
  // After-create tasks seed an empty database; data from a snapshot, another environment or a
  // dump is the environment's data as it is (its before-deploy migrations still run).
  const bool own_data =
      wanted.env_file && wanted.env_file->data.kind != spec::DataSource::Kind::kEmpty;
  if (!recorded && !own_data) {
    for (const spec::Task& task : project.tasks) {
      if (task.after != spec::Task::After::kCreate) continue;
      Step step{Action::kRunTask, task.name, kNew};
      step.image = task.image;
      if (const Version* v = Find(wanted.versions, task.image)) step.version = *v;
      step.phase = TaskPhase::kAfterCreate;
      plan.steps.push_back(std::move(step));
    }
  }
  if (recorded) {
    for (const auto& [name, fp] : recorded->services)
      if (!project.FindService(name))
        plan.steps.push_back({Action::kRemoveService, name, "no longer in adhoc.toml"});
  }
  return plan;
}

std::string Step::Detail() const {
  switch (action) {
    case Action::kBuildRelease:
      return ShortVersion(version) + (release_cached ? ", cached" : ", to build");
    case Action::kStartRedis:
      return "own password";
    case Action::kRunTask:
      return phase == TaskPhase::kBeforeDeploy ? "before deploy" : "after create";
    case Action::kStartService:
    case Action::kRollService:
      return fmt::format("{} task{}", count, count == 1 ? "" : "s");
    case Action::kAddRoutes: {
      std::string out;
      for (const auto& p : patterns) out += (out.empty() ? "" : " ") + p;
      return out;
    }
    case Action::kSetAccess: {
      std::string out;
      for (const auto& p : patterns) out += (out.empty() ? "" : ", ") + p;
      return out.empty() ? "none" : out;
    }
    default:
      return "";
  }
}

std::map<std::string, VersionChoice> ChooseVersions(
    const spec::Project& project, const spec::EnvFile& env_file,
    const std::optional<Recorded>& recorded, const std::map<std::string, std::string>& deploy,
    const std::string& env_file_name) {
  std::map<std::string, VersionChoice> out;
  for (const spec::Image& image : project.images) {
    const std::string* pinned = env_file.FindVersion(image.name);
    std::string file_ref = pinned ? *pinned : "HEAD";
    if (auto d = deploy.find(image.name); d != deploy.end()) {
      out[image.name] = {d->second, VersionSource::kDeploy, "adhoc deploy"};
      continue;
    }
    if (recorded) {
      auto was_deployed = recorded->deployed.find(image.name);
      auto file_then = recorded->file_refs.find(image.name);
      const Version* running = Find(recorded->versions, image.name);
      if (running && was_deployed != recorded->deployed.end() && was_deployed->second &&
          file_then != recorded->file_refs.end() && file_then->second == file_ref) {
        out[image.name] = {
            running->ref, VersionSource::kKept,
            fmt::format("deployed by `adhoc deploy`; {} still says {}", env_file_name, file_ref)};
        continue;
      }
    }
    out[image.name] = {file_ref, VersionSource::kEnvFile,
                       pinned ? env_file_name : std::string("no version in the env file (HEAD)")};
  }
  return out;
}

Recorded Applied(const Wanted& wanted) {
  const spec::Project& project = *wanted.project;
  Recorded applied;
  applied.versions = wanted.versions;
  applied.env_fingerprint = EnvFingerprint(project, *wanted.env_file);
  applied.access_fingerprint = AccessFingerprint(project, *wanted.env_file);
  for (const spec::Service& svc : project.services) {
    const Version* v = Find(wanted.versions, svc.image);
    applied.services[svc.name] =
        ServiceFingerprint(svc, v ? *v : Version{}, applied.env_fingerprint);
    applied.service_counts[svc.name] = svc.count;
    applied.service_images[svc.name] = svc.image;
  }
  applied.database = project.postgres.has_value();
  applied.redis = project.redis.has_value();
  for (const spec::Image& image : project.images) {
    const std::string* pinned = wanted.env_file->FindVersion(image.name);
    applied.file_refs[image.name] = pinned ? *pinned : "HEAD";
    auto c = wanted.choices.find(image.name);
    applied.deployed[image.name] =
        c != wanted.choices.end() && c->second.source != VersionSource::kEnvFile;
  }
  return applied;
}

const char* ActionName(Action action) {
  switch (action) {
    case Action::kBuildRelease:
      return "release";
    case Action::kCreateDatabase:
      return "create database";
    case Action::kStartRedis:
      return "start";
    case Action::kRunTask:
      return "run task";
    case Action::kStartService:
      return "start service";
    case Action::kRollService:
      return "roll service";
    case Action::kRemoveService:
      return "remove service";
    case Action::kAddRoutes:
      return "add routes";
    case Action::kSetAccess:
      return "set access";
  }
  return "?";
}

namespace {
char Sign(Action a, bool create) {
  if (create && a == Action::kSetAccess) return '+';
  switch (a) {
    case Action::kRollService:
    case Action::kSetAccess:
      return '~';
    case Action::kRemoveService:
      return '-';
    case Action::kRunTask:
      return '>';
    default:
      return '+';
  }
}
}  // namespace

std::string FormatPlan(const Plan& plan, const std::string& env) {
  if (plan.empty()) return fmt::format("{}: no changes; the environment matches its files.", env);
  std::string out =
      fmt::format("{} {}:\n", plan.create ? "adhoc up would create" : "adhoc up would change", env);
  for (const Step& s : plan.steps) {
    std::string what = fmt::format("{} {}", ActionName(s.action), s.target);
    if (std::string detail = s.Detail(); !detail.empty()) what += " (" + detail + ")";
    out += fmt::format("  {} {:<48} {}\n", Sign(s.action, plan.create), what, s.reason);
  }
  int adds = 0, changes = 0, removes = 0;
  for (const Step& s : plan.steps) {
    if (s.action == Action::kRollService || (s.action == Action::kSetAccess && !plan.create))
      ++changes;
    else if (s.action == Action::kRemoveService)
      ++removes;
    else if (s.action != Action::kRunTask)
      ++adds;
  }
  out += fmt::format("Plan: {} to add, {} to change, {} to remove.", adds, changes, removes);
  return out;
}

nlohmann::json PlanJson(const Plan& plan, const std::string& env) {
  nlohmann::json steps = nlohmann::json::array();
  for (const Step& s : plan.steps)
    steps.push_back({{"action", ActionName(s.action)},
                     {"target", s.target},
                     {"reason", s.reason},
                     {"detail", s.Detail()}});
  return {{"env", env}, {"create", plan.create}, {"steps", steps}};
}

}  // namespace adhoc::plan
