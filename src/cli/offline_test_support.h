// Test helpers for the offline commands: a temporary folder, a real git repository in it,
// and running the real adhoc binary (ADHOC_BINARY) there with a home of the test's own.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/exec.h"

namespace adhoc::cli::testing {

namespace fs = std::filesystem;

// A unique temporary folder, removed when the test ends (also on failure).
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "adhoc-cli-XXXXXX").string();
    path_ = fs::canonical(mkdtemp(pattern.data()));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void WriteFile(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

inline std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs a shell script in `dir`; the test fails unless it exits 0. Returns its output,
// without the final newlines.
inline std::string Sh(const fs::path& dir, const std::string& script) {
  auto r = Exec({"/bin/sh", "-c", "set -e\n" + script}, {.cwd = dir});
  EXPECT_TRUE(r.ok()) << script;
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << script << "\n" << r->output;
  std::string out = r->output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// A git repository with a committer configured, on branch main.
inline void InitGitRepo(const fs::path& dir) {
  Sh(dir,
     "git init -q -b main\n"
     "git config user.name test\n"
     "git config user.email test@example.com\n");
}

// Commits everything and tags it (when `tag` is non-empty); returns the commit id.
inline std::string CommitAll(const fs::path& dir, const std::string& message,
                             const std::string& tag = "") {
  Sh(dir, "git add -A && git commit -q -m '" + message + "'");
  if (!tag.empty()) Sh(dir, "git tag " + tag);
  return Sh(dir, "git rev-parse HEAD");
}

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// The adhoc binary with `args`, in `cwd`, with a clean environment of PATH, HOME, USER
// and ADHOC_HOME=`home` (stdout and stderr kept apart).
// A free TCP port on loopback (bound, then released).
inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Ports of the test's own: a command that starts the control plane never touches the
// machine's defaults (8080, 5432).
inline const std::map<std::string, std::string>& TestPorts() {
  static const std::map<std::string, std::string> ports = {
      {"ADHOC_ROUTER_LISTEN", "127.0.0.1:" + std::to_string(FreeLoopbackPort())},
      {"ADHOC_POSTGRES_PORT", std::to_string(FreeLoopbackPort())}};
  return ports;
}

inline CliRun RunAdhoc(const fs::path& cwd, const fs::path& home,
                       const std::vector<std::string>& args) {
  TempDir streams;
  std::string command = "exec " + ShellQuote(ADHOC_BINARY);
  for (const std::string& a : args) command += " " + ShellQuote(a);
  command += " 2>" + ShellQuote((streams.path() / "stderr").string());
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", streams.path().string()},
      {"USER", "tester"},
      {"ADHOC_HOME", home.string()},
  };
  for (const auto& [k, v] : TestPorts()) env[k] = v;
  auto r = Exec({"/bin/sh", "-c", command}, {.cwd = cwd, .env = env});
  CliRun run;
  EXPECT_TRUE(r.ok()) << command;
  if (!r.ok()) return run;
  run.exit_code = r->exit_code;
  run.out = r->output;
  run.err = ReadFile(streams.path() / "stderr");
  return run;
}

// How many times `needle` occurs in `text`.
inline int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// For failure messages: `EXPECT_EQ(run.exit_code, 0) << run;`.
inline std::ostream& operator<<(std::ostream& os, const CliRun& run) {
  return os << "\n[exit " << run.exit_code << "]\n[stdout]\n" << run.out << "[stderr]\n" << run.err;
}

}  // namespace adhoc::cli::testing
