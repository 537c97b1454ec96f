#include "runtime/process.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace adhoc::runtime {

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return std::nullopt;
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  // Fields after the name start at 3 (state); the start time is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
    if (i == 3 && (field == "Z" || field == "X")) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
}

bool IsAlive(const ProcessId& id) {
  auto start = ProcessStartTime(id.pid);
  return start && *start == id.start_time;
}

ProcessId Self() { return {getpid(), ProcessStartTime(getpid()).value_or(0)}; }

}  // namespace adhoc::runtime
