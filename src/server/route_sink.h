// Where the fleet sends an environment's routes and asks about requests in flight: the router's
// feed (RouterLink) in the control plane, a recording fake in tests. The JSON of an environment
// is the feed's (docs/router.md): {name, hosts, status, routes: [{pattern, priority?,
// service+targets | folder}], access?}.
// Implementations must be safe to call from several threads.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace adhoc::server {

class RouteSink {
 public:
  virtual ~RouteSink() = default;
  // Adds or replaces one environment; applied before it returns (the next request sees it).
  virtual Status PutEnv(const nlohmann::json& env) = 0;
  // Removes one environment; removing an unknown one succeeds.
  virtual Status RemoveEnv(const std::string& name) = 0;
  // Replaces the whole table (a router that started empty).
  virtual Status ReplaceAll(const nlohmann::json& envs) = 0;
  // Requests in flight to `address` ("127.1.2.10:8000"), also after its target left the
  // table. An error when the router does not answer (then nothing routes to it either).
  virtual Result<int> InFlight(const std::string& address) = 0;
};

}  // namespace adhoc::server
