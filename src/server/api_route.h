// The control plane's own entry in the router's table (docs/api.md "Over TCP"): the hosts
// adhoc.<domain>, for every domain the table's environments use and for the base domains (the
// TLS domain, localhost), with one catch-all route to the API's TCP listener, which checks the
// token itself (api_auth.h). `adhoc` is a reserved environment name (spec/names.h), so the entry
// never meets an environment of that name.
//
// ApiRouteSink wraps the sink the fleet feeds: a whole table it sends gets the entry added, and
// an environment with a new domain makes it put the entry again with that host. Thread-safe.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "server/route_sink.h"

namespace adhoc::server {

inline constexpr char kApiRouteName[] = "adhoc";

// "demo.preview.example.com" -> "preview.example.com"; "" without a dot.
std::string DomainOfHost(const std::string& host);

class ApiRouteSink : public RouteSink {
 public:
  ApiRouteSink(RouteSink& inner, std::vector<std::string> base_domains);

  // Where the API listens on TCP ("127.0.0.1:41234"). Until it is set, no entry is added.
  // Puts the entry at once (an error when no router runs; the next whole table has it).
  Status SetApiAddress(std::string address);

  // The entry as the feed wants it (null before SetApiAddress).
  nlohmann::json Entry() const;
  // The dashboard's hosts, base domains first.
  std::vector<std::string> Hosts() const;

  Status PutEnv(const nlohmann::json& env) override;
  Status RemoveEnv(const std::string& name) override;
  Status ReplaceAll(const nlohmann::json& envs) override;
  Result<int> InFlight(const std::string& address) override;

 private:
  nlohmann::json EntryLocked() const;            // needs mu_
  std::vector<std::string> HostsLocked() const;  // needs mu_
  // Adds the domains of `env`'s hosts; true when the entry's hosts changed.
  bool LearnDomains(const nlohmann::json& env);  // needs mu_

  RouteSink& inner_;
  mutable std::mutex mu_;
  std::vector<std::string> base_domains_;
  std::set<std::string> env_domains_;
  std::string address_;
};

}  // namespace adhoc::server
