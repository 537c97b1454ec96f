// CPU and memory limits per task through cgroups (DESIGN "Limits").
//
// Groups are nested by home, environment and task, so that neither two environments nor
// two homes on one machine ever share a limit:
//   <own group>/adhoc-<home id>/<env>/<task id>
// where <own group> is THIS process's group for each controller, as read from
// /proc/self/cgroup and /proc/self/mountinfo (adhoc may itself sit in a nested group):
//   v1: memory:/process_api/x  ->  /sys/fs/cgroup/memory/process_api/x/adhoc-1a2b3c4d/demo/web-1
//   v2: 0::/some/path          ->  /sys/fs/cgroup/some/path/adhoc-1a2b3c4d/demo/web-1
// and <home id> is a short hash of the home's path (LimitsGroup in task.h). Every task gets a group
// in every available controller (cpu, memory and pids), a limit only where it asked for one: cpu as
// a hard CFS quota (quota = cpu/1024 * period), memory as a hard limit with no swap beyond it where
// the kernel has a swap knob. The task's shim puts the task into its groups before exec and removes
// them when it ends, then the environment's and the home's folders when they are empty
// (RemoveTaskCgroups).
//
// Where a controller is missing or not writable, no limit is set and CreateTaskCgroups()
// returns a one-line warning instead of failing. Thread-safe: no mutable state (the
// filesystem is the state); creating and removing race safely (a folder removed under a
// creation is made again).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::runtime {

namespace fs = std::filesystem;

struct ControllerSupport {
  bool available = false;
  std::string reason;  // why not, when unavailable
  fs::path parent;     // this process's own group: adhoc's groups go below it, when available
};

struct CgroupSupport {
  int version = 0;  // 1, 2, or 0 when neither was found
  ControllerSupport cpu;
  ControllerSupport memory;
  ControllerSupport pids;
  // For `adhoc doctor`: "cgroup v1: cpu available (...), memory unavailable: ...".
  std::string Summary() const;
};

// Where this process's group for `controller` lives, from the texts of /proc/self/cgroup
// and /proc/self/mountinfo; nullopt-like empty path when not found. `version` receives
// 1 or 2. Pure, for tests.
fs::path OwnCgroupDir(const std::string& controller, const std::string& proc_self_cgroup,
                      const std::string& mountinfo, int* version);

// Looks at this machine: the controllers and whether groups can be made under ours (by
// making and removing a probe group).
CgroupSupport DetectCgroups();

struct TaskCgroups {
  std::vector<fs::path> groups;       // folders the task must join (cgroup.procs)
  std::vector<std::string> warnings;  // limits asked for but not applied
};

// Creates the groups of one task under `limits_group` (a relative path of plain names,
// such as LimitsGroup()'s; a BadInput error otherwise) in every available controller,
// with its limits (cpu 1/1024 cores, memory MiB; 0 = no limit). Fails only when an
// available controller misbehaves while a limit was asked for; a task without limits
// simply gets the groups that could be made.
Result<TaskCgroups> CreateTaskCgroups(const CgroupSupport& support, const std::string& limits_group,
                                      const std::string& task_id, int cpu, int memory_mib);

// Removes task groups, then each folder of `limits_group` above them that is left empty
// (the environment's when its last task went, then the home's). A group whose processes
// are still leaving (a killed task) is retried for up to `wait`. Best effort.
void RemoveTaskCgroups(const std::vector<fs::path>& groups, const std::string& limits_group,
                       std::chrono::milliseconds wait = std::chrono::milliseconds(0));

}  // namespace adhoc::runtime
