// The adhoc command line. Every subcommand is one row of kCommands: its name, what it does, the
// options it takes and the function that runs it (cli/commands.h).
#include <CLI/CLI.hpp>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "common/paths.h"
#include "router/router_command.h"
#include "runtime/shim.h"
#include "server/keeper.h"
#include "server/launcher.h"

namespace {

using adhoc::cli::Args;
using adhoc::cli::Output;

void EnvArg(CLI::App* c, Args& a) { c->add_option("ENV", a.env, "environment name")->required(); }
void NoWait(CLI::App* c, Args& a) {
  c->add_flag("--no-wait", a.no_wait,
              "fail at once when another operation on ENV runs (default: wait for it)");
}

struct Command {
  const char* name;
  const char* summary;
  void (*define)(CLI::App*, Args&);
  int (*run)(const Args&, const Output&);
};

const Command kCommands[] = {
    {"init", "write an adhoc.toml for the app in this folder (detects Django)",
     [](CLI::App* c, Args& a) {
       c->add_flag("--force", a.force, "overwrite an existing adhoc.toml");
     },
     adhoc::cli::RunInit},
    {"validate", "check adhoc.toml and envs/*.toml", [](CLI::App*, Args&) {},
     adhoc::cli::RunValidate},
    {"new", "write envs/ENV.toml",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       c->add_option("--version", a.versions, "IMAGE=REF (a git ref, or @worktree)");
       c->add_option("--owner", a.owner, "who owns it (default: $USER)");
       c->add_option("--ttl", a.ttl,
                     "destroyed this long after its last request (default 3d; \"never\": kept)");
       c->add_flag("--force", a.force, "overwrite an existing file");
     },
     adhoc::cli::RunNew},
    {"plan", "show what `up` would create, change or remove, and why", EnvArg, adhoc::cli::RunPlan},
    {"up", "create or update ENV from envs/ENV.toml; prints its URL",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       NoWait(c, a);
     },
     adhoc::cli::RunUp},
    {"deploy", "roll ENV to new versions: IMAGE=REF ...",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       c->add_option("VERSIONS", a.versions, "IMAGE=REF")->required();
       c->add_flag("--write", a.write, "also write the versions into envs/ENV.toml");
       NoWait(c, a);
       c->add_option("--target", a.target, "aws: deploy to the environment's ECS stack")
           ->check(CLI::IsMember({"aws"}));
     },
     adhoc::cli::RunDeploy},
    {"run", "run a task of ENV (or -- CMD...) and exit with its status",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       c->add_option("TASK", a.name, "a task of adhoc.toml (or a command after --)");
     },
     adhoc::cli::RunRun},
    {"exec", "an interactive process with a service's environment (default: a shell)",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       c->add_option("SERVICE", a.name, "the service (a command may follow --)")->required();
     },
     adhoc::cli::RunExec},
    {"logs", "logs of ENV's services and tasks, timestamped",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       c->add_option("PROCESS", a.name, "a service or task (default: all)");
       c->add_flag("-f,--follow", a.follow, "keep printing new lines");
       c->add_option("--since", a.since, "only lines newer than this (10m, 2h)");
       c->add_option("--tail", a.tail, "lines of each log to start with (default 100)");
     },
     adhoc::cli::RunLogs},
    {"ls", "every environment: status, URL, versions, owner, age, time left",
     [](CLI::App*, Args&) {}, adhoc::cli::RunLs},
    {"status", "services, tasks, health, restarts and the last operation of ENV", EnvArg,
     adhoc::cli::RunStatus},
    {"sleep", "stop ENV's processes, keeping its data",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       NoWait(c, a);
     },
     adhoc::cli::RunSleep},
    {"wake", "start a sleeping ENV again",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       NoWait(c, a);
     },
     adhoc::cli::RunWake},
    {"snapshot", "save ENV's database and Redis as snapshot NAME",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       c->add_option("NAME", a.name, "snapshot name")->required();
       NoWait(c, a);
     },
     adhoc::cli::RunSnapshot},
    {"snapshots", "list snapshots with their sizes; `snapshots rm NAME` removes one",
     [](CLI::App* c, Args& a) {
       c->add_option("ACTION", a.target, "rm")->check(CLI::IsMember({"rm"}));
       c->add_option("NAME", a.name, "the snapshot to remove");
     },
     adhoc::cli::RunSnapshots},
    {"reset", "return ENV's database and Redis to its start data",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       NoWait(c, a);
     },
     adhoc::cli::RunReset},
    {"destroy", "stop everything of ENV and remove its database, routes and folders",
     [](CLI::App* c, Args& a) {
       EnvArg(c, a);
       NoWait(c, a);
     },
     adhoc::cli::RunDestroy},
    {"dashboard", "the dashboard's URL, a sign-in link for a browser, and the API's token",
     [](CLI::App*, Args&) {}, adhoc::cli::RunDashboard},
    {"gc", "destroy what is past its TTL and anything no environment owns",
     [](CLI::App* c, Args& a) { c->add_flag("--dry-run", a.dry_run, "only say what would go"); },
     adhoc::cli::RunGc},
    {"base", "the shared base: up, down or destroy",
     [](CLI::App* c, Args& a) {
       c->add_option("ACTION", a.target, "up | down | destroy")
           ->required()
           ->check(CLI::IsMember({"up", "down", "destroy"}));
     },
     adhoc::cli::RunBase},
    {"serve", "run the control plane (started on demand by the other commands)",
     [](CLI::App* c, Args& a) {
       c->add_flag("--foreground", a.foreground,
                   "the default: stays attached (for systemd); other commands start it detached");
     },
     adhoc::cli::RunServe},
    {"render", "the project as Terraform for AWS ECS, or as Kubernetes manifests",
     [](CLI::App* c, Args& a) {
       c->add_option("TARGET", a.target, "aws | kubernetes")
           ->required()
           ->check(CLI::IsMember({"aws", "kubernetes"}));
       c->add_option("ENV", a.env, "one environment (default: the base and every env file)");
       c->add_option("-o,--output", a.out_dir, "output folder")->required();
     },
     adhoc::cli::RunRender},
    {"ci", "GitHub Actions workflows for the project",
     [](CLI::App* c, Args& a) {
       c->add_option("TARGET", a.target, "github")->required()->check(CLI::IsMember({"github"}));
       c->add_option("-o,--output", a.out_dir, "output folder")->required();
     },
     adhoc::cli::RunCi},
    {"doctor", "what this machine has and lacks", [](CLI::App*, Args&) {}, adhoc::cli::RunDoctor},
    {"version", "print adhoc's version", [](CLI::App*, Args&) {}, adhoc::cli::RunVersion},
};

}  // namespace

