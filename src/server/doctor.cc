#include "server/doctor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/exec.h"
#include "common/paths.h"
#include "common/proc_files.h"
#include "resources/postgres_cluster.h"
#include "runtime/addresses.h"
#include "runtime/cgroups.h"

namespace adhoc::server {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTaskPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr unsigned long long kLowDiskBytes = 2ULL << 30;  // releases and databases need room
constexpr rlim_t kWantedOpenFiles = 16384;  // the router holds two per proxied request

using Check = DoctorCheck;
using Level = DoctorCheck::Level;
using Settings = DoctorSettings;

Check Ok(std::string name, std::string detail, bool required = true) {
  return {std::move(name), Level::kOk, required, std::move(detail), ""};
}
Check Warn(std::string name, std::string detail, std::string fix, bool required = true) {
  return {std::move(name), Level::kWarning, required, std::move(detail), std::move(fix)};
}
Check Missing(std::string name, std::string detail, std::string fix, bool required = true) {
  return {std::move(name), Level::kMissing, required, std::move(detail), std::move(fix)};
}

// A TCP port number written in decimal, 1-65535; 0 when not.
int ParsePort(const std::string& text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  int port = std::stoi(text);
  return port >= 1 && port <= 65535 ? port : 0;
}

}  // namespace

DoctorSettings DoctorSettingsFromEnvironment() {
  Settings s;
  s.home = paths::HomeDir();
  if (const char* listen = getenv("ADHOC_ROUTER_LISTEN"); listen && *listen) {
    std::string text = listen;
    auto colon = text.rfind(':');
    std::string address = colon == std::string::npos ? "" : text.substr(0, colon);
    int port = colon == std::string::npos ? 0 : ParsePort(text.substr(colon + 1));
    if (address.size() > 2 && address.front() == '[' && address.back() == ']')
      address = address.substr(1, address.size() - 2);  // [::1]:8080
    in6_addr ignored;
    bool ip = inet_pton(AF_INET, address.c_str(), &ignored) == 1 ||
              inet_pton(AF_INET6, address.c_str(), &ignored) == 1;
    if (!ip || port == 0) {
      s.router_error = "ADHOC_ROUTER_LISTEN='" + text +
                       "' is not ADDRESS:PORT (an IP address and a port 1-65535, such as "
                       "127.0.0.1:8080 or 0.0.0.0:80)";
    } else {
      s.router_address = address;
      s.router_port = port;
    }
  }
  if (const char* port = getenv("ADHOC_POSTGRES_PORT"); port && *port) {
    int parsed = ParsePort(port);
    if (parsed == 0)
      s.postgres_error =
          std::string("ADHOC_POSTGRES_PORT='") + port + "' is not a port number (1-65535)";
    else
      s.postgres_port = parsed;
  }
  return s;
}

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t start = s.find_first_not_of(" \n");
  return start == std::string::npos ? "" : s.substr(start);
}

std::string FirstLine(const std::string& s) { return Trim(s.substr(0, s.find('\n'))); }

