#include "cloud/command_runner.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/exec.h"

namespace adhoc::cloud {

namespace fs = std::filesystem;

Result<CommandResult> SystemRunner::Run(const std::vector<std::string>& argv) {
  if (argv.empty()) return BadInput("no command");
  std::string pattern = (fs::temp_directory_path() / "adhoc-cloud-XXXXXX").string();
  int fd = mkstemp(pattern.data());
  if (fd < 0) return Failed("cannot make a temporary file for " + argv[0] + "'s errors");
  close(fd);
  std::string script = "exec";
  for (const std::string& a : argv) script += " " + ShellQuote(a);
  script += " 2>" + ShellQuote(pattern);
  auto r = Exec({"/bin/sh", "-c", script}, {.timeout = timeout_});
  std::ifstream in(pattern, std::ios::binary);
  std::stringstream err;
  err << in.rdbuf();
  std::error_code ec;
  fs::remove(pattern, ec);
  if (!r.ok()) return r.error();
  if (r->exit_code == 127) return NotFound("`" + argv[0] + "` is not installed (not on PATH)");
  CommandResult out;
  out.exit_code = r->timed_out ? -1 : r->exit_code;
  out.out = r->output;
  out.err = r->timed_out ? "timed out" : err.str();
  return out;
}

void SystemRunner::Sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

}  // namespace adhoc::cloud
