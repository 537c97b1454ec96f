// Commands whose engine has not landed yet would say so here (exit 1) instead of pretending;
// today every command of the table is built.
#include "cli/commands.h"

namespace adhoc::cli {

// `--target aws` deploys through the `aws` client (cmd_cloud.cc); without it the control
// plane rolls the environment on this machine.
int RunDeploy(const Args& a, const Output& o) {
  if (a.target == "aws") return RunDeployAws(a, o);
  return RunDeployLocal(a, o);
}

}  // namespace adhoc::cli
