// Health checks (DESIGN "Health"): an HTTP probe, a command probe, and HealthTracker, the
// state machine that decides when a task is healthy, unhealthy or failed to start.
//
// Probes block for at most their timeout and are safe to run from several threads at once
// (HttpProber and CommandProber hold only their settings). HealthTracker is not
// thread-safe: the control plane's loop owns one per task.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "runtime/clock.h"

namespace adhoc::runtime {

// Which HTTP statuses count as healthy: "200-399", "200,204", "200-299,304".
class StatusMatcher {
 public:
  static Result<StatusMatcher> Parse(const std::string& text);
  bool Matches(int status) const;

 private:
  std::vector<std::pair<int, int>> ranges_;
};

struct ProbeResult {
  bool healthy = false;
  std::string detail;  // "HTTP 200", "connect 127.1.2.10:8000: Connection refused", ...
};

class Prober {
 public:
  virtual ~Prober() = default;
  virtual ProbeResult Probe(std::chrono::milliseconds timeout) = 0;
};

// GET <path> over HTTP/1.1 with `Host: <host_header>` and `Connection: close`, through a
// plain blocking socket; healthy when the status matches.
class HttpProber : public Prober {
 public:
  HttpProber(std::string address, int port, std::string host_header, std::string path,
             StatusMatcher matcher)
      : address_(std::move(address)),
        port_(port),
        host_header_(std::move(host_header)),
        path_(std::move(path)),
        matcher_(std::move(matcher)) {}
  ProbeResult Probe(std::chrono::milliseconds timeout) override;

 private:
  std::string address_;
  int port_;
  std::string host_header_;
  std::string path_;
  StatusMatcher matcher_;
};

// `/bin/sh -c <command>` with the task's environment and folder; exit 0 is healthy.
class CommandProber : public Prober {
 public:
  CommandProber(std::string command, std::map<std::string, std::string> env,
                std::filesystem::path working_folder)
      : command_(std::move(command)), env_(std::move(env)), cwd_(std::move(working_folder)) {}
  ProbeResult Probe(std::chrono::milliseconds timeout) override;

 private:
  std::string command_;
  std::map<std::string, std::string> env_;
  std::filesystem::path cwd_;
};

// Defaults as the seed's ALB target groups.
struct HealthSettings {
  // Probing while starting: often, since the first success is when routes go live.
  std::chrono::milliseconds start_interval{25};
  std::chrono::milliseconds start_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds interval{std::chrono::seconds(7)};
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};
  int healthy_threshold = 2;    // successes in a row to become healthy again
  int unhealthy_threshold = 3;  // failures in a row to become unhealthy
};

class HealthTracker {
 public:
  enum class State {
    kStarting,  // probing every start_interval until the first success
    kHealthy,
    kUnhealthy,
    kStartFailed,  // no success within start_timeout: the start failed (final)
  };

  // Starting from now.
  HealthTracker(HealthSettings settings, const Clock& clock);

  // Probes when a probe is due, and moves the state on. Returns the state.
  State Tick(Prober& prober);
  // The same decisions for a probe result obtained elsewhere (always counted).
  State Record(const ProbeResult& result);
  // Whether Tick() would probe now.
  bool Due() const;

  State state() const { return state_; }
  const std::string& last_detail() const { return last_detail_; }

 private:
  State CheckStartTimeout();

  HealthSettings settings_;
  const Clock& clock_;
  Clock::TimePoint started_;
  Clock::TimePoint next_probe_;
  State state_ = State::kStarting;
  int successes_ = 0;
  int failures_ = 0;
  std::string last_detail_;
};

const char* ToString(HealthTracker::State state);

}  // namespace adhoc::runtime
