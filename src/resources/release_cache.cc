#include "resources/release_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <tuple>

#include "common/exec.h"
#include "common/hash.h"
#include "common/paths.h"

namespace adhoc::resources {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kErrorLogLines = 15;

// Image names and release keys become folder names: no separators, no dot-files.
bool IsSafeName(const std::string& name) {
  return !name.empty() && name.size() <= 128 && name[0] != '.' && name[0] != '-' &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

Status CheckNames(const std::string& image, const std::string& tree) {
  if (!IsSafeName(image)) return BadInput("image name '" + image + "' is not a valid folder name");
  if (!IsSafeName(tree)) return BadInput("tree '" + tree + "' is not a valid folder name");
  return OkStatus();
}

Status MakeDir(const fs::path& dir, fs::perms mode) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec) fs::permissions(dir, mode, fs::perm_options::replace, ec);
  if (ec) return Failed("creating " + dir.string() + ": " + ec.message());
  return OkStatus();
}

// An exclusive flock on a file, released when destroyed. One per open file
// description, so it also excludes other threads of this process.
class TreeLock {
 public:
  static Result<TreeLock> Acquire(const fs::path& file, const std::function<void()>& on_wait) {
    int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Failed("opening lock " + file.string() + ": " + std::strerror(errno));
    TreeLock lock(fd);
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return lock;
    if (errno != EWOULDBLOCK)
      return Failed("locking " + file.string() + ": " + std::strerror(errno));
    if (on_wait) on_wait();
    while (flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) return Failed("locking " + file.string() + ": " + std::strerror(errno));
    }
    return lock;
  }
  TreeLock(TreeLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  TreeLock& operator=(TreeLock&&) = delete;
  ~TreeLock() {
    if (fd_ >= 0) close(fd_);  // closing releases the flock
  }

 private:
  explicit TreeLock(int fd) : fd_(fd) {}
  int fd_;
};

fs::path LockFile(const fs::path& home, const std::string& image, const std::string& key) {
  return paths::BuildingDir(home) / (image + "-" + key + ".lock");
}

bool IsFinished(const fs::path& release) {
  std::error_code ec;
  return fs::is_regular_file(release / ReleaseCache::kMarkerFile, ec);
}

// remove_all, after giving the owner full access to every folder: a build (not run
// as root) may leave folders without write permission, which would stop it.
void ForceRemoveAll(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(root, ec))) return;
  fs::permissions(root, fs::perms::owner_all, fs::perm_options::add, ec);
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code entry_ec;
    if (it->is_directory(entry_ec) && !it->is_symlink(entry_ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, entry_ec);
  }
  fs::remove_all(root, ec);
}

// Removes leftovers of builds of this key that died (only called under its lock): folders
// named <image>-<key>-<pid> or <image>-<key>-<pid>-removing, and no other key's (a key may
// be the start of another: "<tree>" and "<tree>-b...").
void RemoveStaleBuilds(const fs::path& building, const std::string& image, const std::string& key) {
  const std::string prefix = image + "-" + key + "-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(building, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix) || !entry.is_directory(ec)) continue;
    std::string rest = name.substr(prefix.size());
    if (rest.ends_with("-removing")) rest.resize(rest.size() - std::string("-removing").size());
    if (!rest.empty() && rest.find_first_not_of("0123456789") == std::string::npos)
      ForceRemoveAll(entry.path());
  }
}

// Shared, read-only for everyone but the owner: no group/other writes, all may read.
Status SealPermissions(const fs::path& root) {
  std::error_code ec;
  auto seal = [&](const fs::path& p, const fs::file_status& st) {
    if (fs::is_symlink(st)) return;
    fs::perms add = fs::is_directory(st)
                        ? fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec
                        : fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read;
    fs::perms mode = (st.permissions() | add) & ~(fs::perms::group_write | fs::perms::others_write);
    fs::permissions(p, mode, fs::perm_options::replace | fs::perm_options::nofollow, ec);
  };
  seal(root, fs::symlink_status(root, ec));
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    seal(it->path(), it->symlink_status(ec));
    if (ec) break;
  }
  if (ec) return Failed("setting permissions in " + root.string() + ": " + ec.message());
  return OkStatus();
}

Status AppendToFile(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::app | std::ios::binary);
  out << text;
  if (!out.flush()) return Failed("writing " + file.string());
  return OkStatus();
}

std::string FormatSeconds(Clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + "s";
}

// The tree a finished release was built from, as its marker says (else the key's start).
std::string MarkerTree(const fs::path& release, const std::string& key) {
  std::ifstream in(release / ReleaseCache::kMarkerFile);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("tree ")) return line.substr(5);
  return key;
}

}  // namespace

