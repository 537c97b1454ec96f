// Helpers for tests of every module (not part of any library's API).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/exec.h"

namespace adhoc::testutil {

// A unique temporary folder, removed with everything in it when destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "adhoc-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    // Canonical, so it compares equal to what git or /proc report for it.
    path_ = std::filesystem::canonical(mkdtemp(pattern.data()));
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The whole content of a file ("" when it cannot be read).
inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs a shell script (with `set -e`) in `dir`; the test fails unless it exits 0. Returns its
// output (stdout and stderr).
inline std::string Sh(const std::filesystem::path& dir, const std::string& script) {
  auto r = Exec({"/bin/sh", "-c", "set -e\n" + script}, {.cwd = dir});
  EXPECT_TRUE(r.ok()) << script;
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << script << "\n" << r->output;
  return r->output;
}

}  // namespace adhoc::testutil
