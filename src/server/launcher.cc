#include "server/launcher.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "common/paths.h"

extern char** environ;

namespace adhoc::server {

std::filesystem::path SelfBinary() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("adhoc") : p;
}

namespace {

// The last `lines` lines of `log` (a bad setting is usually said there), indented.
std::string LogTail(const std::filesystem::path& log, size_t lines) {
  std::ifstream in(log);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "  " + all[i] + "\n";
  return out;
}

}  // namespace

Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::filesystem::path& log,
                            const std::vector<std::string>& extra_env) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& e : extra_env) {
    std::string key = e.substr(0, e.find('='));
    std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(key + "=", 0) == 0; });
    env_strings.push_back(e);
  }
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int report[2];  // the grandchild's pid travels back through this pipe
  if (pipe2(report, O_CLOEXEC) != 0) return Failed(std::string("pipe: ") + strerror(errno));
  pid_t child = fork();
  if (child < 0) return Failed(std::string("fork: ") + strerror(errno));
  if (child == 0) {
    setsid();
    pid_t grandchild = fork();
    if (grandchild != 0) {
      (void)!write(report[1], &grandchild, sizeof grandchild);
      _exit(grandchild < 0 ? 1 : 0);
    }
    int devnull = open("/dev/null", O_RDONLY);
    int logfd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    dup2(devnull, 0);
    dup2(logfd >= 0 ? logfd : devnull, 1);
    dup2(logfd >= 0 ? logfd : devnull, 2);
    for (int fd = 3; fd < 1024; ++fd) close(fd);  // nothing of the caller's stays open
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  close(report[1]);
  pid_t grandchild = -1;
  ssize_t n = read(report[0], &grandchild, sizeof grandchild);
  close(report[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (n != sizeof grandchild || grandchild < 0) return Failed("could not start " + argv[0]);
  return grandchild;
}

bool LockHeld(const std::filesystem::path& lock_file) {
  int fd = open(lock_file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_EX | LOCK_NB) != 0;
  close(fd);  // releases the probe's lock, if it got it
  return held;
}

Result<ApiClient> EnsureControlPlane(const std::filesystem::path& home,
                                     const std::filesystem::path& adhoc_binary,
                                     std::chrono::milliseconds timeout) {
  ApiClient client(paths::ServerSocket(home));
  if (client.Reachable()) return client;
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  if (ec) return Failed("creating adhoc's home " + home.string() + ": " + ec.message());
  ADHOC_ASSIGN_OR_RETURN(pid_t pid,
                         SpawnDetached({adhoc_binary.string(), "serve"}, paths::ServerLog(home),
                                       {"ADHOC_HOME=" + home.string()}));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (client.Reachable()) return client;
    // Another CLI (or the keeper) may have won the race to start it: while that one holds the
    // lock it is starting, and answers soon. A server that died on start is reported with its
    // log.
    if (kill(pid, 0) != 0 && !client.Reachable() && !LockHeld(paths::ServerLock(home))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (client.Reachable()) return client;
      return Failed("the control plane exited on start; the end of " +
                    paths::ServerLog(home).string() + ":\n" + LogTail(paths::ServerLog(home), 5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Failed("the control plane did not answer within " +
                std::to_string(timeout.count() / 1000) + "s; see " +
                paths::ServerLog(home).string());
}

Result<std::unique_ptr<HomeLock>> HomeLock::Acquire(const std::filesystem::path& lock_file) {
  int fd = open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Failed("opening " + lock_file.string() + ": " + strerror(errno));
  // Others probe this lock for a moment to see whether its holder lives (the keeper): a
  // short retry keeps such a probe from being taken for a second holder.
  bool locked = false;
  for (int i = 0; i < 20 && !locked; ++i) {
    locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!locked) {
    std::ifstream in(lock_file);
    std::string holder;
    std::getline(in, holder);
    close(fd);
    return Conflict("another adhoc serve already runs for this home" +
                    (holder.empty() ? std::string() : " (pid " + holder + ")"));
  }
  if (ftruncate(fd, 0) == 0) {
    std::string pid = std::to_string(getpid()) + "\n";
    (void)!pwrite(fd, pid.data(), pid.size(), 0);
  }
  return std::unique_ptr<HomeLock>(new HomeLock(fd));
}

HomeLock::~HomeLock() { close(fd_); }

}  // namespace adhoc::server
