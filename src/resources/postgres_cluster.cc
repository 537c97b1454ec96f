#include "resources/postgres_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/exec.h"
#include "common/paths.h"
#include "runtime/addresses.h"
#include "runtime/process.h"

namespace adhoc::resources {
namespace fs = std::filesystem;
namespace {

constexpr char kSettingsFile[] = "adhoc.conf";

struct OsUser {
  uid_t uid;
  gid_t gid;
};

// PostgreSQL refuses root: as root, its files and tools belong to the `postgres` user.
Result<std::optional<OsUser>> ServerUser() {
  if (geteuid() != 0) return std::optional<OsUser>();
  struct passwd* pw = getpwnam("postgres");
  if (pw == nullptr)
    return Failed("running as root needs the `postgres` OS user (install postgresql)");
  return std::optional<OsUser>(OsUser{pw->pw_uid, pw->pw_gid});
}

Status GiveTo(const fs::path& path, const std::optional<OsUser>& user) {
  if (user && chown(path.c_str(), user->uid, user->gid) != 0)
    return Failed("chown " + path.string() + ": " + strerror(errno));
  return OkStatus();
}

Status MakeOwnedDir(const fs::path& path, const std::optional<OsUser>& user, fs::perms mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Failed("creating " + path.string() + ": " + ec.message());
  fs::permissions(path, mode, ec);
  if (ec) return Failed("chmod " + path.string() + ": " + ec.message());
  return GiveTo(path, user);
}

Status WriteOwnedFile(const fs::path& path, const std::string& content,
                      const std::optional<OsUser>& user, bool append = false) {
  {
    std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
    out << content;
    if (!out.good()) return Failed("writing " + path.string());
  }
  std::error_code ec;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, ec);
  if (ec) return Failed("chmod " + path.string() + ": " + ec.message());
  return GiveTo(path, user);
}

std::string ReadFileTail(const fs::path& path, int lines) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return LastLines(ss.str(), lines);
}

// The home's folders must be traversable by the `postgres` user, who owns the data below.
Status EnsureTraversableForOthers(const fs::path& home) {
  std::error_code ec;
  fs::path abs = fs::absolute(home, ec);
  if (ec) return Failed("resolving " + home.string() + ": " + ec.message());
  auto perms = fs::status(abs, ec).permissions();
  if (ec) return Failed("reading " + abs.string() + ": " + ec.message());
  if ((perms & fs::perms::others_exec) == fs::perms::none) {
    // A home made with mkdtemp or a private umask is 0700; 0711 lets `postgres` through
    // without letting anyone list it.
    fs::permissions(abs, fs::perms(0711), ec);
    if (ec) return Failed("chmod 0711 " + abs.string() + ": " + ec.message());
  }
  for (fs::path p = abs.parent_path(); !p.empty(); p = p.parent_path()) {
    auto pp = fs::status(p, ec).permissions();
    if (!ec && (pp & fs::perms::others_exec) == fs::perms::none)
      return Failed("the `postgres` user cannot reach " + abs.string() + ": " + p.string() +
                    " is not traversable (chmod o+x it, or choose another ADHOC_HOME)");
    if (p == p.root_path()) break;
  }
  return OkStatus();
}

bool HasServerTools(const fs::path& dir) {
  return access((dir / "initdb").c_str(), X_OK) == 0 && access((dir / "pg_ctl").c_str(), X_OK) == 0;
}

}  // namespace

Result<fs::path> FindPostgresBinDir() {
  const fs::path debian = "/usr/lib/postgresql/15/bin";
  if (HasServerTools(debian)) return debian;
  ExecOptions options;
  options.timeout = std::chrono::seconds(10);
  auto out = ExecOk({"pg_config", "--bindir"}, options);
  if (out.ok()) {
    std::string dir = *out;
    while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
    if (HasServerTools(dir)) return fs::path(dir);
  }
  return NotFound("PostgreSQL server tools (initdb, pg_ctl) not found in " + debian.string() +
                  " nor in `pg_config --bindir` (install postgresql-15)");
}

std::string RenderPostgresSettings(const PostgresClusterOptions& options,
                                   const fs::path& socket_dir, const fs::path& log_file) {
  std::ostringstream s;
  s << "# Written by adhoc at every start; edits are lost.\n"
    << "listen_addresses = '" << options.listen_address << "'\n"
    << "port = " << options.port << "\n"
    << "unix_socket_directories = '" << socket_dir.string() << "'\n"
    << "unix_socket_permissions = 0700\n"
    // Each connection costs shared memory (PGPROC, lock table slots): ~10 MB more at 500
    // than at 100; Linux maps it anonymously, so no SysV shmmax tuning is needed.
    << "max_connections = " << options.max_connections
    << "\n"
    // Durability: a COMMIT is confirmed only once its WAL is flushed to disk, so a crash of
    // the server (or of the machine) never loses a confirmed write; every page is written
    // whole after a checkpoint, so a torn page can be repaired from the WAL. These are
    // PostgreSQL's defaults, written out so that no included file can quietly turn them off.
    << "synchronous_commit = on\n"
    << "fsync = on\n"
    << "full_page_writes = on\n"
    << "password_encryption = 'scram-sha-256'\n"
    << "log_destination = 'stderr'\n"
    << "logging_collector = off\n"
    << "log_line_prefix = '%m [%p] %q%u@%d '\n"
    << "# pg_ctl -l " << log_file.string() << "\n";
  return s.str();
}

