#include "spec/task_env.h"

namespace adhoc::spec {

Result<std::map<std::string, std::string>> BuildTaskEnv(const TaskEnvLayers& layers,
                                                        const PlaceholderLookup& lookup) {
  std::map<std::string, std::string> env = {
      {"PATH", kBasePath}, {"HOME", layers.home}, {"LANG", "C.UTF-8"}};
  // The winning template of each name, applied in order so later layers replace.
  std::map<std::string, const EnvVar*> templates;
  for (const EnvList* layer : {layers.project_env, layers.own_env, layers.env_file_env}) {
    if (layer == nullptr) continue;
    for (const EnvVar& var : *layer) templates[var.name] = &var;
  }
  for (const auto& [name, var] : templates) {
    Result<std::string> value = RenderPlaceholders(var->value, lookup);
    if (!value.ok())
      return std::move(value).context("[env] " + name + " (" + var->where.ToString() + ")").error();
    env[name] = std::move(value).value();
  }
  for (const auto& [name, value] : layers.secrets) env[name] = value;
  return env;
}

}  // namespace adhoc::spec
