#include "common/git.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/exec.h"
#include "common/test_support.h"

namespace adhoc::git {
namespace {

namespace fs = std::filesystem;

using testutil::TempDir;

// The output of testutil::Sh without its final newlines.
std::string Sh(const fs::path& dir, const std::string& script) {
  std::string out = testutil::Sh(dir, script);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void Write(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << content;
}

// A repository with backend/ and frontend/, one commit tagged v1.0.0, on branch main.
class GitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Sh(repo(),
       "git init -q -b main\n"
       "git config user.name test\n"
       "git config user.email test@example.com\n");
    Write(repo() / ".gitignore", "*.log\n");
    Write(repo() / "backend" / "manage.py", "print('backend')\n");
    Write(repo() / "frontend" / "index.js", "console.log('v1')\n");
    Commit("first");
    Sh(repo(), "git tag v1.0.0");
  }
  const fs::path& repo() const { return dir_.path(); }
  std::string Commit(const std::string& message) {
    Sh(repo(), "git add -A && git commit -q -m '" + message + "'");
    return Sh(repo(), "git rev-parse HEAD");
  }
  ResolvedVersion Resolve(const std::string& folder, const std::string& ref) {
    auto r = ResolveVersion(repo(), folder, ref);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : ResolvedVersion{};
  }

