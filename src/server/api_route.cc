#include "server/api_route.h"

#include <algorithm>

namespace adhoc::server {

using nlohmann::json;

std::string DomainOfHost(const std::string& host) {
  size_t dot = host.find('.');
  return dot == std::string::npos ? "" : host.substr(dot + 1);
}

ApiRouteSink::ApiRouteSink(RouteSink& inner, std::vector<std::string> base_domains)
    : inner_(inner), base_domains_(std::move(base_domains)) {}

Status ApiRouteSink::SetApiAddress(std::string address) {
  json entry;
  {
    std::lock_guard lock(mu_);
    address_ = std::move(address);
    entry = EntryLocked();
  }
  return inner_.PutEnv(entry);
}

json ApiRouteSink::Entry() const {
  std::lock_guard lock(mu_);
  return EntryLocked();
}

std::vector<std::string> ApiRouteSink::Hosts() const {
  std::lock_guard lock(mu_);
  return HostsLocked();
}

std::vector<std::string> ApiRouteSink::HostsLocked() const {
  std::vector<std::string> hosts;
  auto add = [&](const std::string& domain) {
    std::string host = std::string(kApiRouteName) + "." + domain;
    if (!domain.empty() && std::find(hosts.begin(), hosts.end(), host) == hosts.end())
      hosts.push_back(host);
  };
  for (const auto& d : base_domains_) add(d);
  for (const auto& d : env_domains_) add(d);
  return hosts;
}

json ApiRouteSink::EntryLocked() const {
  if (address_.empty()) return nullptr;
  return {{"name", kApiRouteName},
          {"hosts", HostsLocked()},
          {"status", "running"},
          {"routes",
           json::array(
               {{{"pattern", "/*"},
                 {"service", "api"},
                 {"targets", json::array({{{"id", "control-plane"}, {"address", address_}}})}}})}};
}

bool ApiRouteSink::LearnDomains(const json& env) {
  bool learned = false;
  auto hosts = env.find("hosts");
  if (hosts == env.end() || !hosts->is_array()) return false;
  for (const auto& h : *hosts) {
    if (!h.is_string()) continue;
    std::string domain = DomainOfHost(h.get<std::string>());
    bool base =
        std::find(base_domains_.begin(), base_domains_.end(), domain) != base_domains_.end();
    if (!domain.empty() && env_domains_.insert(domain).second && !base) learned = true;
  }
  return learned;
}

Status ApiRouteSink::PutEnv(const json& env) {
  bool put_entry = false;
  json entry;
  {
    std::lock_guard lock(mu_);
    put_entry = LearnDomains(env) && !address_.empty();
    if (put_entry) entry = EntryLocked();
  }
  ADHOC_RETURN_IF_ERROR(inner_.PutEnv(env));
  if (put_entry) return inner_.PutEnv(entry);
  return OkStatus();
}

Status ApiRouteSink::RemoveEnv(const std::string& name) { return inner_.RemoveEnv(name); }

Status ApiRouteSink::ReplaceAll(const json& envs) {
  json all = envs.is_array() ? envs : json::array();
  {
    std::lock_guard lock(mu_);
    for (const auto& env : all) LearnDomains(env);
    if (!address_.empty()) all.push_back(EntryLocked());
  }
  return inner_.ReplaceAll(all);
}

Result<int> ApiRouteSink::InFlight(const std::string& address) { return inner_.InFlight(address); }

}  // namespace adhoc::server
