// Running cloud command-line clients (`aws`), behind a narrow interface so the sequences that
// drive them are tested with a fake (FakeRunner in tests) and for real against moto.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::cloud {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // standard output (the JSON answer)
  std::string err;  // standard error (the client's message on failure)
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs argv to completion. An error only when it could not be started.
  virtual Result<CommandResult> Run(const std::vector<std::string>& argv) = 0;
  // Waits between two polls of a long operation (a fake returns at once).
  virtual void Sleep(std::chrono::milliseconds d) = 0;
};

// Runs commands with this process's environment (so AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION
// and the credential variables reach the `aws` client exactly as they would from a shell),
// standard input from /dev/null, and the two output streams kept apart. Thread-safe.
class SystemRunner : public CommandRunner {
 public:
  explicit SystemRunner(std::chrono::milliseconds timeout = std::chrono::minutes(5))
      : timeout_(timeout) {}
  Result<CommandResult> Run(const std::vector<std::string>& argv) override;
  void Sleep(std::chrono::milliseconds d) override;

 private:
  std::chrono::milliseconds timeout_;
};

}  // namespace adhoc::cloud
