#include "runtime/cgroups.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

namespace adhoc::runtime {
namespace {

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteValue(const fs::path& file, const std::string& value) {
  std::ofstream out(file);
  out << value;
  out.close();
  if (!out) return Failed("writing '" + value + "' to " + file.string() + ": " + strerror(errno));
  return OkStatus();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

// The group path relative to a mount whose root is `root`.
fs::path Under(const std::string& mount_point, const std::string& root, const std::string& path) {
  std::string rel = path;
  if (root != "/" && rel.rfind(root, 0) == 0) rel = rel.substr(root.size());
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  return rel.empty() ? fs::path(mount_point) : fs::path(mount_point) / rel;
}

// Plain folder names only: no separators, no "." or "..", nothing hidden.
bool IsGroupName(const std::string& name) {
  return !name.empty() && name.size() <= 128 && name[0] != '.' &&
         name.find_first_of("/\n\r") == std::string::npos;
}

Result<std::vector<std::string>> GroupComponents(const std::string& limits_group) {
  std::vector<std::string> parts;
  for (const auto& part : Split(limits_group, '/')) {
    if (!IsGroupName(part))
      return BadInput("limits group '" + limits_group +
                      "' must be a relative path of plain folder names");
    parts.push_back(part);
  }
  if (parts.empty()) return BadInput("empty limits group");
  return parts;
}

// Whether adhoc may make groups in `own` for a controller whose limit file is `knob`: a
// probe group is made (on v2 after handing the controller down with `enable`), checked for
// the knob and removed again.
ControllerSupport Prepare(const fs::path& own, const std::string& knob, const std::string& enable) {
  ControllerSupport c;
  if (own.empty()) {
    c.reason = "controller not mounted";
    return c;
  }
  if (!enable.empty()) {
    // v2: children only get the controllers their parent hands down, and a group that
    // holds processes itself may not hand any down (then adhoc needs a delegated group).
    std::string current = ReadAll(own / "cgroup.subtree_control");
    bool enabled = false;
    for (const auto& word : Split(current, ' ')) {
      std::string w = word;
      while (!w.empty() && isspace(static_cast<unsigned char>(w.back()))) w.pop_back();
      enabled |= "+" + w == enable;
    }
    if (!enabled) {
      Status st = WriteValue(own / "cgroup.subtree_control", enable);
      if (!st.ok()) {
        c.reason = "cannot hand " + enable.substr(1) + " down to groups under " + own.string() +
                   ": " + st.error().message();
        return c;
      }
    }
  }
  fs::path probe = own / ("adhoc-probe-" + std::to_string(getpid()));
  if (mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    c.reason = "cannot create groups in " + own.string() + ": " + strerror(errno);
    return c;
  }
  bool has_knob = fs::exists(probe / knob);
  rmdir(probe.c_str());
  if (!has_knob) {
    c.reason = "no " + knob + " in groups under " + own.string();
    return c;
  }
  c.available = true;
  c.parent = own;
  return c;
}

// Makes parent/<components...>, again from the top when a concurrent removal took a folder
// away halfway. On v2 each folder above the leaf hands `subtree` down.
Result<fs::path> MakeChain(const fs::path& parent, const std::vector<std::string>& components,
                           const std::string& subtree) {
  for (int attempt = 0;; ++attempt) {
    fs::path dir = parent;
    bool vanished = false;
    for (size_t i = 0; i < components.size() && !vanished; ++i) {
      dir /= components[i];
      if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        if (errno == ENOENT && i > 0 && attempt < 20) {
          vanished = true;
          break;
        }
        return Failed("creating cgroup " + dir.string() + ": " + strerror(errno));
      }
      if (!subtree.empty() && i + 1 < components.size()) {
        Status st = WriteValue(dir / "cgroup.subtree_control", subtree);
        if (!st.ok() && fs::exists(dir)) return st.error();
      }
    }
    if (!vanished) return dir;
  }
}

}  // namespace

std::string CgroupSupport::Summary() const {
  auto one = [](const char* name, const ControllerSupport& c) {
    return std::string(name) +
           (c.available ? " available (" + c.parent.string() + ")" : " unavailable: " + c.reason);
  };
  std::string v = version ? "cgroup v" + std::to_string(version) : "no cgroups";
  return v + ": " + one("cpu", cpu) + ", " + one("memory", memory) + ", " + one("pids", pids);
}

fs::path OwnCgroupDir(const std::string& controller, const std::string& proc_self_cgroup,
                      const std::string& mountinfo, int* version) {
  std::string v1_path, v2_path;
  bool has_v2 = false;
  for (const auto& line : Split(proc_self_cgroup, '\n')) {
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (line.substr(0, first) == "0" && controllers.empty()) {
      has_v2 = true;
      v2_path = path;
      continue;
    }
    for (const auto& c : Split(controllers, ','))
      if (c == controller) v1_path = path;
  }
  for (const auto& line : Split(mountinfo, '\n')) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto left = Split(line.substr(0, dash), ' ');
    auto right = Split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    const std::string& root = left[3];
    const std::string& mount_point = left[4];
    if (!v1_path.empty() && right[0] == "cgroup") {
      for (const auto& opt : Split(right[2], ','))
        if (opt == controller) {
          *version = 1;
          return Under(mount_point, root, v1_path);
        }
    }
  }
  if (has_v2 && v1_path.empty()) {
    for (const auto& line : Split(mountinfo, '\n')) {
      auto dash = line.find(" - ");
      if (dash == std::string::npos) continue;
      auto left = Split(line.substr(0, dash), ' ');
      auto right = Split(line.substr(dash + 3), ' ');
      if (left.size() < 5 || right.empty() || right[0] != "cgroup2") continue;
      fs::path dir = Under(left[4], left[3], v2_path);
      // A v2 hierarchy only limits what its cgroup.controllers lists.
      for (const auto& c : Split(ReadAll(dir / "cgroup.controllers"), ' ')) {
        std::string name = c;
        while (!name.empty() && isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
        if (name == controller) {
          *version = 2;
          return dir;
        }
      }
    }
  }
  return {};
}

CgroupSupport DetectCgroups() {
  CgroupSupport s;
  std::string self = ReadAll("/proc/self/cgroup");
  std::string mounts = ReadAll("/proc/self/mountinfo");
  int cpu_version = 0, memory_version = 0, pids_version = 0;
  fs::path cpu_dir = OwnCgroupDir("cpu", self, mounts, &cpu_version);
  fs::path memory_dir = OwnCgroupDir("memory", self, mounts, &memory_version);
  fs::path pids_dir = OwnCgroupDir("pids", self, mounts, &pids_version);
  s.version = std::max({cpu_version, memory_version, pids_version});
  bool v2 = s.version == 2;
  s.cpu = Prepare(cpu_dir, v2 ? "cpu.max" : "cpu.cfs_quota_us", v2 ? "+cpu" : "");
  s.memory = Prepare(memory_dir, v2 ? "memory.max" : "memory.limit_in_bytes", v2 ? "+memory" : "");
  s.pids = Prepare(pids_dir, "pids.max", v2 ? "+pids" : "");
  return s;
}

Result<TaskCgroups> CreateTaskCgroups(const CgroupSupport& support, const std::string& limits_group,
                                      const std::string& task_id, int cpu, int memory_mib) {
  ADHOC_ASSIGN_OR_RETURN(std::vector<std::string> components, GroupComponents(limits_group));
  if (!IsGroupName(task_id)) return BadInput("task id '" + task_id + "' is not a folder name");
  components.push_back(task_id);
  std::string subtree;
  if (support.version == 2) {
    for (const auto& [c, name] :
         {std::pair{&support.cpu, "+cpu"}, {&support.memory, "+memory"}, {&support.pids, "+pids"}})
      if (c->available) subtree += (subtree.empty() ? "" : " ") + std::string(name);
  }

  TaskCgroups out;
  auto fail = [&](Error e) -> Result<TaskCgroups> {
    RemoveTaskCgroups(out.groups, limits_group);
    return e;
  };
  // The task's group in one controller; nullopt when it has none there.
  auto join = [&](const ControllerSupport& c, bool limited,
                  const char* what) -> Result<std::optional<fs::path>> {
    if (!c.available) {
      if (limited) out.warnings.push_back(std::string(what) + " limit not applied: " + c.reason);
      return std::optional<fs::path>();
    }
    auto dir = MakeChain(c.parent, components, subtree);
    if (!dir.ok()) {
      if (limited) return std::move(dir).error();
      return std::optional<fs::path>();  // only accounting was lost
    }
    bool known = false;
    for (const auto& g : out.groups) known |= g == *dir;
    if (!known) out.groups.push_back(*dir);
    return std::optional<fs::path>(*dir);
  };

  auto cpu_dir = join(support.cpu, cpu > 0, "cpu");
  if (!cpu_dir.ok()) return fail(cpu_dir.error());
  if (cpu > 0 && *cpu_dir) {
    const fs::path& dir = **cpu_dir;
    Status st;
    if (support.version == 2) {
      long long period = 100000;
      st = WriteValue(dir / "cpu.max",
                      std::to_string(cpu * period / 1024) + " " + std::to_string(period));
    } else {
      long long period = std::atoll(ReadAll(dir / "cpu.cfs_period_us").c_str());
      if (period <= 0) period = 100000;
      st = WriteValue(dir / "cpu.cfs_quota_us", std::to_string(cpu * period / 1024));
    }
    if (!st.ok()) return fail(st.error());
  }
  auto memory_dir = join(support.memory, memory_mib > 0, "memory");
  if (!memory_dir.ok()) return fail(memory_dir.error());
  if (memory_mib > 0 && *memory_dir) {
    const fs::path& dir = **memory_dir;
    std::string bytes = std::to_string(static_cast<long long>(memory_mib) * 1024 * 1024);
    Status st;
    if (support.version == 2) {
      st = WriteValue(dir / "memory.max", bytes);
      if (st.ok() && fs::exists(dir / "memory.swap.max"))
        st = WriteValue(dir / "memory.swap.max", "0");
    } else {
      st = WriteValue(dir / "memory.limit_in_bytes", bytes);
      // memory+swap equal to memory: no swapping past the limit.
      if (st.ok() && fs::exists(dir / "memory.memsw.limit_in_bytes"))
        st = WriteValue(dir / "memory.memsw.limit_in_bytes", bytes);
    }
    if (!st.ok()) return fail(st.error());
  }
  auto pids_dir = join(support.pids, false, "pids");
  if (!pids_dir.ok()) return fail(pids_dir.error());
  return out;
}

void RemoveTaskCgroups(const std::vector<fs::path>& groups, const std::string& limits_group,
                       std::chrono::milliseconds wait) {
  auto components = GroupComponents(limits_group);
  size_t levels = components.ok() ? components->size() : 0;
  for (const auto& g : groups) {
    // Killed processes leave the group a moment after they die.
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (rmdir(g.c_str()) != 0 && errno != ENOENT && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // Then the environment's folder and the home's, while they are empty. A creation racing
    // with this makes them again (MakeChain).
    fs::path dir = g.parent_path();
    for (size_t i = 0; i < levels; ++i, dir = dir.parent_path())
      if (rmdir(dir.c_str()) != 0 && errno != ENOENT) break;
  }
}

}  // namespace adhoc::runtime