// The file `name` would run as in the tasks' PATH, or empty.
fs::path FindInTaskPath(const std::string& name) {
  std::stringstream path(kTaskPath);
  std::string dir;
  while (std::getline(path, dir, ':')) {
    fs::path candidate = fs::path(dir) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// The first line `argv` prints (its version), run with the tasks' clean environment.
std::optional<std::string> VersionLine(const std::vector<std::string>& argv) {
  ExecOptions options;
  options.env = std::map<std::string, std::string>{
      {"PATH", kTaskPath}, {"LANG", "C.UTF-8"}, {"HOME", "/tmp"}};
  options.timeout = std::chrono::seconds(15);
  auto result = Exec(argv, options);
  if (!result.ok() || result->exit_code != 0) return std::nullopt;
  return FirstLine(result->output);
}

// A tool in the tasks' PATH, with its version.
Check ToolCheck(const std::string& name, const std::string& tool, const std::string& version_flag,
                bool required, const std::string& why, const std::string& install) {
  fs::path found = FindInTaskPath(tool);
  if (found.empty())
    return Missing(name, tool + " not found in " + kTaskPath + " (" + why + ")", install, required);
  auto version = VersionLine({found.string(), version_flag});
  if (!version)
    return Warn(name, found.string() + " is there but `" + tool + " " + version_flag + "` failed",
                "check that " + found.string() + " runs", required);
  return Ok(name, *version + " (" + found.string() + ")", required);
}

Check PostgresCheck() {
  auto dir = resources::FindPostgresBinDir();
  if (!dir.ok())
    return Missing("postgresql", dir.error().message(), "apt-get install postgresql-15");
  auto version = VersionLine({(*dir / "postgres").string(), "--version"});
  std::string what = version ? *version : std::string("initdb and pg_ctl");
  if (version && version->find(" 15.") == std::string::npos)
    return Warn("postgresql", what + " in " + dir->string() + "; adhoc is tested with 15",
                "install postgresql-15");
  return Ok("postgresql", what + " in " + dir->string());
}

Check PostgresUserCheck() {
  if (geteuid() != 0)
    return Ok("postgres-user", "not needed: the cluster runs as the calling user (not root)");
  struct passwd* pw = getpwnam("postgres");
  if (pw == nullptr)
    return Missing("postgres-user",
                   "running as root, and there is no `postgres` OS user to run the cluster as "
                   "(PostgreSQL refuses root)",
                   "apt-get install postgresql-15 (creates it), or useradd --system postgres");
  return Ok("postgres-user",
            fmt::format("running as root: the cluster runs as `postgres` (uid {})", pw->pw_uid));
}

Check DjangoCheck() {
  const char* python = "/usr/bin/python3";
  if (access(python, X_OK) != 0)
    return Missing("python3-django", "/usr/bin/python3 not found (the example's backend)",
                   "apt-get install python3 python3-django", false);
  auto version = VersionLine({python, "-c",
                              "import django, sys; print('Django', django.get_version(), "
                              "'on Python', sys.version.split()[0])"});
  if (!version)
    return Missing("python3-django",
                   "/usr/bin/python3 cannot import django (the example's backend)",
                   "apt-get install python3-django python3-djangorestframework python3-celery "
                   "python3-psycopg2 python3-redis",
                   false);
  return Ok("python3-django", *version + " (/usr/bin/python3)", false);
}

Check CgroupsCheck() {
  runtime::CgroupSupport support = runtime::DetectCgroups();
  std::string summary = support.Summary();
  std::vector<std::string> lacking;
  if (!support.cpu.available) lacking.push_back("cpu");
  if (!support.memory.available) lacking.push_back("memory");
  if (lacking.empty()) return Ok("cgroups", summary, false);
  std::string which = lacking.size() == 2 ? "cpu and memory" : lacking[0];
  return Warn("cgroups", summary + "; " + which + " limits will not apply to tasks",
              "run adhoc where its own cgroup is writable (root, or a delegated systemd scope)",
              false);
}

Check OpenFilesCheck() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return Warn("open-files", std::string("getrlimit: ") + strerror(errno), "", false);
  auto text = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
  };
  std::string detail = "RLIMIT_NOFILE soft " + text(limit.rlim_cur) + ", hard " +
                       text(limit.rlim_max) + " (the router raises its soft limit to the hard one)";
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < kWantedOpenFiles)
    return Warn("open-files", detail,
                fmt::format("raise the hard limit to at least {} (limits.conf nofile, or "
                            "LimitNOFILE= in the systemd unit)",
                            kWantedOpenFiles),
                false);
  return Ok("open-files", detail, false);
}

// Whether root's processes running as `postgres` can reach `dir`: every parent traversable by
// others (Init() makes the home itself traversable, 0711).
std::optional<fs::path> UntraversableParent(const fs::path& dir) {
  for (fs::path p = dir.parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) return p;
    if (p == p.root_path()) break;
  }
  return std::nullopt;
}

// Creates and removes a file in `dir`: the only honest writability test for root (access()
// says yes to root even where a read-only mount says no).
bool CanWriteIn(const fs::path& dir) {
  std::string tmpl = (dir / ".adhoc-doctor-XXXXXX").string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return false;
  close(fd);
  unlink(tmpl.c_str());
  return true;
}

std::string Bytes(unsigned long long b) {
  if (b >= (1ULL << 30)) return fmt::format("{:.1f} GiB", b / double(1ULL << 30));
  return fmt::format("{} MiB", b >> 20);
}

