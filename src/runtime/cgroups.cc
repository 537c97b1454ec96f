#include "runtime/cgroups.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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

ControllerSupport Prepare(const fs::path& own, const std::string& knob) {
  ControllerSupport c;
  if (own.empty()) {
    c.reason = "controller not mounted";
    return c;
  }
  if (!fs::exists(own / knob)) {
    c.reason = "no " + (own / knob).string();
    return c;
  }
  fs::path parent = own / "adhoc";
  if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
    c.reason = "cannot create " + parent.string() + ": " + strerror(errno);
    return c;
  }
  c.available = true;
  c.parent = parent;
  return c;
}

}  // namespace

std::string CgroupSupport::Summary() const {
  auto one = [](const char* name, const ControllerSupport& c) {
    return std::string(name) +
           (c.available ? " available (" + c.parent.string() + ")" : " unavailable: " + c.reason);
  };
  std::string v = version ? "cgroup v" + std::to_string(version) : "no cgroups";
  return v + ": " + one("cpu", cpu) + ", " + one("memory", memory);
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
  int cpu_version = 0, memory_version = 0;
  fs::path cpu_dir = OwnCgroupDir("cpu", self, mounts, &cpu_version);
  fs::path memory_dir = OwnCgroupDir("memory", self, mounts, &memory_version);
  s.version = std::max(cpu_version, memory_version);
  if (s.version == 2) {
    s.cpu = Prepare(cpu_dir, "cpu.max");
    s.memory = Prepare(memory_dir, "memory.max");
    // Children only get the controllers their parent hands down.
    for (ControllerSupport* c : {&s.cpu, &s.memory}) {
      if (!c->available) continue;
      const char* name = c == &s.cpu ? "+cpu" : "+memory";
      Status st = WriteValue(c->parent / "cgroup.subtree_control", name);
      if (!st.ok()) {
        c->available = false;
        c->reason = st.error().message();
      }
    }
  } else {
    s.cpu = Prepare(cpu_dir, "cpu.cfs_quota_us");
    s.memory = Prepare(memory_dir, "memory.limit_in_bytes");
  }
  return s;
}

Result<TaskCgroups> CreateTaskCgroups(const CgroupSupport& support, const std::string& task_id,
                                      int cpu, int memory_mib) {
  TaskCgroups out;
  auto make = [&](const ControllerSupport& c) -> Result<fs::path> {
    fs::path dir = c.parent / task_id;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return Failed("creating cgroup " + dir.string() + ": " + strerror(errno));
    bool known = false;
    for (const auto& g : out.groups) known |= g == dir;
    if (!known) out.groups.push_back(dir);
    return dir;
  };
  if (cpu > 0) {
    if (!support.cpu.available) {
      out.warnings.push_back("cpu limit not applied: " + support.cpu.reason);
    } else {
      ADHOC_ASSIGN_OR_RETURN(fs::path dir, make(support.cpu));
      if (support.version == 2) {
        long long period = 100000;
        ADHOC_RETURN_IF_ERROR(WriteValue(
            dir / "cpu.max", std::to_string(cpu * period / 1024) + " " + std::to_string(period)));
      } else {
        long long period = std::atoll(ReadAll(dir / "cpu.cfs_period_us").c_str());
        if (period <= 0) period = 100000;
        ADHOC_RETURN_IF_ERROR(
            WriteValue(dir / "cpu.cfs_quota_us", std::to_string(cpu * period / 1024)));
      }
    }
  }
  if (memory_mib > 0) {
    if (!support.memory.available) {
      out.warnings.push_back("memory limit not applied: " + support.memory.reason);
    } else {
      ADHOC_ASSIGN_OR_RETURN(fs::path dir, make(support.memory));
      std::string bytes = std::to_string(static_cast<long long>(memory_mib) * 1024 * 1024);
      if (support.version == 2) {
        ADHOC_RETURN_IF_ERROR(WriteValue(dir / "memory.max", bytes));
        if (fs::exists(dir / "memory.swap.max"))
          ADHOC_RETURN_IF_ERROR(WriteValue(dir / "memory.swap.max", "0"));
      } else {
        ADHOC_RETURN_IF_ERROR(WriteValue(dir / "memory.limit_in_bytes", bytes));
        // memory+swap equal to memory: no swapping past the limit.
        if (fs::exists(dir / "memory.memsw.limit_in_bytes"))
          ADHOC_RETURN_IF_ERROR(WriteValue(dir / "memory.memsw.limit_in_bytes", bytes));
      }
    }
  }
  return out;
}

void RemoveTaskCgroups(const std::vector<fs::path>& groups) {
  for (const auto& g : groups) rmdir(g.c_str());
}

}  // namespace adhoc::runtime