std::string ReleaseName(const std::filesystem::path& release_path) {
  return release_path.parent_path().filename().string() + "/" + release_path.filename().string();
}

std::string ReleaseKey(const std::string& tree, const std::vector<std::string>& build_commands) {
  if (build_commands.empty()) return tree;
  // Each command with its length, so no two lists give the same text; the version names how
  // commands are run (clean environment, /bin/sh -c), to be bumped if that ever changes.
  std::string inputs = "adhoc build v1\n";
  for (const std::string& command : build_commands)
    inputs += std::to_string(command.size()) + ":" + command + "\n";
  return tree + "-b" + Sha256Hex(inputs).substr(0, 12);
}

ReleaseCache::ReleaseCache(fs::path home, ReleaseCacheOptions options)
    : home_(std::move(home)), options_(options) {}

fs::path ReleaseCache::BuildHome() const { return paths::BuildHome(home_); }

fs::path ReleaseCache::Path(const std::string& image, const std::string& tree,
                            const std::vector<std::string>& build_commands) const {
  return paths::Release(home_, image, ReleaseKey(tree, build_commands));
}

bool ReleaseCache::IsCached(const std::string& image, const std::string& tree,
                            const std::vector<std::string>& build_commands) const {
  return IsSafeName(image) && IsSafeName(tree) && IsFinished(Path(image, tree, build_commands));
}

Result<Release> ReleaseCache::Ensure(const std::string& image, const git::ResolvedVersion& resolved,
                                     const fs::path& repo_dir,
                                     const std::vector<std::string>& build_commands,
                                     const BuildProgressCallback& progress) {
  const auto started = Clock::now();
  const std::string what = "building image '" + image + "' at " +
                           (resolved.ref.empty() ? resolved.tree : resolved.ref) + " (tree " +
                           resolved.tree + ")";
  ADHOC_RETURN_IF_ERROR(CheckNames(image, resolved.tree).context(what));
  const std::string key = ReleaseKey(resolved.tree, build_commands);
  auto report = [&](BuildProgress::Stage stage, const std::string& command = "", int step = 0) {
    if (progress)
      progress(BuildProgress{stage, image, resolved.tree, command, step,
                             static_cast<int>(build_commands.size())});
  };
  auto finished = [&](bool built_now) {
    return Release{paths::Release(home_, image, key), built_now,
                   std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started)};
  };

  const fs::path final_dir = paths::Release(home_, image, key);
  if (IsFinished(final_dir)) return finished(false);

  // Others (nginx's workers) pass through to a release they are told of, without listing.
  const auto pass_through = fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec;
  const auto shared = pass_through | fs::perms::group_read | fs::perms::others_read;
  ADHOC_RETURN_IF_ERROR(MakeDir(paths::ReleasesDir(home_), pass_through).context(what));
  ADHOC_RETURN_IF_ERROR(MakeDir(final_dir.parent_path(), pass_through).context(what));
  ADHOC_RETURN_IF_ERROR(MakeDir(paths::BuildingDir(home_), fs::perms::owner_all).context(what));
  ADHOC_RETURN_IF_ERROR(MakeDir(BuildHome(), fs::perms::owner_all).context(what));

  auto lock = TreeLock::Acquire(LockFile(home_, image, key),
                                [&] { report(BuildProgress::Stage::kWaiting); });
  if (!lock.ok()) return std::move(lock).error().context(what);
  // Whoever held the lock may have built it meanwhile.
  if (IsFinished(final_dir)) return finished(false);

  std::error_code ec;
  fs::remove_all(final_dir, ec);  // an unfinished leftover; a release only counts with its marker
  RemoveStaleBuilds(paths::BuildingDir(home_), image, key);
  const fs::path staging =
      paths::BuildingDir(home_) / (image + "-" + key + "-" + std::to_string(getpid()));
  // Removes the half-built folder on every early return.
  struct StagingGuard {
    fs::path dir;
    ~StagingGuard() {
      if (!dir.empty()) ForceRemoveAll(dir);
    }
  } guard{staging};
  ADHOC_RETURN_IF_ERROR(MakeDir(staging, shared).context(what));

  report(BuildProgress::Stage::kExporting);
  if (resolved.is_worktree()) {
    auto copied = git::HashWorktree(repo_dir, resolved.folder, staging);
    if (!copied.ok()) return std::move(copied).error().context(what);
    if (*copied != resolved.tree)
      return Conflict(what + ": the working tree of '" + resolved.folder +
                      "' changed since it was resolved (now " + *copied + "); try again");
  } else {
    ADHOC_RETURN_IF_ERROR(git::ExportTree(repo_dir, resolved.tree, staging).context(what));
  }

  const fs::path log = staging / kBuildLogFile;
  const std::map<std::string, std::string> env{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", BuildHome().string()},
      {"LANG", "C.UTF-8"},
  };
  ADHOC_RETURN_IF_ERROR(
      AppendToFile(log, "# building image " + image + ", tree " + resolved.tree + "\n")
          .context(what));
  for (size_t i = 0; i < build_commands.size(); ++i) {
    const std::string& command = build_commands[i];
    report(BuildProgress::Stage::kRunning, command, static_cast<int>(i + 1));
    ADHOC_RETURN_IF_ERROR(AppendToFile(log, "$ " + command + "\n").context(what));
    const auto step_started = Clock::now();
    // Output is captured, then appended: the log then also holds what ran past a timeout.
    auto run = Exec({"/bin/sh", "-c", command},
                    {.cwd = staging, .env = env, .timeout = options_.command_timeout});
    if (!run.ok()) return std::move(run).error().context(what + ": running '" + command + "'");
    std::string outcome = run->timed_out
                              ? "timed out after " + FormatSeconds(Clock::now() - step_started)
                              : "exited with status " + std::to_string(run->exit_code);
    ADHOC_RETURN_IF_ERROR(AppendToFile(log, run->output + "# " + outcome + " (" +
                                                FormatSeconds(Clock::now() - step_started) + ")\n")
                              .context(what));
    if (run->timed_out || run->exit_code != 0) {
      std::string tail = LastLines(run->output, kErrorLogLines);
      return Failed(what + ": build command '" + command + "' " + outcome +
                    (tail.empty() ? "" : ":\n" + tail));
    }
  }

  std::string marker = "image " + image + "\ntree " + resolved.tree + "\ncommit " +
                       resolved.commit + "\nref " + resolved.ref + "\n";
  for (const std::string& command : build_commands) marker += "build " + command + "\n";
  ADHOC_RETURN_IF_ERROR(AppendToFile(staging / kMarkerFile, marker).context(what));
  ADHOC_RETURN_IF_ERROR(SealPermissions(staging).context(what));
  if (rename(staging.c_str(), final_dir.c_str()) != 0)
    return Failed(what + ": moving " + staging.string() + " to " + final_dir.string() + ": " +
                  std::strerror(errno));
  guard.dir.clear();
  report(BuildProgress::Stage::kDone);
  return finished(true);
}

