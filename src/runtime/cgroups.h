// CPU and memory limits per task through cgroups (DESIGN "Limits").
//
// Groups are made under THIS process's own cgroup for each controller, as read from
// /proc/self/cgroup and /proc/self/mountinfo (adhoc may itself sit in a nested group):
//   v1: memory:/process_api/x  ->  /sys/fs/cgroup/memory/process_api/x/adhoc/<task-id>
//   v2: 0::/some/path          ->  /sys/fs/cgroup/some/path/adhoc/<task-id>
// Limits: cpu as a hard CFS quota (quota = cpu/1024 * period), memory as a hard limit
// with no swap beyond it where the kernel has a swap knob. The task's shim puts the task
// into its groups before exec and removes them when it ends.
//
// Where a controller is missing or not writable, no limit is set and Create() returns a
// one-line warning instead of failing. Thread-safe: no mutable state (the filesystem is
// the state).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::runtime {

namespace fs = std::filesystem;

struct ControllerSupport {
  bool available = false;
  std::string reason;  // why not, when unavailable
  fs::path parent;     // where task groups go (<own group>/adhoc), when available
};

struct CgroupSupport {
  int version = 0;  // 1, 2, or 0 when neither was found
  ControllerSupport cpu;
  ControllerSupport memory;
  // For `adhoc doctor`: "cgroup v1: cpu available (...), memory unavailable: ...".
  std::string Summary() const;
};

// Where this process's group for `controller` lives, from the texts of /proc/self/cgroup
// and /proc/self/mountinfo; nullopt-like empty path when not found. `version` receives
// 1 or 2. Pure, for tests.
fs::path OwnCgroupDir(const std::string& controller, const std::string& proc_self_cgroup,
                      const std::string& mountinfo, int* version);

// Looks at this machine: the controllers and whether a group can be made under ours
// (creates <own group>/adhoc for that).
CgroupSupport DetectCgroups();

struct TaskCgroups {
  std::vector<fs::path> groups;       // folders the task must join (cgroup.procs)
  std::vector<std::string> warnings;  // limits asked for but not applied
};

// Creates the groups of one task with its limits (cpu 1/1024 cores, memory MiB; 0 = no
// limit, and no group for it). Fails only when an available controller misbehaves.
Result<TaskCgroups> CreateTaskCgroups(const CgroupSupport& support, const std::string& task_id,
                                      int cpu, int memory_mib);

// Removes task groups (empty ones; best effort).
void RemoveTaskCgroups(const std::vector<fs::path>& groups);

}  // namespace adhoc::runtime
