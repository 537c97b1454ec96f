#include "plan/recorded.h"

namespace adhoc::plan {

namespace {
std::map<std::string, std::string> Builds(const Recorded& r) {
  std::map<std::string, std::string> out;
  for (const auto& [image, v] : r.versions)
    if (!v.build.empty()) out[image] = v.build;
  return out;
}
}  // namespace

nlohmann::json RecordedJson(const Recorded& r) {
  return {{"services", r.services},
          {"service_counts", r.service_counts},
          {"service_images", r.service_images},
          {"env_fingerprint", r.env_fingerprint},
          {"access_fingerprint", r.access_fingerprint},
          {"database", r.database},
          {"redis", r.redis},
          {"file_refs", r.file_refs},
          {"deployed", r.deployed},
          {"builds", Builds(r)}};
}

Result<std::optional<Recorded>> LoadRecorded(state::Store& store, const std::string& env) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store.FindEnvironment(env));
  if (!found) return std::optional<Recorded>();
  Recorded r;
  if (!found->spec_json.empty()) {
    auto j = nlohmann::json::parse(found->spec_json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return Failed("the recorded spec of '" + env + "' is not valid JSON");
    r.services = j.value("services", std::map<std::string, std::string>{});
    r.service_counts = j.value("service_counts", std::map<std::string, int>{});
    r.service_images = j.value("service_images", std::map<std::string, std::string>{});
    r.env_fingerprint = j.value("env_fingerprint", "");
    r.access_fingerprint = j.value("access_fingerprint", "");
    r.database = j.value("database", false);
    r.redis = j.value("redis", false);
    r.file_refs = j.value("file_refs", std::map<std::string, std::string>{});
    r.deployed = j.value("deployed", std::map<std::string, bool>{});
  }
  ADHOC_ASSIGN_OR_RETURN(auto versions, store.ListVersions(env));
  std::map<std::string, std::string> builds;
  r.builds_known = false;
  if (!found->spec_json.empty()) {
    auto j = nlohmann::json::parse(found->spec_json, nullptr, false);
    if (j.is_object() && j.contains("builds") && j["builds"].is_object()) {
      builds = j["builds"].get<std::map<std::string, std::string>>();
      r.builds_known = true;
    }
  }
  for (const auto& v : versions) r.versions[v.image] = {v.ref, v.commit, v.tree, builds[v.image]};
  return std::optional<Recorded>(std::move(r));
}

}  // namespace adhoc::plan