  TempDir dir_;
};

TEST_F(GitTest, TagBranchAndCommitResolveToCommitAndFolderTree) {
  std::string first = Sh(repo(), "git rev-parse HEAD");
  Sh(repo(), "git branch feature");
  Write(repo() / "backend" / "manage.py", "print('backend 2')\n");
  std::string second = Commit("second");

  ResolvedVersion tag = Resolve("backend", "v1.0.0");
  EXPECT_EQ(tag.ref, "v1.0.0");
  EXPECT_EQ(tag.folder, "backend");
  EXPECT_EQ(tag.commit, first);
  EXPECT_EQ(tag.tree, Sh(repo(), "git rev-parse " + first + ":backend"));
  EXPECT_FALSE(tag.is_worktree());

  EXPECT_EQ(Resolve("backend", "feature").commit, first);
  EXPECT_EQ(Resolve("backend", "main").commit, second);
  EXPECT_EQ(Resolve("backend", "HEAD~1").commit, first);
  EXPECT_EQ(Resolve("backend", second).commit, second);
  EXPECT_EQ(Resolve("backend", second.substr(0, 10)).commit, second);
  EXPECT_NE(Resolve("backend", second).tree, tag.tree);
  // The whole repository as an image.
  EXPECT_EQ(Resolve(".", "v1.0.0").tree, Sh(repo(), "git rev-parse " + first + "^{tree}"));
  EXPECT_EQ(Resolve("backend/", "v1.0.0").tree, tag.tree);
}

TEST_F(GitTest, FrontendOnlyCommitLeavesBackendTreeEqual) {
  ResolvedVersion backend1 = Resolve("backend", "HEAD");
  ResolvedVersion frontend1 = Resolve("frontend", "HEAD");
  Write(repo() / "frontend" / "index.js", "console.log('v2')\n");
  Commit("frontend only");
  ResolvedVersion backend2 = Resolve("backend", "HEAD");
  ResolvedVersion frontend2 = Resolve("frontend", "HEAD");
  EXPECT_NE(backend1.commit, backend2.commit);
  EXPECT_EQ(backend1.tree, backend2.tree);
  EXPECT_NE(frontend1.tree, frontend2.tree);
}

TEST_F(GitTest, WorktreeKeyFollowsEditsAndUntrackedFilesButNotIgnoredOnes) {
  ResolvedVersion clean = Resolve("backend", "@worktree");
  EXPECT_TRUE(clean.is_worktree());
  EXPECT_TRUE(clean.tree.starts_with("wt-"));
  EXPECT_EQ(clean.tree.size(), 3u + 16u);
  EXPECT_EQ(clean.commit, Sh(repo(), "git rev-parse HEAD"));
  EXPECT_FALSE(clean.dirty);
  EXPECT_EQ(Resolve("backend", "@worktree").tree, clean.tree);  // stable

  Write(repo() / "backend" / "debug.log", "ignored\n");
  ResolvedVersion ignored = Resolve("backend", "@worktree");
  EXPECT_EQ(ignored.tree, clean.tree);
  EXPECT_FALSE(ignored.dirty);

  Write(repo() / "backend" / "manage.py", "print('edited')\n");
  ResolvedVersion edited = Resolve("backend", "@worktree");
  EXPECT_NE(edited.tree, clean.tree);
  EXPECT_TRUE(edited.dirty);

  Write(repo() / "backend" / "manage.py", "print('backend')\n");
  EXPECT_EQ(Resolve("backend", "@worktree").tree, clean.tree);
  Write(repo() / "backend" / "new_module.py", "x = 1\n");
  ResolvedVersion untracked = Resolve("backend", "@worktree");
  EXPECT_NE(untracked.tree, clean.tree);
  EXPECT_TRUE(untracked.dirty);
  fs::remove(repo() / "backend" / "new_module.py");

  // An executable bit is content too; another folder's edit is not.
  chmod((repo() / "backend" / "manage.py").c_str(), 0755);
  EXPECT_NE(Resolve("backend", "@worktree").tree, clean.tree);
  chmod((repo() / "backend" / "manage.py").c_str(), 0644);
  Write(repo() / "frontend" / "index.js", "console.log('edited')\n");
  ResolvedVersion other = Resolve("backend", "@worktree");
  EXPECT_EQ(other.tree, clean.tree);
  EXPECT_FALSE(other.dirty);
}

TEST_F(GitTest, MissingRefIsNotFoundNamingRefImageAndRepository) {
  auto r = ResolveVersion(repo() / "backend", "backend", "v9.9.9", "api");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(r.error().message(),
            "version 'v9.9.9' of image 'api': no such ref in " + repo().string());
}

TEST_F(GitTest, MissingFolderIsAnErrorNamingIt) {
  std::string first = Sh(repo(), "git rev-parse HEAD");
  Write(repo() / "worker" / "tasks.py", "pass\n");
  Commit("add worker");
  EXPECT_TRUE(ResolveVersion(repo(), "worker", "HEAD").ok());

  auto r = ResolveVersion(repo(), "worker", "v1.0.0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(r.error().message().find("folder 'worker' does not exist at commit " + first),
            std::string::npos)
      << r.error().message();

  auto wt = ResolveVersion(repo(), "nowhere", "@worktree");
  ASSERT_FALSE(wt.ok());
  EXPECT_NE(wt.error().message().find("'nowhere'"), std::string::npos) << wt.error().message();

  auto file = ResolveVersion(repo(), "backend/manage.py", "HEAD");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.error().message().find("not a folder"), std::string::npos);

  // A folder whose name has a space (git answers about it on one line with others).
  Write(repo() / "my app" / "main.py", "pass\n");
  Commit("add my app");
  auto spaced = ResolveVersion(repo(), "my app", "HEAD");
  ASSERT_TRUE(spaced.ok()) << spaced.error().message();
  EXPECT_EQ(spaced->tree, Sh(repo(), "git rev-parse 'HEAD:my app'"));
  auto spaced_missing = ResolveVersion(repo(), "my app", "v1.0.0");
  ASSERT_FALSE(spaced_missing.ok());
  EXPECT_EQ(spaced_missing.error().kind(), ErrorKind::kNotFound);
}

TEST_F(GitTest, RefusesOptionLikeRefsAndFoldersOutsideTheRepository) {
  auto option = ResolveVersion(repo(), "backend", "--output=/tmp/x");
  ASSERT_FALSE(option.ok());
  EXPECT_EQ(option.error().kind(), ErrorKind::kBadInput);
  auto escape = ResolveVersion(repo(), "../elsewhere", "HEAD");
  ASSERT_FALSE(escape.ok());
  EXPECT_EQ(escape.error().kind(), ErrorKind::kBadInput);
  auto absolute = ResolveVersion(repo(), "/etc", "HEAD");
  ASSERT_FALSE(absolute.ok());
  EXPECT_EQ(absolute.error().kind(), ErrorKind::kBadInput);
}

