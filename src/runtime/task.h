// What the runtime is asked to run (TaskSpec), what it hands back (TaskHandle), and what
// it reports (TaskState), plus the small records a task leaves in its folder:
//
//   <task folder>/
//     launch.json   written by the runtime before the shim starts: the TaskSpec and cgroups
//     shim.json     written by the shim once the task runs: pid + start time of both
//     exit          written by the shim when the task has ended: {"code":N} or {"signal":N}
//     shim.log      the shim's own complaints (it has no terminal)
//
// Every record is written atomically (temporary file + rename), so a reader sees the old
// content or the new, never half, and with mode 0600 (launch.json holds the task's
// environment). The task folder itself is made 0700 by the runtime. Plain values; the functions are
// thread-safe.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/process.h"

namespace adhoc::runtime {

namespace fs = std::filesystem;

struct TaskSpec {
  std::string id;                          // unique per environment; names its cgroup too
  fs::path task_folder;                    // created if missing; holds the records above
  fs::path log_path;                       // output, timestamped; rotated beside it
  std::string command;                     // run by /bin/sh -c
  std::map<std::string, std::string> env;  // exactly this environment (PATH from here)
  fs::path working_folder;                 // empty: the task folder
  std::string address;                     // with port: checked free before start
  int port = 0;                            // 0: the task listens on nothing
  int stop_signal = SIGTERM;               // to the main process only
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(30)};  // then SIGKILL to the group
  int cpu = 0;         // 1/1024 of a core, hard quota; 0 = none
  int memory_mib = 0;  // hard limit; 0 = none
  // The cgroup folder, relative to adhoc's own group, that holds this task's group:
  // LimitsGroup(home, env) for an environment's tasks. Set: the task gets groups in every
  // controller. Empty: groups only when it asks for a limit, in a folder named after the
  // task folder's parent ("adhoc-<hash>").
  std::string limits_group;
  uint64_t log_max_bytes = 10 * 1024 * 1024;  // rotate when the log would exceed this
  int log_keep = 2;                           // rotated files kept (<log>.1 newest)
  // A fork server's socket (warm_start.h). Set: the shim first asks that server to fork the
  // command; when it is not there or does not run this command, the task starts by exec.
  fs::path fork_server;
};

// TaskSpec::limits_group of one environment of one home:
// "adhoc-<first 8 hex digits of SHA-256 of the home's absolute, normal path>/<env>".
// The same home and env always give the same name; another home, another name.
std::string LimitsGroup(const fs::path& home, const std::string& env);

struct TaskHandle {
  std::string id;
  fs::path task_folder;
  ProcessId task;  // the main process (/bin/sh -c ...); also its process group id
  ProcessId shim;
};

// How a task ended: an exit code, or the signal that killed it.
struct ExitStatus {
  int code = -1;   // >= 0 when it exited
  int signal = 0;  // > 0 when killed by a signal
  // A shell-style status: the code, or 128 + signal.
  int ShellCode() const { return signal > 0 ? 128 + signal : code; }
  std::string ToString() const;
  bool operator==(const ExitStatus&) const = default;
};

struct TaskState {
  enum Kind { kRunning, kExited, kVanished } kind = kVanished;
  ExitStatus exit;  // when kExited
};

// The launch record: the spec plus the cgroup folders the task must join.
struct LaunchRecord {
  TaskSpec spec;
  std::vector<fs::path> cgroups;  // each gets the task's pid in cgroup.procs; removed after
};

inline constexpr const char* kLaunchFile = "launch.json";
inline constexpr const char* kShimFile = "shim.json";
inline constexpr const char* kExitFile = "exit";
inline constexpr const char* kShimLogFile = "shim.log";

// Writes `content` to `path` through a temporary file in the same folder and a rename.
Status WriteFileAtomically(const fs::path& path, const std::string& content);

Status WriteLaunchRecord(const LaunchRecord& record);
Result<LaunchRecord> ReadLaunchRecord(const fs::path& task_folder);

// shim.json: the handle's process ids.
Status WriteShimRecord(const TaskHandle& handle);
Result<TaskHandle> ReadShimRecord(const fs::path& task_folder);

Status WriteExitRecord(const fs::path& task_folder, const ExitStatus& status);
// nullopt when the task has not ended (no exit file yet).
std::optional<ExitStatus> ReadExitRecord(const fs::path& task_folder);

// "TERM", "SIGTERM" or "15" -> 15; an error for an unknown name.
Result<int> ParseSignal(const std::string& name);

}  // namespace adhoc::runtime
