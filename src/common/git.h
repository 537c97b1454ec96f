// Versions: a git ref (or "@worktree") resolved to the content an image is built from.
//
// An image is a folder of the project's repository. Its version is keyed by the git
// tree of that folder, not by the commit, so a commit that touches only the frontend
// leaves the backend's tree (and its built release) unchanged.
//
// "@worktree" stands for the uncommitted working tree: its key is "wt-" + the first
// 16 hex digits of a sha256 over the folder's tracked and untracked-not-ignored files
// (sorted relative paths, modes, contents), so an edit or a new file changes it and an
// ignored file does not.
//
// Every git command runs through common/exec.h with a clean environment (PATH, HOME,
// LC_ALL=C), so a caller's GIT_DIR or GIT_WORK_TREE can never redirect it.
// All functions are blocking and safe to call from several threads at once.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adhoc::git {

// The version that names the uncommitted working tree.
inline constexpr std::string_view kWorktreeVersion = "@worktree";
// Prefix of the tree key of a working-tree version.
inline constexpr std::string_view kWorktreeTreePrefix = "wt-";

struct ResolvedVersion {
  std::string ref;     // as asked: "v1.0.0", "main", "HEAD~1", "@worktree"
  std::string folder;  // the image's folder, relative to the repository root ("" = the root)
  std::string commit;  // full commit id; for @worktree HEAD's (empty in a repo without commits)
  std::string tree;    // git tree id of the folder at `commit`, or "wt-<16 hex>" for @worktree
  bool dirty = false;  // @worktree only: the folder differs from HEAD (edits or untracked files)

  bool is_worktree() const { return tree.starts_with(kWorktreeTreePrefix); }
};

// The top folder of the git working tree containing `dir` (git rev-parse --show-toplevel).
// A missing folder is NotFound; a folder outside any git repository is BadInput.
Result<std::filesystem::path> RepoRoot(const std::filesystem::path& dir);

// Resolves `ref` for the image made from `image_folder` (relative to the repository root;
// "" or "." is the whole repository). `image_name` only words the errors (default: the
// folder). A ref is looked up locally first, then as origin/<ref> (a clone that only
// fetched). Errors:
//   unknown ref            NotFound "version 'v9' of image 'backend': no such ref in /repo"
//   folder not at commit   NotFound "...: folder 'backend' does not exist at <commit>"
//   not a repository       BadInput (from RepoRoot)
//   a ref or folder that could be read as an option or escapes the repo: BadInput
Result<ResolvedVersion> ResolveVersion(const std::filesystem::path& repo_dir,
                                       const std::string& image_folder, const std::string& ref,
                                       const std::string& image_name = "");

// `git fetch --tags origin` when the repository has an `origin` remote; nothing otherwise.
Status FetchIfRemote(const std::filesystem::path& repo_dir);

// Writes the content of git tree `tree` into the existing, empty folder `dest`
// (git archive, then tar -x). Owned by the caller: `dest` is not removed on failure.
Status ExportTree(const std::filesystem::path& repo_dir, const std::string& tree,
                  const std::filesystem::path& dest);

// The working-tree key ("wt-<16 hex>") of `image_folder`; with a non-empty `copy_to`
// (an existing folder) also copies the hashed files there, keeping relative paths,
// executable bits and symlinks, and returns the key of exactly what was copied (so a
// file edited during the copy can be detected by comparing keys).
Result<std::string> HashWorktree(const std::filesystem::path& repo_dir,
                                 const std::string& image_folder,
                                 const std::filesystem::path& copy_to = {});

}  // namespace adhoc::git
