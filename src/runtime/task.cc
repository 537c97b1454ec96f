#include "runtime/task.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/hash.h"

namespace adhoc::runtime {
namespace {

using nlohmann::json;

Result<json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound("no " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const std::exception& e) {
    return Failed("reading " + path.string() + ": " + e.what());
  }
}

json ProcessJson(const ProcessId& p) { return {{"pid", p.pid}, {"start_time", p.start_time}}; }
ProcessId ProcessFromJson(const json& j) {
  return {j.at("pid").get<pid_t>(), j.at("start_time").get<uint64_t>()};
}

}  // namespace

std::string LimitsGroup(const fs::path& home, const std::string& env) {
  std::error_code ec;
  fs::path absolute = fs::absolute(home, ec);
  if (ec) absolute = home;
  std::string normal = absolute.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return "adhoc-" + Sha256Hex(normal).substr(0, 8) + "/" + env;
}

std::string ExitStatus::ToString() const {
  if (signal > 0) {
    const char* name = sigabbrev_np(signal);
    return std::string("killed by SIG") + (name ? name : std::to_string(signal).c_str());
  }
  return "exited with status " + std::to_string(code);
}

Status WriteFileAtomically(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(getpid());
  // 0600: launch.json holds the task's environment, and with it its secrets.
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Failed("writing " + tmp.string() + ": " + strerror(errno));
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return Failed("writing " + tmp.string() + ": " + strerror(err));
    }
    p += n;
    left -= n;
  }
  fsync(fd);
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Failed("renaming to " + path.string() + ": " + strerror(err));
  }
  return OkStatus();
}

Status WriteLaunchRecord(const LaunchRecord& record) {
  const TaskSpec& s = record.spec;
  json cgroups = json::array();
  for (const auto& c : record.cgroups) cgroups.push_back(c.string());
  json j = {{"id", s.id},
            {"task_folder", s.task_folder.string()},
            {"log_path", s.log_path.string()},
            {"command", s.command},
            {"env", s.env},
            {"working_folder", s.working_folder.string()},
            {"address", s.address},
            {"port", s.port},
            {"stop_signal", s.stop_signal},
            {"stop_timeout_ms", s.stop_timeout.count()},
            {"cpu", s.cpu},
            {"memory_mib", s.memory_mib},
            {"limits_group", s.limits_group},
            {"log_max_bytes", s.log_max_bytes},
            {"log_keep", s.log_keep},
            {"fork_server", s.fork_server.string()},
            {"cgroups", cgroups}};
  return WriteFileAtomically(s.task_folder / kLaunchFile, j.dump(2) + "\n");
}

Result<LaunchRecord> ReadLaunchRecord(const fs::path& task_folder) {
  ADHOC_ASSIGN_OR_RETURN(json j, ReadJson(task_folder / kLaunchFile));
  try {
    LaunchRecord r;
    TaskSpec& s = r.spec;
    s.id = j.at("id").get<std::string>();
    s.task_folder = j.at("task_folder").get<std::string>();
    s.log_path = j.at("log_path").get<std::string>();
    s.command = j.at("command").get<std::string>();
    s.env = j.at("env").get<std::map<std::string, std::string>>();
    s.working_folder = j.at("working_folder").get<std::string>();
    s.address = j.at("address").get<std::string>();
    s.port = j.at("port").get<int>();
    s.stop_signal = j.at("stop_signal").get<int>();
    s.stop_timeout = std::chrono::milliseconds(j.at("stop_timeout_ms").get<int64_t>());
    s.cpu = j.at("cpu").get<int>();
    s.memory_mib = j.at("memory_mib").get<int>();
    s.limits_group = j.value("limits_group", std::string());  // absent in older records
    s.log_max_bytes = j.at("log_max_bytes").get<uint64_t>();
    s.log_keep = j.at("log_keep").get<int>();
    s.fork_server = j.value("fork_server", std::string());  // absent in older records
    for (const auto& c : j.at("cgroups")) r.cgroups.push_back(c.get<std::string>());
    return r;
  } catch (const std::exception& e) {
    return Failed("reading " + (task_folder / kLaunchFile).string() + ": " + e.what());
  }
}

Status WriteShimRecord(const TaskHandle& h) {
  json j = {{"id", h.id}, {"task", ProcessJson(h.task)}, {"shim", ProcessJson(h.shim)}};
  return WriteFileAtomically(h.task_folder / kShimFile, j.dump() + "\n");
}

Result<TaskHandle> ReadShimRecord(const fs::path& task_folder) {
  ADHOC_ASSIGN_OR_RETURN(json j, ReadJson(task_folder / kShimFile));
  try {
    TaskHandle h;
    h.id = j.at("id").get<std::string>();
    h.task_folder = task_folder;
    h.task = ProcessFromJson(j.at("task"));
    h.shim = ProcessFromJson(j.at("shim"));
    return h;
  } catch (const std::exception& e) {
    return Failed("reading " + (task_folder / kShimFile).string() + ": " + e.what());
  }
}

Status WriteExitRecord(const fs::path& task_folder, const ExitStatus& status) {
  json j = status.signal > 0 ? json{{"signal", status.signal}} : json{{"code", status.code}};
  return WriteFileAtomically(task_folder / kExitFile, j.dump() + "\n");
}

std::optional<ExitStatus> ReadExitRecord(const fs::path& task_folder) {
  auto j = ReadJson(task_folder / kExitFile);
  if (!j.ok()) return std::nullopt;
  ExitStatus s;
  s.code = j->value("code", -1);
  s.signal = j->value("signal", 0);
  return s;
}

Result<int> ParseSignal(const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
    int n = std::stoi(name);
    if (n > 0 && n < NSIG) return n;
    return BadInput("unknown signal: " + name);
  }
  std::string bare = name.rfind("SIG", 0) == 0 ? name.substr(3) : name;
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev && bare == abbrev) return s;
  }
  return BadInput("unknown signal: " + name);
}

}  // namespace adhoc::runtime