Check HomeCheck(const fs::path& home) {
  std::error_code ec;
  bool exists = fs::is_directory(home, ec);
  fs::path existing = home;
  while (!fs::exists(existing, ec) && existing.has_parent_path() &&
         existing != existing.parent_path())
    existing = existing.parent_path();
  if (fs::exists(home, ec) && !exists)
    return Missing("home", home.string() + " exists but is not a folder",
                   "remove it, or set ADHOC_HOME to another folder");
  if (!fs::is_directory(existing, ec))
    return Missing("home",
                   "cannot create " + home.string() + ": " + existing.string() + " is not a folder",
                   "set ADHOC_HOME to a folder on a writable disk");
  if (!CanWriteIn(existing))
    return Missing(
        "home",
        (exists ? home.string() + " is not writable"
                : "cannot create " + home.string() + ": " + existing.string() + " is not writable"),
        "set ADHOC_HOME to a writable folder, or fix its owner");
  std::string detail =
      exists ? home.string() + " (writable)"
             : home.string() + " (created when first needed, in " + existing.string() + ")";
  struct statvfs vfs {};
  unsigned long long free_bytes = 0;
  if (statvfs(existing.c_str(), &vfs) == 0) {
    free_bytes = static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize;
    detail += ", " + Bytes(free_bytes) + " free";
  }
  if (geteuid() == 0) {
    if (auto blocked = UntraversableParent(home))
      return Missing("home",
                     detail + "; " + blocked->string() +
                         " is not traversable by others, so the `postgres` user cannot reach "
                         "the cluster's folder",
                     "chmod o+x " + blocked->string() + ", or set ADHOC_HOME elsewhere");
  }
  if (free_bytes > 0 && free_bytes < kLowDiskBytes)
    return Warn("home", detail,
                "free some disk space: releases, databases and logs live here (want " +
                    Bytes(kLowDiskBytes) + ")");
  return Ok("home", detail);
}

// The pid of the process holding the listening TCP socket on address:port, from /proc (only
// the processes this user may look into); 0 when not found.
pid_t ListenerPid(const std::string& hex_local_address) {
  std::istringstream tcp(ReadProcFile("/proc/net/tcp").value_or(""));
  std::string line, inode;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmit, uid, timeout, node;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmit >> uid >> timeout >>
        node;
    if (state == "0A" && local == hex_local_address) {  // 0A: LISTEN
      inode = node;
      break;
    }
  }
  if (inode.empty()) return 0;
  std::string target = "socket:[" + inode + "]";
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  pid_t found = 0;
  while (dirent* e = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    if (pid <= 0) continue;
    fs::path fd_dir = fs::path("/proc") / e->d_name / "fd";
    std::error_code ec;
    for (fs::directory_iterator it(fd_dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (fs::read_symlink(it->path(), ec).string() == target) {
        found = pid;
        break;
      }
    }
    if (found) break;
  }
  closedir(proc);
  return found;
}

// "address:port" as /proc/net/tcp writes it (the IPv4 address's bytes as a host-order hex
// number: 127.0.0.1 -> 0100007F), or empty for an address that is not IPv4.
std::string ProcNetTcpAddress(const std::string& address, int port) {
  in_addr a{};
  if (inet_pton(AF_INET, address.c_str(), &a) != 1) return "";
  return fmt::format("{:08X}:{:04X}", a.s_addr, port);
}

// Who listens on address:port (or on every address at that port): its pid, 0 when not known.
pid_t ListenerOf(const std::string& address, int port) {
  pid_t pid = 0;
  if (std::string at = ProcNetTcpAddress(address, port); !at.empty()) pid = ListenerPid(at);
  if (pid == 0) pid = ListenerPid(ProcNetTcpAddress("0.0.0.0", port));
  return pid;
}

std::string ProcessName(pid_t pid) {
  std::istringstream comm(ReadProcFile("/proc/" + std::to_string(pid) + "/comm").value_or(""));
  std::string name;
  std::getline(comm, name);
  return name;
}

Check RouterPortCheck(const Settings& settings) {
  if (!settings.router_error.empty())
    return Missing("router-port", settings.router_error,
                   "set ADHOC_ROUTER_LISTEN to ADDRESS:PORT, or unset it for 127.0.0.1:8080");
  const std::string& address = settings.router_address;
  const int port = settings.router_port;
  std::string where = fmt::format("{}:{}", address, port);
  runtime::BindProbe probe;
  Status free = probe.CheckFree(address, port);
  if (free.ok()) return Ok("router-port", where + " is free for the router", false);
  if (free.error().kind() != ErrorKind::kConflict)
    return Warn("router-port", free.error().message(),
                "set ADHOC_ROUTER_LISTEN to an address of this machine", false);
  pid_t pid = ListenerOf(address, port);
  pid_t router_pid = 0;
  std::ifstream(paths::RouterPid(settings.home)) >> router_pid;
  if (pid != 0 && pid == router_pid)
    return Ok("router-port",
              where + " is served by this home's router (pid " + std::to_string(pid) + ")", false);
  std::string who =
      pid == 0 ? "another process" : fmt::format("{} (pid {})", ProcessName(pid), pid);
  return Warn("router-port", where + " is used by " + who + ", not by this home's router",
              "stop that process, or set ADHOC_ROUTER_LISTEN to a free ADDRESS:PORT", false);
}

