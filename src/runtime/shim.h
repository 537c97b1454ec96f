// The task shim: the small `adhoc __shim <task-folder>` process that stays beside one
// task for its whole life, so the task survives its caller and its end is never lost.
//
// It reads <task-folder>/launch.json (written by the runtime), then:
//  - starts `/bin/sh -c <command>` in a process group of its own, with exactly the given
//    environment and working folder, stdin from /dev/null, inside its cgroups (the child
//    joins them before exec, so no instant runs unlimited);
//    Or, when the launch record names a fork server (warm_start.h) that runs the command:
//    asks it to fork the task, puts the child into the cgroups, then lets it run; its exit
//    status then comes from the server;
//  - writes shim.json (pid + start time of itself and the task) atomically;
//  - writes every output line (stdout and stderr through one pipe) to the log, stamped
//    and rotated (RotatingLogWriter);
//  - when the main process ends: reads what is left in the pipe for at most a short
//    grace period (children may hold it open), SIGKILLs what is left of the process
//    group (as a container runtime would), removes the cgroups and writes the `exit`
//    record atomically, after the last log line.
// Its own complaints go to its stderr, which the runtime points at <task-folder>/shim.log.
#pragma once

namespace adhoc::runtime {

// argv[0] is "__shim", argv[1] the task folder. Returns the shim's exit status:
// 0 when the task was run and its end recorded (whatever its status), 1 otherwise.
int ShimMain(int argc, char** argv);

}  // namespace adhoc::runtime
