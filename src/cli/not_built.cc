// Commands whose engine has not landed yet say so clearly (exit 1) instead of pretending.
#include "cli/commands.h"

namespace adhoc::cli {
namespace {

int NotBuilt(const Args& args, const Output& out, const char* what) {
  return out.Fail(Failed(std::string("`adhoc ") + args.command + "` needs " + what +
                         ", which is not built yet"));
}

}  // namespace

int RunSnapshot(const Args& a, const Output& o) { return NotBuilt(a, o, "data snapshots"); }
int RunReset(const Args& a, const Output& o) { return NotBuilt(a, o, "data snapshots"); }
// `--target aws` deploys through the `aws` client (cmd_cloud.cc); without it the control
// plane rolls the environment on this machine.
int RunDeploy(const Args& a, const Output& o) {
  if (a.target == "aws") return RunDeployAws(a, o);
  return RunDeployLocal(a, o);
}

}  // namespace adhoc::cli
