// Health checks of targets by the router itself (the seed's target group checks).
// For every route with a `health` setting, each of its targets is probed every interval:
// `GET <path>` with `Host: <the environment's first hostname>`, a success being a status
// in the matcher's range within the timeout. `healthy` consecutive successes mark the
// target healthy, `unhealthy` consecutive failures unhealthy (UpstreamState::healthy);
// workers skip unhealthy targets. A target shared by several routes is probed once per
// interval. Runs on a thread of its own; Start/Stop from one thread.
#pragma once

#include <memory>

#include "router/route_table.h"

namespace adhoc::router {

class HealthChecker {
 public:
  explicit HealthChecker(RouteTableHolder& holder);
  ~HealthChecker();  // Stop()
  void Start();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adhoc::router