std::string RenderPostgresHba() {
  return "# Written by adhoc. The admin (`postgres`) logs in over the private socket folder\n"
         "# (mode 0700); environments log in over loopback TCP with their passwords.\n"
         "local   all   all                  trust\n"
         "host    all   all   127.0.0.0/8    scram-sha-256\n"
         "host    all   all   ::1/128        scram-sha-256\n";
}

PostgresCluster::PostgresCluster(fs::path home, PostgresClusterOptions options)
    : home_(std::move(home)), options_(std::move(options)) {}

fs::path PostgresCluster::SocketDir() const { return paths::PostgresRun(home_); }

Result<ExecResult> PostgresCluster::RunTool(const std::string& tool,
                                            const std::vector<std::string>& args) {
  if (options_.bin_dir.empty()) {
    ADHOC_ASSIGN_OR_RETURN(auto found, FindPostgresBinDir());
    options_.bin_dir = found;
  }
  ADHOC_ASSIGN_OR_RETURN(auto user, ServerUser());
  ExecOptions exec;
  exec.env = std::map<std::string, std::string>{
      {"PATH", options_.bin_dir.string() + ":/usr/bin:/bin"}, {"LANG", "C.UTF-8"}};
  exec.cwd = paths::PostgresDir(home_);
  exec.timeout = options_.start_timeout + std::chrono::seconds(30);
  if (user) {
    exec.uid = user->uid;
    exec.gid = user->gid;
  }
  std::vector<std::string> argv{(options_.bin_dir / tool).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  ADHOC_ASSIGN_OR_RETURN(ExecResult r, Exec(argv, exec));
  if (r.timed_out) return Failed(tool + " timed out");
  return r;
}

Status PostgresCluster::RunToolOk(const std::string& tool, const std::vector<std::string>& args) {
  ADHOC_ASSIGN_OR_RETURN(ExecResult r, RunTool(tool, args));
  if (r.exit_code != 0) {
    std::string msg = tool + " exited with status " + std::to_string(r.exit_code);
    std::string tail = LastLines(r.output, 8);
    if (!tail.empty()) msg += ":\n" + tail;
    return Failed(msg);
  }
  return OkStatus();
}

Status PostgresCluster::Init() {
  const fs::path data = paths::PostgresData(home_);
  std::error_code ec;
  if (fs::exists(data / "PG_VERSION", ec)) return OkStatus();
  auto fail = [&](Status s) { return std::move(s).context("initializing the PostgreSQL cluster"); };

  ADHOC_ASSIGN_OR_RETURN(auto user, ServerUser());
  if (user) {
    if (auto s = EnsureTraversableForOthers(home_); !s.ok()) return fail(s);
  }
  // The folders above the server's own are the caller's: `postgres` passes through (0711).
  for (const fs::path& dir : {paths::PostgresDir(home_).parent_path(), paths::PostgresDir(home_)})
    if (auto s = MakeOwnedDir(dir, std::nullopt, fs::perms(0711)); !s.ok()) return fail(s);
  // A data folder without PG_VERSION is what an interrupted initdb leaves: start over.
  fs::remove_all(data, ec);
  if (auto s = MakeOwnedDir(data, user, fs::perms(0700)); !s.ok()) return fail(s);
  if (auto s = MakeOwnedDir(SocketDir(), user, fs::perms(0700)); !s.ok()) return fail(s);
  if (auto s = WriteOwnedFile(paths::PostgresLog(home_), "", user, true); !s.ok()) return fail(s);

  auto out =
      RunToolOk("initdb", {"-D", data.string(), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions"});
  if (!out.ok()) return fail(out);
  if (auto s = WriteOwnedFile(data / "pg_hba.conf", RenderPostgresHba(), user); !s.ok())
    return fail(s);
  if (auto s = WriteOwnedFile(data / "postgresql.conf",
                              std::string("\n# adhoc's settings, rewritten at every start\n"
                                          "include_if_exists = '") +
                                  kSettingsFile + "'\n",
                              user, true);
      !s.ok())
    return fail(s);
  return OkStatus();
}

Status PostgresCluster::WriteSettings() {
  ADHOC_ASSIGN_OR_RETURN(auto user, ServerUser());
  // Homes made before: their base/ and base/postgres/ were listable by all.
  for (const fs::path& dir : {paths::PostgresDir(home_).parent_path(), paths::PostgresDir(home_)}) {
    std::error_code ec;
    fs::permissions(dir, fs::perms(0711), ec);
  }
  ADHOC_RETURN_IF_ERROR(MakeOwnedDir(SocketDir(), user, fs::perms(0700)));
  return WriteOwnedFile(paths::PostgresData(home_) / kSettingsFile,
                        RenderPostgresSettings(options_, SocketDir(), paths::PostgresLog(home_)),
                        user);
}

Result<PostgresClusterStatus> PostgresCluster::GetStatus() {
  PostgresClusterStatus st;
  const fs::path data = paths::PostgresData(home_);
  std::error_code ec;
  st.initialized = fs::exists(data / "PG_VERSION", ec);
  if (!st.initialized) return st;
  // Running, without a pg_ctl process (10-30 ms, asked at every database step): the pid its
  // lock file names is a live process working in this data folder, as a postmaster does.
  {
    std::ifstream lock(data / "postmaster.pid");
    pid_t pid = 0;
    if (lock >> pid && pid > 0 && runtime::ProcessStartTime(pid)) {
      fs::path cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
      if (!ec && cwd == fs::canonical(data, ec) && !ec) {
        st.running = true;
        st.pid = pid;
        return st;
      }
    }
  }
  // pg_ctl status: 0 running, 3 not running, 4 no usable data folder.
  auto r = RunTool("pg_ctl", {"status", "-D", data.string()});
  if (!r.ok()) return std::move(r).error().context("checking the PostgreSQL cluster");
  if (r->exit_code == 0) {
    st.running = true;
    auto at = r->output.find("PID: ");
    if (at != std::string::npos) st.pid = std::atoi(r->output.c_str() + at + 5);
    // pg_ctl only asks kill(pid, 0): a postmaster killed with -9 and not yet reaped (a
    // zombie) still looks alive to it, and to the next postmaster's lock check.
    if (st.pid > 0 && !runtime::ProcessStartTime(st.pid)) {
      st.running = false;
      st.pid = 0;
    }
  } else if (r->exit_code != 3 && r->exit_code != 4) {
    return Failed("pg_ctl status exited with status " + std::to_string(r->exit_code) + ": " +
                  LastLines(r->output, 3));
  }
  return st;
}

namespace {

// A postmaster killed with -9 leaves postmaster.pid behind; while its process has not been
// reaped, a new postmaster refuses to start. Waits (bounded) for it to be gone.
void WaitForDeadPostmaster(const fs::path& data) {
  std::ifstream in(data / "postmaster.pid");
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return;
  for (int i = 0; i < 100 && kill(pid, 0) == 0 && !runtime::ProcessStartTime(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace

Status PostgresCluster::Start() {
  auto fail = [&](Status s) {
    return std::move(s).context("starting the PostgreSQL cluster on " + options_.listen_address +
                                ":" + std::to_string(options_.port));
  };
  if (options_.listen_address.empty()) return fail(BadInput("no listen address given"));
  if (auto s = Init(); !s.ok()) return s;
  auto st = GetStatus();
  if (!st.ok()) return st;
  if (st->running) return OkStatus();
  WaitForDeadPostmaster(paths::PostgresData(home_));
  if (auto s = runtime::BindProbe().CheckFree(options_.listen_address, options_.port); !s.ok())
    return fail(s);
  if (auto s = WriteSettings(); !s.ok()) return fail(s);
  auto r = RunTool("pg_ctl",
                   {"start", "-w", "-s", "-t", std::to_string(options_.start_timeout.count()), "-D",
                    paths::PostgresData(home_).string(), "-l", paths::PostgresLog(home_).string()});
  if (!r.ok()) return fail(r);
  if (r->exit_code != 0) {
    std::string msg = "pg_ctl start exited with status " + std::to_string(r->exit_code);
    std::string tail = ReadFileTail(paths::PostgresLog(home_), 8);
    if (tail.empty()) tail = LastLines(r->output, 8);
    if (!tail.empty()) msg += "; the server's log ends with:\n" + tail;
    return fail(Failed(msg));
  }
  return OkStatus();
}

Status PostgresCluster::Stop() {
  auto st = GetStatus();
  if (!st.ok()) return st;
  if (!st->running) return OkStatus();
  auto out = RunToolOk("pg_ctl", {"stop", "-w", "-s", "-m", "fast", "-t", "120", "-D",
                                  paths::PostgresData(home_).string()});
  if (!out.ok()) return std::move(out).context("stopping the PostgreSQL cluster");
  return OkStatus();
}

Status PostgresCluster::Destroy() {
  // Never remove the data under a running server.
  ADHOC_RETURN_IF_ERROR(Stop());
  std::error_code ec;
  fs::remove_all(paths::PostgresDir(home_), ec);
  if (ec) return Failed("removing " + paths::PostgresDir(home_).string() + ": " + ec.message());
  return OkStatus();
}

}  // namespace adhoc::resources
