#include "common/git.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "common/exec.h"

namespace adhoc::git {
namespace {

namespace fs = std::filesystem;

constexpr auto kGitTimeout = std::chrono::minutes(2);
constexpr auto kFetchTimeout = std::chrono::minutes(5);
constexpr auto kExportTimeout = std::chrono::minutes(10);

std::map<std::string, std::string> GitEnvironment() {
  std::map<std::string, std::string> env{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"LC_ALL", "C"},
      {"GIT_TERMINAL_PROMPT", "0"},
  };
  // HOME keeps the user's git configuration (safe.directory, credentials); the ssh
  // agent lets a fetch authenticate. Nothing else of the caller's leaks in.
  for (const char* name : {"HOME", "SSH_AUTH_SOCK"})
    if (const char* v = std::getenv(name); v && *v) env[name] = v;
  return env;
}

// Runs `git --literal-pathspecs -C repo args...` with `input` on its stdin; a non-zero exit is
// for the caller to judge.
Result<ExecResult> Git(const fs::path& repo, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = kGitTimeout,
                       const std::string& input = "") {
  std::vector<std::string> argv{"git", "--literal-pathspecs", "-C", repo.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  ADHOC_ASSIGN_OR_RETURN(
      ExecResult r, Exec(argv, {.env = GitEnvironment(), .timeout = timeout, .stdin_data = input}));
  if (r.timed_out) return Failed("git " + (args.empty() ? "" : args[0]) + " timed out");
  return r;
}

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// "backend/", "./backend", "." -> "backend", "backend", "". Refuses what leaves the repo.
Result<std::string> NormalizeFolder(const std::string& folder) {
  fs::path p = fs::path(folder).lexically_normal();
  if (p.is_absolute()) return BadInput("image folder '" + folder + "' must be relative");
  std::string s = p.generic_string();
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (s == ".") s.clear();
  for (const auto& part : fs::path(s))
    if (part == "..") return BadInput("image folder '" + folder + "' leaves the repository");
  return s;
}

// Looks up `name` as a commit; nullopt when git does not know it.
Result<std::optional<std::string>> LookupCommit(const fs::path& root, const std::string& name) {
  ADHOC_ASSIGN_OR_RETURN(ExecResult r,
                         Git(root, {"rev-parse", "--verify", "--quiet", name + "^{commit}"}));
  if (r.exit_code != 0) return std::optional<std::string>();
  return std::optional<std::string>(TrimNewlines(r.output));
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void Update(std::string_view data) { EVP_DigestUpdate(ctx_.get(), data.data(), data.size()); }
  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &len);
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex += kHex[digest[i] >> 4];
      hex += kHex[digest[i] & 0xf];
    }
    return hex;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

Result<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Failed("reading " + path.string() + ": " + std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return Failed("reading " + path.string());
  return content.str();
}

Status WriteWholeFile(const fs::path& path, const std::string& content, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Failed("creating " + path.parent_path().string() + ": " + ec.message());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) return Failed("writing " + path.string());
  }
  if (chmod(path.c_str(), mode) != 0)
    return Failed("chmod " + path.string() + ": " + std::strerror(errno));
  return OkStatus();
}

}  // namespace

Result<fs::path> RepoRoot(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("folder " + dir.string() + " does not exist");
  // The usual case (a repository's own top folder) without a git process: one costs 10-20 ms,
  // and every `up` asks for each image.
  if (fs::exists(dir / ".git" / "HEAD", ec))
    if (fs::path top = fs::canonical(dir, ec); !ec) return top;
  ADHOC_ASSIGN_OR_RETURN(ExecResult r, Git(dir, {"rev-parse", "--show-toplevel"}));
  if (r.exit_code != 0) {
    std::string why = LastLines(r.output, 1);
    return BadInput(dir.string() + " is not inside a git repository" +
                    (why.empty() ? "" : " (" + why + ")"));
  }
  return fs::path(TrimNewlines(r.output));
}

