#include "runtime/process.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/proc_files.h"

namespace adhoc::runtime {

namespace {

// Fields 3 (state) and 22 (start time) of a /proc/.../stat text.
bool ParseStat(const std::string& stat, std::string* state, uint64_t* start_time) {
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  // Fields after the name start at 3 (state); the start time is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return false;
    if (i == 3) *state = field;
  }
  try {
    *start_time = std::stoull(field);
  } catch (...) {
    return false;
  }
  return true;
}

bool Ended(const std::string& state) { return state == "Z" || state == "X"; }

// A killed multi-threaded process shows its main thread as a zombie while its other
// threads still exit, holding its files (a listening socket) until the last one is gone.
bool OtherThreadsStillExit(pid_t pid) {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    auto stat = ReadProcFile(entry.path() / "stat");
    std::string state;
    uint64_t ignored = 0;
    if (stat && ParseStat(stat->substr(0, stat->find('\n')), &state, &ignored) && !Ended(state))
      return true;
  }
  return false;
}

}  // namespace

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  std::string state;
  uint64_t start_time = 0;
  if (!stat || !ParseStat(stat->substr(0, stat->find('\n')), &state, &start_time))
    return std::nullopt;
  if (Ended(state) && !OtherThreadsStillExit(pid)) return std::nullopt;
  return start_time;
}

bool IsAlive(const ProcessId& id) {
  auto start = ProcessStartTime(id.pid);
  return start && *start == id.start_time;
}

ProcessId Self() { return {getpid(), ProcessStartTime(getpid()).value_or(0)}; }

}  // namespace adhoc::runtime
