// Helpers for the runtime's tests: unique temporary folders and task specs whose tasks
// are stopped when the test ends, also on failure. Not part of the library's API.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "runtime/runtime.h"

namespace adhoc::runtime::testing {

using adhoc::testutil::TempDir;

inline std::string UniqueId(const std::string& prefix) {
  std::random_device rd;
  return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 1000000);
}

inline std::map<std::string, std::string> CleanEnv() {
  return {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
          {"HOME", "/root"},
          {"LANG", "C.UTF-8"}};
}

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Kills (by group, pid and start time checked) whatever tasks a test started.
class TaskReaper {
 public:
  ~TaskReaper() {
    for (const auto& h : handles_) {
      if (IsAlive(h.task)) kill(-h.task.pid, SIGKILL);
      if (IsAlive(h.shim)) kill(h.shim.pid, SIGKILL);
    }
  }
  void Add(const TaskHandle& h) { handles_.push_back(h); }
  // Tasks started elsewhere (a forked child) are found from their folders.
  void AddFolder(const std::filesystem::path& folder) {
    if (auto h = ReadShimRecord(folder); h.ok()) handles_.push_back(*h);
  }

 private:
  std::vector<TaskHandle> handles_;
};

}  // namespace adhoc::runtime::testing