Result<ResolvedVersion> ResolveVersion(const fs::path& repo_dir, const std::string& image_folder,
                                       const std::string& ref, const std::string& image_name) {
  const std::string what =
      "version '" + ref + "' of image '" + (image_name.empty() ? image_folder : image_name) + "'";
  auto root = RepoRoot(repo_dir);
  if (!root.ok()) return std::move(root).error().context(what);
  auto folder = NormalizeFolder(image_folder);
  if (!folder.ok()) return std::move(folder).error().context(what);

  ResolvedVersion v{.ref = ref, .folder = *folder};
  if (ref == kWorktreeVersion) {
    auto head = LookupCommit(*root, "HEAD");
    if (!head.ok()) return std::move(head).error().context(what);
    v.commit = head->value_or("");
    std::error_code ec;
    if (!fs::is_directory(*root / v.folder, ec))
      return NotFound(what + ": folder '" + v.folder + "' does not exist in the working tree " +
                      root->string());
    auto key = HashWorktree(*root, v.folder);
    if (!key.ok()) return std::move(key).error().context(what);
    v.tree = *key;
    auto status = Git(*root, {"status", "--porcelain", "--untracked-files=all", "--",
                              v.folder.empty() ? "." : v.folder});
    if (!status.ok()) return std::move(status).error().context(what);
    if (status->exit_code != 0)
      return Failed(what + ": git status failed: " + LastLines(status->output, 3));
    v.dirty = !status->output.empty();
    return v;
  }

  if (ref.empty() || ref.starts_with("-") || ref.find_first_of(" \t\n\r") != std::string::npos)
    return BadInput(what + ": not a valid git ref");
  // One git process answers all four questions: the ref's commit and its folder, and the same
  // for the remote's branch of that name. Each answer is "<id> <type> <size>" or "... missing".
  std::string input;
  for (const std::string& name : {ref, "refs/remotes/origin/" + ref}) {
    input += name + "^{commit}\n";
    input += v.folder.empty() ? name + "^{tree}\n" : name + "^{commit}:" + v.folder + "\n";
  }
  auto batch = Git(*root, {"cat-file", "--batch-check"}, kGitTimeout, input);
  if (!batch.ok()) return std::move(batch).error().context(what);
  if (batch->exit_code != 0)
    return Failed(what + ": git cat-file failed: " + LastLines(batch->output, 3));
  struct Answer {
    std::string id, type;
  };
  std::vector<Answer> answers;
  std::istringstream lines(batch->output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    Answer a;
    words >> a.id >> a.type;
    answers.push_back(a);
  }
  if (answers.size() != 4)
    return Failed(what + ": unexpected answer from git cat-file: " + LastLines(batch->output, 3));
  size_t at = answers[0].type == "commit" ? 0 : answers[2].type == "commit" ? 2 : 4;
  if (at == 4) return NotFound(what + ": no such ref in " + root->string());
  v.commit = answers[at].id;
  const Answer& tree = answers[at + 1];
  if (tree.id.size() != v.commit.size() ||
      tree.id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return NotFound(what + ": folder '" + v.folder + "' does not exist at commit " + v.commit);
  if (tree.type != "tree")
    return BadInput(what + ": '" + v.folder + "' is a file at commit " + v.commit +
                    ", not a folder");
  v.tree = tree.id;
  return v;
}

Status FetchIfRemote(const fs::path& repo_dir) {
  ADHOC_ASSIGN_OR_RETURN(ExecResult remotes, Git(repo_dir, {"remote"}));
  if (remotes.exit_code != 0)
    return BadInput(repo_dir.string() +
                    " is not a git repository: " + LastLines(remotes.output, 1));
  std::istringstream lines(remotes.output);
  bool has_origin = false;
  for (std::string line; std::getline(lines, line);) has_origin |= (line == "origin");
  if (!has_origin) return OkStatus();
  ADHOC_ASSIGN_OR_RETURN(ExecResult r,
                         Git(repo_dir, {"fetch", "--tags", "--quiet", "origin"}, kFetchTimeout));
  if (r.exit_code != 0)
    return Failed("fetching origin in " + repo_dir.string() + ": git fetch exited with status " +
                  std::to_string(r.exit_code) + ":\n" + LastLines(r.output, 5));
  return OkStatus();
}

Status ExportTree(const fs::path& repo_dir, const std::string& tree, const fs::path& dest) {
  if (tree.empty() || tree.find_first_not_of("0123456789abcdef") != std::string::npos)
    return BadInput("exporting tree '" + tree + "': not a git object id");
  // bash for pipefail: a failing `git archive` must not look like an empty tree.
  ADHOC_ASSIGN_OR_RETURN(
      ExecResult r,
      Exec({"/bin/bash", "-o", "pipefail", "-c",
            "git -C \"$1\" archive --format=tar \"$2\" | tar -x --no-same-owner -C \"$3\"", "bash",
            repo_dir.string(), tree, dest.string()},
           {.env = GitEnvironment(), .timeout = kExportTimeout}));
  if (r.timed_out || r.exit_code != 0)
    return Failed("exporting tree " + tree + " of " + repo_dir.string() + " to " + dest.string() +
                  (r.timed_out ? ": timed out" : ": " + LastLines(r.output, 5)));
  return OkStatus();
}

Result<std::string> HashWorktree(const fs::path& repo_dir, const std::string& image_folder,
                                 const fs::path& copy_to) {
  ADHOC_ASSIGN_OR_RETURN(fs::path root, RepoRoot(repo_dir));
  ADHOC_ASSIGN_OR_RETURN(std::string folder, NormalizeFolder(image_folder));
  ADHOC_ASSIGN_OR_RETURN(ExecResult listing,
                         Git(root, {"ls-files", "-z", "--cached", "--others", "--exclude-standard",
                                    "--", folder.empty() ? "." : folder}));
  if (listing.exit_code != 0)
    return Failed("listing files of " + (root / folder).string() + ": " +
                  LastLines(listing.output, 3));

  // Paths relative to the image folder, sorted bytewise; a set also folds the
  // repeated entries of unmerged files.
  const std::string prefix = folder.empty() ? "" : folder + "/";
  std::set<std::string> files;
  std::string_view rest = listing.output;
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    std::string_view path = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (path.starts_with(prefix) && path.size() > prefix.size())
      files.emplace(path.substr(prefix.size()));
  }

  const fs::path base = root / folder;
  Sha256 hash;
  for (const std::string& rel : files) {
    const fs::path source = base / rel;
    struct stat st;
    if (lstat(source.c_str(), &st) != 0) continue;  // tracked but deleted: absent from the hash
    std::string mode;
    std::string content;
    if (S_ISLNK(st.st_mode)) {
      mode = "120000";
      std::error_code ec;
      content = fs::read_symlink(source, ec).string();
      if (ec) return Failed("reading link " + source.string() + ": " + ec.message());
    } else if (S_ISREG(st.st_mode)) {
      mode = (st.st_mode & 0111) ? "100755" : "100644";
      ADHOC_ASSIGN_OR_RETURN(content, ReadWholeFile(source));
    } else if (S_ISDIR(st.st_mode)) {
      mode = "160000";  // a submodule: only its presence counts
    } else {
      continue;
    }
    hash.Update(rel);
    hash.Update(std::string_view("\0", 1));
    hash.Update(mode);
    hash.Update(std::string_view("\0", 1));
    hash.Update(std::to_string(content.size()));
    hash.Update(std::string_view("\0", 1));
    hash.Update(content);

    if (copy_to.empty()) continue;
    const fs::path target = copy_to / rel;
    std::error_code ec;
    if (mode == "120000") {
      fs::create_directories(target.parent_path(), ec);
      if (!ec) fs::create_symlink(content, target, ec);
      if (ec) return Failed("copying link " + source.string() + ": " + ec.message());
    } else if (mode == "160000") {
      fs::create_directories(target, ec);
      if (ec) return Failed("creating " + target.string() + ": " + ec.message());
    } else {
      ADHOC_RETURN_IF_ERROR(WriteWholeFile(target, content, mode == "100755" ? 0755 : 0644));
    }
  }
  return std::string(kWorktreeTreePrefix) + hash.HexDigest().substr(0, 16);
}

}  // namespace adhoc::git
