// The release cache: each image version built once, shared by every environment on it
// (the seed's ECR images, keyed by the image folder's git tree and its build commands
// instead of a tag).
//
//   releases/<image>/<key>/             a finished release: {workdir} of its tasks
//     .adhoc-release                    completion marker (written last, before the rename)
//     .adhoc-build.log                  output of every build command, with exit statuses
//   releases/.building/<image>-<key>-<pid>/   a build in progress
//   releases/.building/<image>-<key>.lock     flock held while building that key
//   releases/.home/                     HOME of build commands: npm's cache, shared by builds
//
// The key (ReleaseKey) is what a local release is made of: the tree, plus the image's build
// commands when it has any, so a changed `build` builds a new release (and a failing one
// fails) instead of reusing the release of the old commands. The image's `dockerfile` is
// not part of it: the local runtime never reads it (only `render`'s cloud images are built
// from it), so a Dockerfile edit leaves the local release as it is.
//
// A build exports the tree (or copies the @worktree files), runs each build command
// with `/bin/sh -c` in the release folder with a clean environment (PATH, HOME, LANG)
// and a timeout, then writes the marker and renames the folder into place, so a
// release is either complete or absent. A failed build leaves nothing behind (the lock
// file aside). Finished releases are not writable by group or others and readable by
// everyone (nginx workers serve from them; they hold code, never secrets); releases/ and
// releases/<image>/ let others pass (0711) but not list; .building/ and .home/ are 0700.
//
// Thread-safety: a ReleaseCache may be used from several threads, and several
// processes may share one home: builds of one key are serialized by the lock file
// and the cache is checked again after taking it, so a key is built once.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/git.h"
#include "common/result.h"

namespace adhoc::resources {

struct Release {
  std::filesystem::path path;  // paths::Release(home, image, tree)
  bool built_now = false;      // false: it was already there (or another caller built it)
  std::chrono::milliseconds duration{0};  // of the whole Ensure call, waiting included
};

// What Ensure is doing, for `up`'s progress output.
struct BuildProgress {
  enum class Stage {
    kWaiting,    // another thread or process is building this tree
    kExporting,  // writing the tree's files into the build folder
    kRunning,    // running `command`, build step `step` of `steps` (1-based)
    kDone,       // the release is in place
  };
  Stage stage;
  std::string image;
  std::string tree;
  std::string command;
  int step = 0;
  int steps = 0;
};
using BuildProgressCallback = std::function<void(const BuildProgress&)>;

// The cache key of a release of `tree` built with `build_commands`: the tree alone when
// there are none, else "<tree>-b<first 12 hex digits of a SHA-256 of the commands>".
std::string ReleaseKey(const std::string& tree, const std::vector<std::string>& build_commands);

// "<image>/<key>" of a release folder (paths::Release): how caches made for a release
// (templates.h, static_cache.h) name it, and how `adhoc gc` matches them to the releases in use.
std::string ReleaseName(const std::filesystem::path& release_path);

struct ReleaseInfo {
  std::string image;
  std::string key;   // the folder's name (ReleaseKey)
  std::string tree;  // from its marker
  std::filesystem::path path;
  std::filesystem::file_time_type built_at;  // when its marker was written
};

struct ReleaseCacheOptions {
  std::chrono::milliseconds command_timeout{std::chrono::minutes(30)};  // per build command
};

class ReleaseCache {
 public:
  static constexpr const char* kMarkerFile = ".adhoc-release";
  static constexpr const char* kBuildLogFile = ".adhoc-build.log";

  // `home` is the adhoc home; folders are created on first use.
  explicit ReleaseCache(std::filesystem::path home, ReleaseCacheOptions options = {});

  // The release of `image` at `resolved` (from git::ResolveVersion on `repo_dir`), built now
  // if it is not in the cache. Build failures name the command, its exit status and
  // the last lines of its output; a @worktree that changed since it was resolved is a
  // Conflict. `progress` (optional) is called on the calling thread.
  Result<Release> Ensure(const std::string& image, const git::ResolvedVersion& resolved,
                         const std::filesystem::path& repo_dir,
                         const std::vector<std::string>& build_commands,
                         const BuildProgressCallback& progress = {});

  // Where the release of `image` at `tree` built with `build_commands` is (or would be), and
  // whether it is there, finished. For callers that only look (plan, `up`'s progress).
  std::filesystem::path Path(const std::string& image, const std::string& tree,
                             const std::vector<std::string>& build_commands) const;
  bool IsCached(const std::string& image, const std::string& tree,
                const std::vector<std::string>& build_commands) const;

  // Every finished release, sorted by image then key.
  Result<std::vector<ReleaseInfo>> List() const;

  // Removes a finished release (waiting for a build of it to end); absent is fine.
  // Whether an environment still uses it is the caller's question.
  Status Remove(const std::string& image, const std::string& key);

  // HOME of build commands.
  std::filesystem::path BuildHome() const;

 private:
  std::filesystem::path home_;
  ReleaseCacheOptions options_;
};

}  // namespace adhoc::resources
