// The plain records the state store keeps: what goes in is what comes out.
//
// These structs carry no behaviour and know nothing of TOML, processes or
// PostgreSQL; JSON fields (spec_json, input_json, undo_json) are opaque text to the
// store. Times are Millis (milliseconds since the epoch, see clock.h); optional
// fields are std::nullopt when unknown or not applicable. Statuses of closed sets
// are enums, stored by their lower-case names (ToString/Parse below); open sets
// (task kind, operation kind, event kind) are plain strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "state/clock.h"

namespace adhoc::state {

enum class EnvStatus { kCreating, kRunning, kUpdating, kSleeping, kFailed, kDestroying };

// One environment. `name` is the key.
struct Environment {
  std::string name;
  EnvStatus status = EnvStatus::kCreating;
  std::string owner;
  Millis created_at = 0;  // set by the store on first put when 0; kept on later puts
  Millis updated_at = 0;  // set by the store on every put
  std::optional<Millis> last_request_at;
  std::optional<int64_t> ttl_seconds;
  std::optional<int64_t> sleep_after_seconds;
  std::string address_block;  // e.g. "127.23.4.0/24"
  std::string hostname;       // e.g. "demo.localhost"
  std::string url;            // e.g. "http://demo.localhost:8080"
  std::string spec_json;      // the applied spec, opaque to the store
  std::string env_file_hash;  // content hash of envs/<name>.toml as applied
};

// The version of one image deployed in one environment; (env, image) is the key.
struct Version {
  std::string env;
  std::string image;
  std::string ref;     // as written in the env file, e.g. "v1.0.0"
  std::string commit;  // resolved commit id
  std::string tree;    // git tree of the image folder: the release cache key
  std::string release_path;
  Millis deployed_at = 0;  // set by the store when 0
};

// An encrypted secret; the store keeps the bytes and never looks inside.
struct Secret {
  std::string env;  // empty: project-wide; else the environment it belongs to
  std::string name;
  std::vector<uint8_t> ciphertext;
  Millis updated_at = 0;  // set by the store
};

// What the control plane needs to render {postgres.*} after a restart.
struct DatabaseCredentials {
  std::string env;
  std::string role;
  std::string password;
  std::string database;
};

enum class TaskStatus { kStarting, kHealthy, kUnhealthy, kExited, kFailed, kStopped };

// One process of an environment; (env, id) is the key, e.g. ("demo", "gunicorn-3").
struct Task {
  std::string env;
  std::string id;
  std::string process;      // service or task name, e.g. "gunicorn", "migrate"
  std::string kind;         // "service", "task", "redis", ...
  std::string generation;   // version label of the release it runs, e.g. "backend@v1.1.0"
  std::string address;      // its own loopback address; empty if none
  int port = 0;             // 0: none
  int64_t pid = 0;          // 0: not started
  uint64_t start_time = 0;  // process start time from /proc/<pid>/stat (clock ticks)
  int64_t shim_pid = 0;
  uint64_t shim_start_time = 0;
  TaskStatus status = TaskStatus::kStarting;
  int restarts = 0;
  std::optional<int> exit_code;
  std::string release_path;
  Millis started_at = 0;
  std::optional<Millis> ended_at;
};

enum class RouteKind { kService, kFolder };

// One routing rule of an environment, fed to the router.
struct Route {
  std::string env;
  std::string hostname;
  std::string pattern;          // "/api/*", "/*", "/exact"
  std::optional<int> priority;  // explicit priority, else the router's ordering rules
  std::string service;          // for kService
  RouteKind kind = RouteKind::kService;
  std::string folder_path;  // for kFolder
};

struct AddressBlock {
  std::string block;  // e.g. "127.23.4.0/24"
  std::string env;
  Millis allocated_at = 0;
};

enum class OperationStatus { kRunning, kDone, kFailed, kUndone };
enum class StepStatus { kPending, kRunning, kDone, kFailed, kUndone };

// One step of an operation, in the order it was planned.
struct Step {
  std::string name;  // unique within its operation
  StepStatus status = StepStatus::kPending;
  std::optional<Millis> started_at;
  std::optional<Millis> finished_at;
  std::string undo_json;  // how to reverse it: recorded before it acts, kept when it completes
  std::string error;      // why it failed
};

// A journal entry: one run of a command against one environment.
struct Operation {
  int64_t id = 0;
  std::string env;
  std::string kind;  // "up", "deploy", "destroy", "run", "sleep", "wake", ...
  OperationStatus status = OperationStatus::kRunning;
  Millis started_at = 0;
  std::optional<Millis> finished_at;
  std::string error;
  std::string input_json;  // the requested input, opaque to the store
  std::vector<Step> steps;
};

struct Event {
  int64_t id = 0;  // increasing in append order
  Millis time = 0;
  std::string env;
  std::string kind;  // e.g. "task-exited", "deploy"
  std::string message;
};

// A saved copy of an environment's data (`adhoc snapshot ENV NAME`); `name` is the key.
struct Snapshot {
  std::string name;
  std::string env;            // the environment it was taken of (may be gone since)
  std::string versions_json;  // [{"image","ref","commit","tree"}] it ran then, opaque here
  std::string path;           // its folder (paths::SnapshotDir)
  int64_t database_bytes = 0;
  int64_t redis_bytes = 0;
  int64_t redis_keys = 0;
  Millis created_at = 0;  // set by the store when 0
};

// The expiry an environment was last warned of ([notify] `expiring`); `env` is the key.
struct ExpiryWarning {
  std::string env;
  Millis expires_at = 0;  // the expiry the warning announced
  Millis warned_at = 0;   // set by the store when 0
};

std::string_view ToString(EnvStatus s);
std::string_view ToString(TaskStatus s);
std::string_view ToString(RouteKind k);
std::string_view ToString(OperationStatus s);
std::string_view ToString(StepStatus s);

// Parse a lower-case name back; a BadInput error for an unknown name.
Result<EnvStatus> ParseEnvStatus(std::string_view s);
Result<TaskStatus> ParseTaskStatus(std::string_view s);
Result<RouteKind> ParseRouteKind(std::string_view s);
Result<OperationStatus> ParseOperationStatus(std::string_view s);
Result<StepStatus> ParseStepStatus(std::string_view s);

}  // namespace adhoc::state