Result<std::vector<ReleaseInfo>> ReleaseCache::List() const {
  std::vector<ReleaseInfo> releases;
  const fs::path root = paths::ReleasesDir(home_);
  std::error_code ec;
  if (!fs::exists(root, ec)) return releases;
  for (const auto& image_dir : fs::directory_iterator(root, ec)) {
    const std::string image = image_dir.path().filename().string();
    if (!IsSafeName(image) || !image_dir.is_directory(ec)) continue;
    for (const auto& release_dir : fs::directory_iterator(image_dir.path(), ec)) {
      const std::string key = release_dir.path().filename().string();
      if (!IsSafeName(key) || !IsFinished(release_dir.path())) continue;
      std::error_code time_ec;
      auto built_at = fs::last_write_time(release_dir.path() / kMarkerFile, time_ec);
      releases.push_back(ReleaseInfo{image, key, MarkerTree(release_dir.path(), key),
                                     release_dir.path(), built_at});
    }
    if (ec) break;
  }
  if (ec) return Failed("listing releases in " + root.string() + ": " + ec.message());
  std::sort(releases.begin(), releases.end(), [](const ReleaseInfo& a, const ReleaseInfo& b) {
    return std::tie(a.image, a.key) < std::tie(b.image, b.key);
  });
  return releases;
}

Status ReleaseCache::Remove(const std::string& image, const std::string& key) {
  const std::string what = "removing release " + image + "/" + key;
  ADHOC_RETURN_IF_ERROR(CheckNames(image, key).context(what));
  const fs::path release = paths::Release(home_, image, key);
  std::error_code ec;
  if (!fs::exists(release, ec)) return OkStatus();
  ADHOC_RETURN_IF_ERROR(MakeDir(paths::BuildingDir(home_), fs::perms::owner_all).context(what));
  auto lock = TreeLock::Acquire(LockFile(home_, image, key), nullptr);
  if (!lock.ok()) return std::move(lock).error().context(what);
  // Renamed first so a half-removed release never looks present.
  const fs::path doomed = paths::BuildingDir(home_) /
                          (image + "-" + key + "-" + std::to_string(getpid()) + "-removing");
  fs::remove_all(doomed, ec);
  if (rename(release.c_str(), doomed.c_str()) != 0) {
    if (errno == ENOENT) return OkStatus();
    return Failed(what + ": " + std::strerror(errno));
  }
  fs::remove_all(doomed, ec);
  if (ec) return Failed(what + ": " + ec.message());
  return OkStatus();
}

}  // namespace adhoc::resources
