#include "cli/commands.h"

namespace adhoc::cli {
#define PENDING(f)                                                       \
  int f(const Args& a, const Output& o) {                                \
    return o.Fail(Failed("`adhoc " + a.command + "` is not built yet")); \
  }
int RunVersion(const Args&, const Output& o) {
  if (o.json()) o.Document({{"version", "0.1.0"}});
  o.Line("adhoc 0.1.0");
  return 0;
}
}  // namespace adhoc::cli
