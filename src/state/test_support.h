// Helpers shared by the state module's tests only (not part of the library API).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/test_support.h"

namespace adhoc::state::testing {

using adhoc::testutil::TempDir;

inline std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace adhoc::state::testing
