#include "server/fork_servers.h"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/exec.h"
#include "common/hash.h"
#include "common/paths.h"
#include "runtime/task.h"
#include "runtime/warm_start.h"
#include "spec/task_env.h"

namespace adhoc::server {

namespace fs = std::filesystem;

namespace {

constexpr const char* kProgramFile = "fork_server.py";
constexpr const char* kReleaseFile = "release";

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ForkServers::ForkServers(fs::path home, runtime::Runtime& runtime,
                         std::function<void(const std::string&)> warn)
    : home_(std::move(home)), runtime_(runtime), warn_(std::move(warn)) {}

fs::path ForkServers::Folder(const std::string& key) const {
  return paths::ForkServersDir(home_) / key;
}

bool ForkServers::Running(const std::string& key) {
  auto handle = runtime_.Adopt(Folder(key));
  return handle.ok() && runtime_.Inspect(*handle).kind == runtime::TaskState::kRunning;
}

Result<fs::path> ForkServers::Ensure(const fs::path& release, const std::string& python,
                                     const std::vector<std::string>& preload) {
  std::string identity = release.string() + "\n" + python;
  for (const auto& m : preload) identity += "\n" + m;
  const std::string key = Sha256Hex(identity).substr(0, 16);
  std::lock_guard lock(mu_);
  if (Running(key)) return Folder(key) / "socket";
  auto started = Start(key, release, python, preload);
  if (!started.ok() && warn_) warn_(started.error().message());
  return started;
}

Result<fs::path> ForkServers::Start(const std::string& key, const fs::path& release,
                                    const std::string& python,
                                    const std::vector<std::string>& preload) {
  const fs::path folder = Folder(key);
  const fs::path socket = folder / "socket";

  // One server per release: the modules changed, so the old one goes.
  std::error_code ec;
  for (auto& e : fs::directory_iterator(paths::ForkServersDir(home_), ec)) {
    const std::string other = e.path().filename().string();
    if (other != key && e.is_directory(ec) && ReadAll(e.path() / kReleaseFile) == release.string())
      (void)StopLocked(other);
  }

  const fs::path dir = paths::ForkServersDir(home_);
  fs::create_directories(dir, ec);
  if (ec) return Failed("creating " + dir.string() + ": " + ec.message());
  chmod(dir.c_str(), 0700);
  const fs::path program = dir / kProgramFile;
  if (ReadAll(program) != runtime::ForkServerProgram())
    ADHOC_RETURN_IF_ERROR(
        runtime::WriteFileAtomically(program, std::string(runtime::ForkServerProgram())));

  // A server that ended left its records and maybe its socket: it starts afresh.
  fs::remove_all(folder, ec);
  fs::create_directories(folder, ec);
  if (ec) return Failed("creating " + folder.string() + ": " + ec.message());
  chmod(folder.c_str(), 0700);
  ADHOC_RETURN_IF_ERROR(runtime::WriteFileAtomically(folder / kReleaseFile, release.string()));

  runtime::TaskSpec spec;
  spec.id = "fork-" + key;
  spec.task_folder = folder;
  spec.log_path = folder / "server.log";
  spec.command = "exec " + ShellQuote(python) + " " + ShellQuote(program.string()) + " " +
                 ShellQuote(socket.string());
  for (const auto& m : preload) spec.command += " " + ShellQuote(m);
  spec.env = {{"PATH", spec::kBasePath},
              {"LANG", "C.UTF-8"},
              // The release folder is read-only to its programs.
              {"PYTHONDONTWRITEBYTECODE", "1"}};
  spec.working_folder = release;
  spec.stop_signal = SIGTERM;
  spec.stop_timeout = std::chrono::seconds(5);
  auto started = runtime_.Start(spec);
  if (!started.ok())
    return std::move(started).context("starting the fork server of " + release.string()).error();
  return socket;
}

std::vector<ForkServerInfo> ForkServers::List() {
  std::lock_guard lock(mu_);
  std::vector<ForkServerInfo> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(paths::ForkServersDir(home_), ec)) {
    if (!e.is_directory(ec)) continue;
    ForkServerInfo info;
    info.key = e.path().filename().string();
    info.release = ReadAll(e.path() / kReleaseFile);
    info.running = Running(info.key);
    out.push_back(std::move(info));
  }
  return out;
}

Status ForkServers::Stop(const std::string& key) {
  std::lock_guard lock(mu_);
  return StopLocked(key);
}

Status ForkServers::StopLocked(const std::string& key) {
  const fs::path folder = Folder(key);
  if (auto handle = runtime_.Adopt(folder); handle.ok())
    if (Status s = runtime_.Stop(*handle); !s.ok())
      return std::move(s).context("stopping fork server " + key);
  std::error_code ec;
  fs::remove_all(folder, ec);
  if (ec) return Failed("removing " + folder.string() + ": " + ec.message());
  return OkStatus();
}

int ForkServers::StopUnused(const std::set<std::string>& used_releases,
                            std::chrono::milliseconds grace) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> due;
  {
    std::lock_guard lock(unused_mu_);
    std::map<std::string, std::chrono::steady_clock::time_point> still_unused;
    for (const auto& info : List()) {
      if (used_releases.count(info.release.string())) continue;
      auto since = unused_since_.find(info.key);
      auto first = since == unused_since_.end() ? now : since->second;
      if (now - first >= grace)
        due.push_back(info.key);
      else
        still_unused[info.key] = first;
    }
    unused_since_ = std::move(still_unused);
  }
  int stopped = 0;
  for (const auto& key : due) stopped += Stop(key).ok();
  return stopped;
}

void ForkServers::StopAll() {
  for (const auto& info : List()) (void)Stop(info.key);
}

}  // namespace adhoc::server
