// Turning a service or task of adhoc.toml into a runtime::TaskSpec for one environment:
// placeholder values, the environment variables in DESIGN's order, templates rendered into
// {taskdir}, limits, stop settings, folders and logs. Knows the placeholder names; knows
// nothing of how tasks are started.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "runtime/health.h"
#include "runtime/task.h"
#include "server/fork_servers.h"
#include "spec/spec.h"
#include "state/store.h"

namespace adhoc::server {

// Everything about one environment that placeholders may need.
struct EnvironmentFacts {
  std::filesystem::path home;
  std::string env;
  std::string hostname;                                        // demo.localhost
  std::string url;                                             // http://demo.localhost:8080/
  std::map<std::string, std::string> version_refs;             // image -> ref ("v1.0.0")
  std::map<std::string, std::filesystem::path> release_paths;  // image -> built release folder
  std::optional<state::DatabaseCredentials> database;
  std::string postgres_host;
  int postgres_port = 0;
  std::string redis_host;
  int redis_port = 0;
  std::string redis_password;
};

// What the processes of one environment are made from: the applied files and the facts, and
// the generation (the plan's service fingerprint) each service's tasks carry. Shared, never
// changed once made: a restart uses what was applied, not what the files say now.
struct LaunchContext {
  std::shared_ptr<const spec::Project> project;
  std::shared_ptr<const spec::EnvFile> env_file;
  EnvironmentFacts facts;
  std::map<std::string, std::string> generations;  // service -> fingerprint

  // "" for an unknown service.
  std::string Generation(const std::string& service) const {
    auto it = generations.find(service);
    return it == generations.end() ? "" : it->second;
  }
};

// One process to launch.
struct LaunchRequest {
  std::string process;  // service or task name ("gunicorn", "migrate", "run")
  std::string task_id;  // "gunicorn-3"
  std::string image;
  std::string command;  // a template
  const spec::EnvList* own_env = nullptr;
  std::vector<std::string> templates;
  std::string address;  // the task's own address
  std::optional<int> port;
  int stop_signal = 15;
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(10)};
  int cpu = 0;
  int memory_mib = 0;
};

// The placeholder values for a process; random.* values are made once per environment in
// the store. secret.* has no value yet (secrets are not built).
std::function<std::optional<std::string>(const std::string& key)> PlaceholderValues(
    const EnvironmentFacts& facts, const LaunchRequest& request, state::Store& store);

// The rendered environment variables of a process (spec::BuildTaskEnv's order).
Result<std::map<std::string, std::string>> ProcessEnvironment(const spec::Project& project,
                                                              const spec::EnvFile& env_file,
                                                              const EnvironmentFacts& facts,
                                                              const LaunchRequest& request,
                                                              state::Store& store);

// The TaskSpec, with {taskdir} created and templates rendered into it. Errors name the
// process and the template or placeholder.
Result<runtime::TaskSpec> MakeTaskSpec(const spec::Project& project, const spec::EnvFile& env_file,
                                       const EnvironmentFacts& facts, const LaunchRequest& request,
                                       state::Store& store);

// LaunchRequests for a service's task and for a one-off task.
LaunchRequest ServiceLaunch(const spec::Service& service, const std::string& task_id,
                            const std::string& address);
LaunchRequest TaskLaunch(const spec::Task& task, const std::string& task_id,
                         const std::string& address);

// The health-check timing of a service: its `health` table, or the seed's defaults.
runtime::HealthSettings HealthSettingsFor(const spec::Service& service);

// How the fleet turns a request into a runnable spec and a service into a health probe: the
// narrow seam between orchestration and the files' meaning (a fake in the fleet's tests).
// Thread-safe.
class TaskFactory {
 public:
  virtual ~TaskFactory() = default;
  virtual Result<runtime::TaskSpec> Make(const LaunchContext& context,
                                         const LaunchRequest& request) = 0;
  // The probe of a service's task at `address`; nullptr when the service has no health check
  // (healthy while it runs).
  virtual Result<std::shared_ptr<runtime::Prober>> ProberFor(const LaunchContext& context,
                                                             const spec::Service& service,
                                                             const std::string& address,
                                                             const runtime::TaskSpec& spec) = 0;
};

// The real one: MakeTaskSpec, HttpProber and CommandProber.
// With `fork_servers`, a process of an image with `python` names its release's fork server
// (starting it when it is not running).
class LocalTaskFactory : public TaskFactory {
 public:
  explicit LocalTaskFactory(state::Store& store, ForkServers* fork_servers = nullptr)
      : store_(store), fork_servers_(fork_servers) {}
  Result<runtime::TaskSpec> Make(const LaunchContext& context,
                                 const LaunchRequest& request) override;
  Result<std::shared_ptr<runtime::Prober>> ProberFor(const LaunchContext& context,
                                                     const spec::Service& service,
                                                     const std::string& address,
                                                     const runtime::TaskSpec& spec) override;

  // Starts the fork servers of the context's releases that do not run (recovery: a sleeping
  // environment's next wake then finds them ready). Failures are logged.
  void EnsureForkServers(const LaunchContext& context);

 private:
  // The socket of `image`'s fork server in this context; empty when it has none.
  std::filesystem::path ForkServerFor(const LaunchContext& context, const std::string& image);

  state::Store& store_;
  ForkServers* fork_servers_;
};

}  // namespace adhoc::server
