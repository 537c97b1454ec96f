// The commands of the adhoc binary. Each is a function of the parsed arguments and the output
// mode that returns the process exit status; the table that names them is in adhoc_main.cc.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cli/output.h"

namespace adhoc::cli {

// Every option any command takes; each command reads the ones its row defines.
struct Args {
  std::string command;                  // the subcommand's name
  std::filesystem::path project = ".";  // -C: the app's repository (default: the current folder)
  std::string env;                      // ENV
  std::string name;                     // a second name (snapshot NAME, service, task)
  std::vector<std::string> versions;    // --version image=ref, or deploy's image=ref words
  std::vector<std::string> rest;        // words after `--`
  std::string owner;
  std::string ttl;
  std::string since;    // logs --since
  int tail = 100;       // logs --tail
  bool follow = false;  // logs -f
  bool dry_run = false;
  bool no_wait = false;  // up, deploy, destroy: refuse instead of waiting for a running one
  bool write = false;    // deploy --write: also set the env file's versions
  bool force = false;
  bool foreground = false;        // serve --foreground
  std::string target;             // render aws|kubernetes, ci github, base up|down|destroy,
                                  // deploy --target aws
  std::filesystem::path out_dir;  // -o DIR
  std::string listen;             // router --listen
  int threads = 0;                // router --threads
};

int RunInit(const Args& args, const Output& out);
int RunValidate(const Args& args, const Output& out);
int RunNew(const Args& args, const Output& out);
int RunPlan(const Args& args, const Output& out);
int RunUp(const Args& args, const Output& out);
int RunDeploy(const Args& args, const Output& out);
int RunDeployLocal(const Args& args, const Output& out);
int RunRun(const Args& args, const Output& out);
int RunExec(const Args& args, const Output& out);
int RunLogs(const Args& args, const Output& out);
int RunLs(const Args& args, const Output& out);
int RunStatus(const Args& args, const Output& out);
int RunSleep(const Args& args, const Output& out);
int RunWake(const Args& args, const Output& out);
int RunSnapshot(const Args& args, const Output& out);
int RunReset(const Args& args, const Output& out);
int RunSnapshots(const Args& args, const Output& out);
int RunDestroy(const Args& args, const Output& out);
int RunGc(const Args& args, const Output& out);
int RunDashboard(const Args& args, const Output& out);
int RunBase(const Args& args, const Output& out);
int RunServe(const Args& args, const Output& out);
int RunRender(const Args& args, const Output& out);
int RunCi(const Args& args, const Output& out);
// `adhoc deploy ENV IMAGE=REF... --target aws` (RunDeploy dispatches to it).
int RunDeployAws(const Args& args, const Output& out);
int RunDoctor(const Args& args, const Output& out);
int RunVersion(const Args& args, const Output& out);

}  // namespace adhoc::cli