int main(int argc, char** argv) {
  // Internal entry points, not commands a user types.
  if (argc > 1 && std::strcmp(argv[1], "__shim") == 0)
    return adhoc::runtime::ShimMain(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "router") == 0)
    return adhoc::router::RouterMain(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "__keeper") == 0)
    return adhoc::server::KeeperMain(adhoc::paths::HomeDir(), adhoc::server::SelfBinary());

  Args args;
  bool json = false;
  CLI::App app{"adhoc: short-lived copies of your web application, in seconds", "adhoc"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_flag("--json", json, "print one JSON document instead of text");
  app.add_option("-C,--project", args.project, "the app's repository (default: this folder)");
  app.footer("Exit status: 0 done, 1 the operation failed, 2 bad usage or a bad file.");
  const Command* chosen = nullptr;
  for (const Command& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    sub->fallthrough();
    sub->positionals_at_end(false);
    c.define(sub, args);
    sub->callback([&chosen, &c, &args] {
      chosen = &c;
      args.command = c.name;
    });
  }
  // Words after `--` are a command for run/exec, never options or positionals of adhoc.
  int parsed_argc = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      parsed_argc = i;
      for (int j = i + 1; j < argc; ++j) args.rest.push_back(argv[j]);
      break;
    }
  try {
    app.parse(parsed_argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    Output out(json);
    std::string what = e.what();
    if (what.empty()) what = "bad usage";
    std::string help = "adhoc --help";
    for (int i = 1; i < argc; ++i)
      for (const Command& c : kCommands)
        if (help == "adhoc --help" && std::strcmp(argv[i], c.name) == 0)
          help = std::string("adhoc ") + c.name + " --help";
    return out.Fail(adhoc::BadInput(what + " (see `" + help + "`)"));
  }
  Output out(json);
  return chosen->run(args, out);
}
