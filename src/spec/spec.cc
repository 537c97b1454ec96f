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

const std::string* EnvFile::FindVersion(const std::string& image) const {
  for (const VersionPin& v : versions)
    if (v.image == image) return &v.ref;
  return nullptr;
}

}  // namespace adhoc::spec
