#include "server/task_launch.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "common/paths.h"
#include "resources/databases.h"
#include "spec/placeholders.h"
#include "spec/task_env.h"

namespace adhoc::server {

namespace fs = std::filesystem;

std::function<std::optional<std::string>(const std::string&)> PlaceholderValues(
    const EnvironmentFacts& facts, const LaunchRequest& request, state::Store& store) {
  return [&facts, request, &store](const std::string& key) -> std::optional<std::string> {
    fs::path taskdir = paths::TaskWorkDir(facts.home, facts.env, request.task_id);
    if (key == "env") return facts.env;
    if (key == "hostname") return facts.hostname;
    if (key == "url") return facts.url;
    if (key == "host") return request.address;
    if (key == "port" && request.port) return std::to_string(*request.port);
    if (key == "bind" && request.port) return request.address + ":" + std::to_string(*request.port);
    if (key == "taskdir") return taskdir.string();
    if (key == "static") return paths::StaticDir(facts.home, facts.env).string();
    if (key == "workdir") {
      auto it = facts.release_paths.find(request.image);
      if (it != facts.release_paths.end()) return it->second.string();
      return std::nullopt;
    }
    auto dot = key.find('.');
    if (dot == std::string::npos) return std::nullopt;
    std::string name = key.substr(0, dot), part = key.substr(dot + 1);
    if (name == "version") {
      auto it = facts.version_refs.find(part);
      if (it != facts.version_refs.end()) return it->second;
      return std::nullopt;
    }
    if (name == "postgres" && facts.database) {
      const auto& db = *facts.database;
      if (part == "host") return facts.postgres_host;
      if (part == "port") return std::to_string(facts.postgres_port);
      if (part == "database") return db.database;
      if (part == "user") return db.role;
      if (part == "password") return db.password;
      if (part == "url")
        return fmt::format("postgres://{}:{}@{}:{}/{}", resources::UrlEncode(db.role),
                           resources::UrlEncode(db.password), facts.postgres_host,
                           facts.postgres_port, resources::UrlEncode(db.database));
    }
    if (name == "redis" && !facts.redis_host.empty()) {
      if (part == "host") return facts.redis_host;
      if (part == "port") return std::to_string(facts.redis_port);
      if (part == "password") return facts.redis_password;
      if (part == "url")
        return fmt::format("redis://:{}@{}:{}/0", resources::UrlEncode(facts.redis_password),
                           facts.redis_host, facts.redis_port);
    }
    if (name == "random") {
      auto value = store.GetOrCreateRandom(facts.env, part, [] { return RandomHex(25); });
      if (value.ok()) return *value;
    }
    return std::nullopt;
  };
}

namespace {

spec::PlaceholderLookup Lookup(
    const std::function<std::optional<std::string>(const std::string&)>& values) {
  return [values](const spec::Placeholder& p) { return values(p.Key()); };
}

}  // namespace

Result<std::map<std::string, std::string>> ProcessEnvironment(const spec::Project& project,
                                                              const spec::EnvFile& env_file,
                                                              const EnvironmentFacts& facts,
                                                              const LaunchRequest& request,
                                                              state::Store& store) {
  spec::TaskEnvLayers layers;
  layers.home = paths::TaskWorkDir(facts.home, facts.env, request.task_id).string();
  layers.project_env = &project.env;
  layers.own_env = request.own_env;
  layers.env_file_env = &env_file.env;
  return spec::BuildTaskEnv(layers, Lookup(PlaceholderValues(facts, request, store)));
}

Result<runtime::TaskSpec> MakeTaskSpec(const spec::Project& project, const spec::EnvFile& env_file,
                                       const EnvironmentFacts& facts, const LaunchRequest& request,
                                       state::Store& store) {
  const std::string what = "preparing " + request.process + " (" + request.task_id + ")";
  auto values = PlaceholderValues(facts, request, store);
  auto release = facts.release_paths.find(request.image);
  if (release == facts.release_paths.end())
    return std::move(Failed("no release of image '" + request.image + "'")).context(what);

  runtime::TaskSpec spec;
  spec.id = request.task_id;
  spec.task_folder = paths::TaskDir(facts.home, facts.env, request.task_id);
  spec.log_path = paths::TaskLog(facts.home, facts.env, request.process, request.task_id);
  spec.working_folder = release->second;
  spec.address = request.address;
  spec.port = request.port.value_or(0);
  spec.stop_signal = request.stop_signal;
  spec.stop_timeout = request.stop_timeout;
  spec.cpu = request.cpu;
  spec.memory_mib = request.memory_mib;
  spec.limits_group = runtime::LimitsGroup(facts.home, facts.env);

  auto command = spec::RenderPlaceholders(request.command, Lookup(values));
  if (!command.ok()) return std::move(command).context(what + ": command").error();
  spec.command = *command;
  auto env = ProcessEnvironment(project, env_file, facts, request, store);
  if (!env.ok()) return std::move(env).context(what).error();
  spec.env = std::move(*env);

  fs::path taskdir = paths::TaskWorkDir(facts.home, facts.env, request.task_id);
  std::error_code ec;
  fs::create_directories(taskdir, ec);
  fs::create_directories(spec.log_path.parent_path(), ec);
  if (ec) return Failed(what + ": creating " + taskdir.string() + ": " + ec.message());
  // Servers that drop privileges (nginx's workers) must reach their own folder.
  chmod(spec.task_folder.c_str(), 0755);
  chmod(taskdir.c_str(), 0755);
  for (const std::string& name : request.templates) {
    fs::path source = release->second / name;
    std::ifstream in(source);
    if (!in)
      return Failed(what + ": template " + name + " is not in the release of '" + request.image +
                    "'");
    std::stringstream text;
    text << in.rdbuf();
    auto rendered = spec::RenderPlaceholders(text.str(), Lookup(values));
    if (!rendered.ok()) return std::move(rendered).context(what + ": template " + name).error();
    fs::path out_path = taskdir / spec::TemplateOutputName(name);
    std::ofstream out(out_path);
    out << *rendered;
    if (!out) return Failed(what + ": writing " + out_path.string());
  }
  return spec;
}

LaunchRequest ServiceLaunch(const spec::Service& service, const std::string& task_id,
                            const std::string& address) {
  LaunchRequest r;
  r.process = service.name;
  r.task_id = task_id;
  r.image = service.image;
  r.command = service.command;
  r.own_env = &service.env;
  r.templates = service.templates;
  r.address = address;
  r.port = service.port;
  r.stop_signal = service.stop_signal_number;
  r.stop_timeout = service.stop_timeout;
  r.cpu = service.cpu;
  r.memory_mib = service.memory;
  return r;
}

LaunchRequest TaskLaunch(const spec::Task& task, const std::string& task_id,
                         const std::string& address) {
  LaunchRequest r;
  r.process = task.name;
  r.task_id = task_id;
  r.image = task.image;
  r.command = task.command;
  r.own_env = &task.env;
  r.address = address;
  return r;
}

runtime::HealthSettings HealthSettingsFor(const spec::Service& service) {
  runtime::HealthSettings hs;
  if (service.health) {
    const auto& h = *service.health;
    hs.start_timeout = h.start_timeout;
    hs.interval = h.interval;
    hs.timeout = h.timeout;
    hs.healthy_threshold = h.healthy;
    hs.unhealthy_threshold = h.unhealthy;
  }
  return hs;
}

Result<runtime::TaskSpec> LocalTaskFactory::Make(const LaunchContext& context,
                                                 const LaunchRequest& request) {
  auto spec = MakeTaskSpec(*context.project, *context.env_file, context.facts, request, store_);
  if (spec.ok()) spec->fork_server = ForkServerFor(context, request.image);
  return spec;
}

fs::path LocalTaskFactory::ForkServerFor(const LaunchContext& context, const std::string& image) {
  const spec::Image* found = context.project->FindImage(image);
  auto release = context.facts.release_paths.find(image);
  if (!fork_servers_ || !found || found->python.empty() ||
      release == context.facts.release_paths.end())
    return {};
  auto socket = fork_servers_->Ensure(release->second, found->python, found->preload);
  return socket.ok() ? *socket : fs::path();
}

void LocalTaskFactory::EnsureForkServers(const LaunchContext& context) {
  for (const auto& image : context.project->images) (void)ForkServerFor(context, image.name);
}

Result<std::shared_ptr<runtime::Prober>> LocalTaskFactory::ProberFor(
    const LaunchContext& context, const spec::Service& service, const std::string& address,
    const runtime::TaskSpec& spec) {
  if (!service.health) return std::shared_ptr<runtime::Prober>();
  const spec::HealthCheck& h = *service.health;
  if (!h.command.empty()) {
    auto values =
        PlaceholderValues(context.facts, ServiceLaunch(service, spec.id, address), store_);
    auto command = spec::RenderPlaceholders(h.command, Lookup(values));
    if (!command.ok())
      return std::move(command).context("health command of " + service.name).error();
    return std::shared_ptr<runtime::Prober>(
        std::make_shared<runtime::CommandProber>(*command, spec.env, spec.working_folder));
  }
  if (h.path.empty() || !service.port) return std::shared_ptr<runtime::Prober>();
  ADHOC_ASSIGN_OR_RETURN(auto matcher, runtime::StatusMatcher::Parse(h.matcher));
  return std::shared_ptr<runtime::Prober>(std::make_shared<runtime::HttpProber>(
      address, *service.port, context.facts.hostname, h.path, matcher));
}

}  // namespace adhoc::server
