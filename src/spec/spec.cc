#include "spec/spec.h"

namespace adhoc::spec {

namespace {

template <typename T>
const T* FindByName(const std::vector<T>& items, const std::string& name) {
  for (const T& item : items)
    if (item.name == name) return &item;
  return nullptr;
}

}  // namespace

std::string TemplateOutputName(const std::string& template_name) {
  const std::string suffix = ".in";
  if (template_name.size() > suffix.size() &&
      template_name.compare(template_name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return template_name.substr(0, template_name.size() - suffix.size());
  return template_name;
}

const Image* Project::FindImage(const std::string& name) const { return FindByName(images, name); }
const Service* Project::FindService(const std::string& name) const {
  return FindByName(services, name);
}
const Task* Project::FindTask(const std::string& name) const { return FindByName(tasks, name); }

std::string DataSource::ToString() const {
  switch (kind) {
    case Kind::kEmpty:
      return "";
    case Kind::kSnapshot:
      return "snapshot:" + argument;
    case Kind::kEnv:
      return "env:" + argument;
    case Kind::kFile:
      return "file:" + argument;
  }
  return "";
}

SourceLocation Access::Where(const std::string& key) const {
  auto it = where_key.find(key);
  return it == where_key.end() ? where : it->second;
}

bool Access::guards() const {
  return (allow && !allow->empty()) || (basic_auth && !basic_auth->empty()) ||
         (token && !token->empty());
}

std::optional<Access> EffectiveAccess(const Project& project, const EnvFile& env_file) {
  if (!project.access && !env_file.access) return std::nullopt;
  if (!env_file.access) return project.access;
  if (!project.access) return env_file.access;
  Access out = *project.access;
  const Access& mine = *env_file.access;
  // Key by key: what the env file says wins, where it was written with it.
  auto take = [&](const char* key, auto member) {
    if (!(mine.*member)) return;
    out.*member = mine.*member;
    out.where_key[key] = mine.Where(key);
  };
  take("basic_auth", &Access::basic_auth);
  take("token", &Access::token);
  take("allow", &Access::allow);
  take("public_paths", &Access::public_paths);
  out.where = mine.where;
  return out;
}

const std::string* EnvFile::FindVersion(const std::string& image) const {
  for (const VersionPin& v : versions)
    if (v.image == image) return &v.ref;
  return nullptr;
}

}  // namespace adhoc::spec
