// Secrets no other local user can read: an environment is brought up, then its whole home is
// walked as another user (`nobody`, as a neighbour on a shared machine would be), trying to
// read every file, list every folder and connect to every socket. No file that user can read
// may hold the environment's database password, Redis password or secret key, and nothing but
// the release folders (which nginx's workers, also `nobody`, serve) may be listed. The paths
// are listed by root first, so a file is tried even where its folder cannot be listed: a
// layout documented in the README is no secret.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "common/exec.h"
#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Run as `nobody`: reads NUL-separated paths on stdin, the secrets from $SECRETS (a JSON
// list), and prints what it could read, list and connect to, and which secrets it saw where.
constexpr const char* kWalker = R"(
import json, os, socket, stat, sys
secrets = json.loads(os.environ["SECRETS"])
out = {"reachable": 0, "readable": [], "listed": [], "connected": [], "leaks": []}
for path in sys.stdin.read().split("\0"):
    if not path:
        continue
    try:
        st = os.lstat(path)
    except OSError:
        continue  # a folder above it is closed to this user
    out["reachable"] += 1
    if stat.S_ISDIR(st.st_mode):
        try:
            os.listdir(path)
            out["listed"].append(path)
        except OSError:
            pass
    elif stat.S_ISREG(st.st_mode):
        try:
            with open(path, "rb") as f:
                data = f.read(64 << 20)
        except OSError:
            continue
        out["readable"].append(path)
        for name, value in secrets.items():
            if value.encode() in data:
                out["leaks"].append(path + " holds " + name)
    elif stat.S_ISSOCK(st.st_mode):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            out["connected"].append(path)
        except OSError:
            pass
        finally:
            s.close()
print(json.dumps(out))
)";

std::string ReadWhole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The part of `url` between "://user:" (or "://:") and "@".
std::string PasswordOf(const std::string& url) {
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return "";
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return "";
  return url.substr(colon + 1, at - colon - 1);
}

class PermissionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromFolder(fs::path(ADHOC_SOURCE_DIR) / "src/e2e/testdata/miniapp");
    // An environment with a secret key of its own too, as μblog's SECRET_KEY.
    std::ofstream(box_.repo() / "envs/private.toml")
        << "owner = \"test\"\nttl = \"1d\"\n[versions]\nbackend = \"HEAD\"\nfrontend = \"HEAD\"\n"
           "[env]\nSECRET_KEY = \"{random.secret_key}\"\n";
  }

  // The environment's secrets as its api task got them (root reads its launch record).
  std::map<std::string, std::string> Secrets() {
    std::map<std::string, std::string> secrets;
    for (const auto& task : fs::directory_iterator(box_.home() / "envs/private/tasks")) {
      if (!task.path().filename().string().starts_with("api-")) continue;
      json launch = json::parse(ReadWhole(task.path() / "launch.json"), nullptr, false);
      if (!launch.is_object()) continue;
      const json& env = launch["env"];
      secrets["the database password"] = PasswordOf(env.value("DATABASE_URL", ""));
      secrets["the Redis password"] = PasswordOf(env.value("REDIS_URL", ""));
      secrets["SECRET_KEY"] = env.value("SECRET_KEY", "");
    }
    return secrets;
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(PermissionsTest, AnotherLocalUserReadsNoSecretOfTheHome) {
  CommandResult up = box_.Adhoc({"up", "private"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  // Its data saved too: a snapshot's dump and keys, and its start data, are walked as well.
  CommandResult snapshot = box_.Adhoc({"snapshot", "private", "saved"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;
  ASSERT_TRUE(fs::exists(box_.home() / "snapshots/saved/database.dump"));
  std::map<std::string, std::string> secrets = Secrets();
  ASSERT_EQ(secrets.size(), 3u) << "no api task found";
  for (const auto& [name, value] : secrets) ASSERT_GE(value.size(), 16u) << name << ": " << value;
  struct passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  ASSERT_EQ(geteuid(), 0u) << "walking the home as another user needs root";

  // Every path of the home, as root sees it; and where root finds each secret (so the
  // search would notice a leak: the secrets are on disk, only closed to others).
  std::string paths;
  std::set<std::string> found_by_root;
  int files = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(box_.home(), ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    paths += it->path().string() + '\0';
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    ++files;
    std::string content = ReadWhole(it->path());
    for (const auto& [name, value] : secrets)
      if (content.find(value) != std::string::npos) found_by_root.insert(name);
  }
  paths += box_.home().string() + '\0';
  EXPECT_EQ(found_by_root.size(), 3u) << "the secrets must be on disk for the walk to mean much";
  ASSERT_GT(files, 20);

  json secrets_json(secrets);
  ExecOptions as_nobody{.cwd = "/",
                        .env = std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"},
                                                                  {"LANG", "C.UTF-8"},
                                                                  {"SECRETS", secrets_json.dump()}},
                        .timeout = std::chrono::minutes(2),
                        .uid = nobody->pw_uid,
                        .gid = nobody->pw_gid,
                        .stdin_data = paths};
  auto walked = Exec({"/usr/bin/python3", "-c", kWalker}, as_nobody);
  ASSERT_TRUE(walked.ok()) << walked.error().message();
  ASSERT_EQ(walked->exit_code, 0) << walked->output;
  json seen = json::parse(walked->output, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << walked->output;

  EXPECT_TRUE(seen["leaks"].empty()) << "another user read secrets: " << seen["leaks"].dump(1);
  EXPECT_TRUE(seen["connected"].empty())
      << "another user connected to: " << seen["connected"].dump(1);
  // Only release folders may be listed and read (their code is served to anyone by nginx's
  // workers). The router's own folder is made by the router and the control plane, outside
  // this test's scope: its names and router.pid hold nothing secret (its log and the access
  // logs in it are 0600, access/ 0700).
  const std::string releases = (box_.home() / "releases").string() + "/";
  const std::set<std::string> router_folder = {(box_.home() / "router").string()};
  const std::set<std::string> router_pid = {(box_.home() / "router/router.pid").string()};
  for (const auto& listed : seen["listed"]) {
    std::string p = listed.get<std::string>();
    fs::path rel = fs::path(p).lexically_relative(box_.home() / "releases");
    bool in_a_release = p.starts_with(releases) && std::distance(rel.begin(), rel.end()) >= 2 &&
                        !rel.begin()->string().starts_with(".");
    EXPECT_TRUE(in_a_release || router_folder.count(p)) << "another user can list " << p;
  }
  for (const auto& readable : seen["readable"]) {
    std::string p = readable.get<std::string>();
    EXPECT_TRUE(p.starts_with(releases) || router_pid.count(p)) << "another user can read " << p;
  }
  EXPECT_GT(seen["reachable"].get<int>(), 0) << "the walk reached nothing at all";

  // And the environment still works for its users.
  EXPECT_EQ(box_.Http("private", "GET", "/api/items").status, 200);
  EXPECT_EQ(box_.Http("private", "GET", "/").status, 200);
}

}  // namespace
}  // namespace adhoc::e2e
