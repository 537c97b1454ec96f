#include "common/paths.h"

#include <unistd.h>

#include <cstdlib>

namespace adhoc::paths {

fs::path HomeDir() {
  if (const char* home = std::getenv("ADHOC_HOME"); home && *home) return home;
  if (geteuid() == 0) return "/var/lib/adhoc";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return fs::path(xdg) / "adhoc";
  const char* user_home = std::getenv("HOME");
  return fs::path(user_home && *user_home ? user_home : "/tmp") / ".local" / "share" / "adhoc";
}

}  // namespace adhoc::paths
