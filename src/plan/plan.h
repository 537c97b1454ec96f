// What `adhoc up` would do to an environment, and why: the wanted environment (the user's files
// and the resolved versions) compared with the recorded one (what the last successful `up`
// applied). Pure logic: no files, no git, no state access; callers fill both sides.
//
// Steps come in DESIGN's order of operations: releases, database, Redis, before-deploy tasks,
// the access rules, services (start or roll) with their routes, after-create tasks, then
// removals. The rules come before the services so that no new route is served by old rules. Each
// step has a reason a person can read ("new environment", "command changed", "backend v1.0.0 ->
// v1.1.0"). Thread-safe: pure functions.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "spec/spec.h"

namespace adhoc::plan {

// A version as resolved in the repository (resources/git.h fills it).
struct Version {
  std::string ref;     // "v1.0.0", "@worktree"
  std::string commit;  // full hash
  std::string tree;    // the image folder's tree (or "wt-<hash>")
  std::string build;   // the image's build inputs ("" when it has no build commands)
};

// Where the version an image runs comes from (the seed's `ignore_changes`: a version set by
// `adhoc deploy` stays until the env file's own version changes).
enum class VersionSource {
  kEnvFile,  // the env file's [versions] (or HEAD when it names none)
  kDeploy,   // `adhoc deploy` asked for it in this operation
  kKept,     // deployed earlier; the env file still names what it named then
};

// Which ref an image should run, before any git resolution.
struct VersionChoice {
  std::string ref;  // the ref to resolve (kEnvFile, kDeploy) or the ref kept (kKept)
  VersionSource source = VersionSource::kEnvFile;
  std::string why;  // "envs/demo.toml", "adhoc deploy", "deployed by `adhoc deploy`; ..."
};

struct Wanted {
  const spec::Project* project = nullptr;
  const spec::EnvFile* env_file = nullptr;
  std::string database_name;                     // [postgres] database rendered for this env
  std::map<std::string, Version> versions;       // image -> resolved version
  std::map<std::string, VersionChoice> choices;  // image -> why that version (optional)
  std::map<std::string, bool> release_built;     // image -> a release of that tree exists already
};

// What the last successful `up` or `deploy` applied, as recorded in the state store.
struct Recorded {
  std::map<std::string, Version> versions;            // image -> version serving now
  std::map<std::string, std::string> services;        // service -> fingerprint applied
  std::map<std::string, int> service_counts;          // service -> tasks running
  std::map<std::string, std::string> service_images;  // service -> image
  std::string env_fingerprint;                        // project [env] + env file [env]
  std::string access_fingerprint;                     // the [access] rules; "": none
  bool database = false;
  bool redis = false;
  // image -> the ref the env file named when it was last applied, and whether the running
  // version came from `adhoc deploy` (kept until the env file's ref changes).
  std::map<std::string, std::string> file_refs;
  std::map<std::string, bool> deployed;
  // False for a record written before build inputs were recorded: its builds are unknown, so a
  // build-key difference alone does not rebuild every environment after an upgrade.
  bool builds_known = true;
};

enum class Action {
  kBuildRelease,  // build an image's release (or reuse a cached one)
  kCreateDatabase,
  kStartRedis,
  kRunTask,        // a before-deploy or after-create task
  kStartService,   // a new service: start its tasks, health-gate, add its routes
  kRollService,    // new tasks beside the old, health-gated, then the old drained and stopped
  kRemoveService,  // stop its tasks, remove its routes
  kAddRoutes,      // static folder routes
  kSetAccess,      // the router's access rules of the environment: set, changed or removed
};

enum class TaskPhase { kBeforeDeploy, kAfterCreate };

// One typed step: the action and the parameters it acts with. The executor dispatches on
// `action` alone; Detail() is only for people.
struct Step {
  Action action;
  std::string target;  // image, service or task name; the database's name; "redis"; "static"
  std::string reason;  // why: "new environment", "backend v1.0.0 -> v1.1.0", ...

  std::string image;            // kBuildRelease, kRunTask, kStartService, kRollService
  Version version;              // the version of `image` it builds or runs
  bool release_cached = false;  // kBuildRelease: a release of that tree exists already
  TaskPhase phase = TaskPhase::kBeforeDeploy;  // kRunTask
  int count = 0;                               // kStartService, kRollService: tasks wanted
  std::vector<std::string> patterns;           // kAddRoutes; kSetAccess: what guards it

  // "v1.0.0 (3f2a91c), cached", "2 tasks", "before deploy", "/static/*".
  std::string Detail() const;
};

struct Plan {
  bool create = false;  // a new environment
  std::vector<Step> steps;
  bool empty() const { return steps.empty(); }
};

// The fingerprint of a service as applied: changes whenever restarting it is needed (command,
// image tree, port, limits, templates, health, env of the service and the env layers).
std::string ServiceFingerprint(const spec::Service& service, const Version& version,
                               const std::string& env_fingerprint);
// The fingerprint of the [env] layers that reach every process (project + env file).
std::string EnvFingerprint(const spec::Project& project, const spec::EnvFile& env_file);
// The fingerprint of the environment's access rules (spec::EffectiveAccess, as templates);
// "" when nothing guards it, so a record written before access rules matches an open one.
std::string AccessFingerprint(const spec::Project& project, const spec::EnvFile& env_file);

// Which ref each image of the project runs: `deploy` (image -> ref) first, then a version
// kept from an earlier deploy while the env file still names the ref it named then, then the
// env file's ref (HEAD when it names none). `env_file_name` is how reasons name the file.
std::map<std::string, VersionChoice> ChooseVersions(
    const spec::Project& project, const spec::EnvFile& env_file,
    const std::optional<Recorded>& recorded, const std::map<std::string, std::string>& deploy,
    const std::string& env_file_name);

// The plan; `recorded` is nullopt for a new environment.
Plan MakePlan(const Wanted& wanted, const std::optional<Recorded>& recorded);

// What an operation that applied `wanted` records (fingerprints, counts, version sources).
Recorded Applied(const Wanted& wanted);

const char* ActionName(Action action);  // "build", "create", "start", "roll", "remove", "run"
// "+ start service gunicorn (1 task)  new environment" lines, like `terraform plan`.
std::string FormatPlan(const Plan& plan, const std::string& env);
nlohmann::json PlanJson(const Plan& plan, const std::string& env);

}  // namespace adhoc::plan
