// Small facts about live processes, read from /proc. A process is identified by its pid
// AND its start time (field 22 of /proc/<pid>/stat, in clock ticks since boot), never
// by pid alone, because pids are reused.
//
// Thread-safe: every function reads /proc afresh.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace adhoc::runtime {

struct ProcessId {
  pid_t pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat
  bool operator==(const ProcessId&) const = default;
};

// The start time of `pid`, or nullopt when there is no such process (or it is a zombie:
// a zombie has finished its work and only waits to be reaped). A process whose main thread
// is a zombie while other threads of it still exit is alive: it still holds its files.
std::optional<uint64_t> ProcessStartTime(pid_t pid);

// True while the very process `id` names runs (same pid, same start time, not a zombie).
bool IsAlive(const ProcessId& id);

// The calling process.
ProcessId Self();

}  // namespace adhoc::runtime
