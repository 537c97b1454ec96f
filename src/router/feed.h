// The control plane -> router feed: newline-delimited JSON over a Unix socket
// (paths::RouterSocket(home), mode 0600), one JSON answer line per message.
// Messages (docs/router.md has the full protocol):
//   {"op":"replace_all","envs":[ENV...]}   {"op":"put_env","env":ENV}
//   {"op":"remove_env","name":"demo"}      {"op":"stats"}     {"op":"ping"}
//   {"op":"metrics"}                       {"op":"reload_tls"}
// A message is applied whole or not at all: a bad ENV leaves the table as it was.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"
#include "router/route_table.h"

namespace adhoc::router {

// The ENV's "access" object -> AccessRules (docs/router.md "Access rules"). Unknown keys
// are refused, so a typo cannot leave an environment open. `env` names the realm default.
Result<AccessRules> AccessRulesFromJson(const nlohmann::json& j, const std::string& env);

// ENV JSON -> Environment (not yet validated: RouteTable::Build does that).
Result<Environment> EnvironmentFromJson(const nlohmann::json& j);

// What the rest of the router does for some messages (each may be empty).
struct FeedHooks {
  // After a table without the environment is published (remove_env, or replace_all without
  // it): its upgraded connections are closed.
  std::function<void(std::shared_ptr<EnvStats>)> env_removed;
  std::function<Status()> reload_tls;    // {"op":"reload_tls"}
  std::function<std::string()> metrics;  // {"op":"metrics"}: the Prometheus text
};

// Applies feed messages to a table. Thread-safe: updates are serialized by a mutex;
// readers of the holder are never blocked.
class FeedHandler {
 public:
  FeedHandler(RouteTableHolder& holder, SharedStateRegistry& registry, FeedHooks hooks = {})
      : holder_(holder), registry_(registry), hooks_(std::move(hooks)) {}

  // One message in, one answer line out (without the newline).
  std::string Handle(std::string_view line);

 private:
  nlohmann::json Apply(const nlohmann::json& message);
  nlohmann::json Stats() const;

  void Removed(std::shared_ptr<EnvStats> stats);

  RouteTableHolder& holder_;
  SharedStateRegistry& registry_;
  FeedHooks hooks_;
  std::mutex update_mu_;
};

// Serves a FeedHandler on a Unix socket from a thread of its own. Several clients may
// be connected; each line is answered in order. Not thread-safe: Start/Stop from one
// thread.
class FeedServer {
 public:
  explicit FeedServer(FeedHandler& handler);
  ~FeedServer();  // Stop()

  // Removes a stale socket file, binds `socket_path` with mode 0600 and starts serving.
  Status Start(const std::filesystem::path& socket_path);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adhoc::router
