// Running a short helper command to completion (git, initdb, pg_ctl, a build step)
// and collecting its output. Not for tasks: those go through the runtime's shim.
//
// The child gets exactly the environment given (never the caller's, unless asked),
// stdin from /dev/null, stdout and stderr merged into one captured string (or
// appended to a log file). Blocking; safe to call from several threads at once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc {

struct ExecOptions {
  std::filesystem::path cwd;                                    // empty: the caller's
  std::optional<std::map<std::string, std::string>> env;        // nullopt: inherit the caller's
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // then SIGKILL to its group
  std::optional<uid_t> uid;  // run as this user (root only), with its gid
  std::optional<gid_t> gid;
  std::filesystem::path log_file;  // non-empty: append output here instead
  std::string stdin_data;          // written to the child's stdin
};

struct ExecResult {
  int exit_code = -1;      // the exit status, or 128+signal if killed by a signal
  bool timed_out = false;  // killed because it ran past the timeout
  std::string output;      // stdout+stderr (empty when log_file was given)
};

// Runs argv[0] (searched in PATH of the given env, else the caller's PATH) to completion.
// An error only when it could not be started (not found, not executable); a non-zero
// exit is a normal ExecResult for the caller to judge.
Result<ExecResult> Exec(const std::vector<std::string>& argv, const ExecOptions& options = {});

// Exec, then an error unless it exited 0; the error names the command and ends with
// the last lines of its output.
Result<std::string> ExecOk(const std::vector<std::string>& argv, const ExecOptions& options = {});

// The last `n` lines of `text` (for error messages).
std::string LastLines(const std::string& text, int n);

// Shell-style quoting of one word, for messages and for building `sh -c` strings.
std::string ShellQuote(const std::string& word);

}  // namespace adhoc