TEST(GitRepoTest, NotARepositoryIsAClearError) {
  TempDir dir;
  auto r = ResolveVersion(dir.path(), "backend", "v1.0.0", "backend");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find(dir.path().string() + " is not inside a git repository"),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(RepoRoot(dir.path() / "missing").error().kind(), ErrorKind::kNotFound);

  // Something named .git that is no repository is not taken for one.
  fs::create_directories(dir.path() / ".git");
  std::ofstream(dir.path() / ".git" / "config") << "[core]\n";
  auto fake = RepoRoot(dir.path());
  ASSERT_FALSE(fake.ok());
  EXPECT_EQ(fake.error().kind(), ErrorKind::kBadInput) << fake.error().message();
}

TEST_F(GitTest, RepoRootFromASubfolder) {
  auto root = RepoRoot(repo() / "backend");
  ASSERT_TRUE(root.ok()) << root.error().message();
  EXPECT_EQ(*root, repo());
}

TEST_F(GitTest, FetchIfRemoteIsANoOpWithoutOriginAndFetchesTagsWithIt) {
  EXPECT_TRUE(FetchIfRemote(repo()).ok());

  TempDir clone_parent;
  fs::path clone = clone_parent.path() / "clone";
  Sh(clone_parent.path(), "git clone -q '" + repo().string() + "' clone");
  Write(repo() / "backend" / "manage.py", "print('v2')\n");
  std::string second = Commit("second");
  Sh(repo(), "git tag v2.0.0 && git checkout -q -b feature-x");

  EXPECT_EQ(ResolveVersion(clone, "backend", "v2.0.0").error().kind(), ErrorKind::kNotFound);
  Status fetched = FetchIfRemote(clone);
  ASSERT_TRUE(fetched.ok()) << fetched.error().message();
  auto tag = ResolveVersion(clone, "backend", "v2.0.0");
  ASSERT_TRUE(tag.ok()) << tag.error().message();
  EXPECT_EQ(tag->commit, second);
  // A branch only the remote has resolves through origin/<branch>.
  auto branch = ResolveVersion(clone, "backend", "feature-x");
  ASSERT_TRUE(branch.ok()) << branch.error().message();
  EXPECT_EQ(branch->commit, second);
}

TEST_F(GitTest, ExportTreeWritesTheFolderContent) {
  ResolvedVersion v = Resolve("backend", "v1.0.0");
  TempDir out;
  Status s = ExportTree(repo(), v.tree, out.path());
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_TRUE(fs::exists(out.path() / "manage.py"));
  EXPECT_FALSE(fs::exists(out.path() / "index.js"));
  EXPECT_FALSE(ExportTree(repo(), "0123456789abcdef0123456789abcdef01234567", out.path()).ok());
}

TEST_F(GitTest, HashWorktreeCopiesExactlyWhatItHashes) {
  Write(repo() / "backend" / "sub" / "new.py", "y = 2\n");
  Write(repo() / "backend" / "skip.log", "ignored\n");
  chmod((repo() / "backend" / "manage.py").c_str(), 0755);
  fs::create_symlink("manage.py", repo() / "backend" / "link.py");
  TempDir out;
  auto key = HashWorktree(repo(), "backend", out.path());
  ASSERT_TRUE(key.ok()) << key.error().message();
  EXPECT_EQ(*key, Resolve("backend", "@worktree").tree);
  EXPECT_TRUE(fs::exists(out.path() / "sub" / "new.py"));
  EXPECT_FALSE(fs::exists(out.path() / "skip.log"));
  EXPECT_TRUE(fs::is_symlink(out.path() / "link.py"));
  EXPECT_NE(fs::status(out.path() / "manage.py").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  auto again = HashWorktree(out.path(), ".");
  EXPECT_FALSE(again.ok());  // not a repository
}

}  // namespace
}  // namespace adhoc::git
