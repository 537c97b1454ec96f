// The environment variables of a task, in DESIGN's order of precedence (later wins):
//   1. a clean base: PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
//      HOME=<the task's folder>, LANG=C.UTF-8 (never the caller's environment);
//   2. [env] of adhoc.toml;
//   3. the service's or task's own `env`;
//   4. the env file's [env];
//   5. secrets (plain values, not templates).
// Values of layers 2-4 are templates, rendered with the caller's lookup; only the
// winning value of each name is rendered. Thread-safe: a pure function (the lookup is
// called on the caller's thread).
#pragma once

#include <map>
#include <string>

#include "common/result.h"
#include "spec/placeholders.h"
#include "spec/spec.h"

namespace adhoc::spec {

inline constexpr char kBasePath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct TaskEnvLayers {
  std::string home;                       // HOME: the task's own folder
  const EnvList* project_env = nullptr;   // Project::env
  const EnvList* own_env = nullptr;       // Service::env or Task::env; nullptr for none
  const EnvList* env_file_env = nullptr;  // EnvFile::env; nullptr for none
  std::map<std::string, std::string> secrets;
};

// The rendered environment; a BadInput error names the variable, where it was defined
// and the placeholder that failed ("[env] SECRET_KEY (adhoc.toml:25): no value for ...").
Result<std::map<std::string, std::string>> BuildTaskEnv(const TaskEnvLayers& layers,
                                                        const PlaceholderLookup& lookup);

}  // namespace adhoc::spec
