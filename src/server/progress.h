// Progress of a long operation: steps with timings and the log lines of the tasks it runs.
// The control plane reports through this interface; the API turns it into ndjson events
// (docs/api.md), tests collect it. Implementations must be safe to call from one operation
// thread at a time.
#pragma once

#include <cstdint>
#include <string>

namespace adhoc::server {

class Progress {
 public:
  virtual ~Progress() = default;
  // The journal entry of the operation (its id answers GET /v1/operations/{id}).
  virtual void OperationStarted(int64_t id, const std::string& env, const std::string& kind) {}
  virtual void StepStarted(const std::string& step) {}
  virtual void StepDone(const std::string& step, long long elapsed_ms, const std::string& detail) {}
  virtual void StepFailed(const std::string& step, long long elapsed_ms,
                          const std::string& message) {}
  virtual void Log(const std::string& process, const std::string& task, const std::string& line) {}
  virtual void Note(const std::string& message) {}
};

// Reports nothing.
class NoProgress : public Progress {};

}  // namespace adhoc::server