// The base cluster listens on the home's own base address at ADHOC_POSTGRES_PORT.
Check PostgresPortCheck(const Settings& settings) {
  if (!settings.postgres_error.empty())
    return Missing("postgres-port", settings.postgres_error,
                   "set ADHOC_POSTGRES_PORT to a port number, or unset it for 5432");
  std::string address = runtime::BaseAddress(settings.home);
  std::string where = fmt::format("{}:{}", address, settings.postgres_port);
  runtime::BindProbe probe;
  Status free = probe.CheckFree(address, settings.postgres_port);
  if (free.ok()) return Ok("postgres-port", where + " is free for this home's PostgreSQL");
  if (free.error().kind() != ErrorKind::kConflict)
    return Warn("postgres-port", free.error().message(),
                "make sure 127.0.0.0/8 is routed to lo (ip addr show lo: 127.0.0.1/8)");
  pid_t pid = ListenerOf(address, settings.postgres_port);
  // postmaster.pid's first line is the postmaster's pid (root may read it in the 0700 folder).
  pid_t postmaster = 0;
  std::ifstream(paths::PostgresData(settings.home) / "postmaster.pid") >> postmaster;
  if (pid != 0 && pid == postmaster)
    return Ok("postgres-port",
              where + " is served by this home's PostgreSQL (pid " + std::to_string(pid) + ")");
  std::string who =
      pid == 0 ? "another process" : fmt::format("{} (pid {})", ProcessName(pid), pid);
  return Warn("postgres-port", where + " is used by " + who + ", not by this home's PostgreSQL",
              "stop that process, or set ADHOC_POSTGRES_PORT to a free port");
}

Check LoopbackCheck(const fs::path& home) {
  std::string base = runtime::BaseAddress(home);
  runtime::BindProbe probe;
  Status bound = probe.CheckFree(base, 0);  // port 0: any port, so only the address is tested
  if (!bound.ok())
    return Missing("loopback",
                   "cannot bind " + base + ", this home's base address: " + bound.error().message(),
                   "make sure 127.0.0.0/8 is routed to lo (ip addr show lo: 127.0.0.1/8)");
  return Ok("loopback", "can bind " + base + " (this home's range: 127." +
                            std::to_string(runtime::HomeSecondOctet(home)) + ".0.0/16)");
}

}  // namespace

std::vector<DoctorCheck> RunDoctorChecks(const DoctorSettings& settings) {
  const fs::path& home = settings.home;
  std::vector<Check> checks;
  checks.push_back(PostgresCheck());
  checks.push_back(PostgresUserCheck());
  checks.push_back(ToolCheck("redis", "redis-server", "--version", true,
                             "one Redis per environment", "apt-get install redis-server"));
  checks.push_back(
      ToolCheck("git", "git", "--version", true, "versions are git refs", "apt-get install git"));
  checks.push_back(ToolCheck("nginx", "nginx", "-v", false, "the example's frontend",
                             "apt-get install nginx-light"));
  checks.push_back(ToolCheck("gunicorn", "gunicorn", "--version", false,
                             "the example's backend server", "apt-get install gunicorn"));
  checks.push_back(DjangoCheck());
  checks.push_back(ToolCheck("node", "node", "--version", false, "the example's frontend build",
                             "apt-get install nodejs npm"));
  checks.push_back(ToolCheck("npm", "npm", "--version", false, "the example's frontend build",
                             "apt-get install npm"));
  checks.push_back(CgroupsCheck());
  checks.push_back(OpenFilesCheck());
  checks.push_back(HomeCheck(home));
  checks.push_back(RouterPortCheck(settings));
  checks.push_back(PostgresPortCheck(settings));
  checks.push_back(LoopbackCheck(home));
  return checks;
}

const char* LevelName(DoctorCheck::Level level) {
  switch (level) {
    case DoctorCheck::Level::kOk:
      return "ok";
    case DoctorCheck::Level::kWarning:
      return "warning";
    case DoctorCheck::Level::kMissing:
      return "missing";
  }
  return "?";
}

}  // namespace adhoc::server
