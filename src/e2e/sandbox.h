// A sandbox for end-to-end tests: a home of its own, free ports for the router and PostgreSQL,
// an application repository, and the real `adhoc` binary run as a user would run it. Cleans
// up everything it started (base down, then any process still tied to the home) and removes
// the home. Not thread-safe; one per test.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace adhoc::e2e {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
  bool timed_out = false;
};

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused, closed)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct HomeProcess {
  pid_t pid;
  std::string cmdline;
};

class Sandbox {
 public:
  explicit Sandbox(std::filesystem::path adhoc_binary);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // A git repository made from `source` (a folder copied and committed).
  void RepoFromFolder(const std::filesystem::path& source);
  // A repository made by a script (`script DEST`), e.g. examples/ublog/make-repo.sh.
  void RepoFromScript(const std::filesystem::path& script);

  // `adhoc ARGS...` in the repository, with this sandbox's home and ports.
  // `extra_env` is added to the command's environment (and so to a control plane it starts).
  CommandResult Adhoc(const std::vector<std::string>& args, int timeout_seconds = 300,
                      const std::map<std::string, std::string>& extra_env = {}) const;
  // `adhoc --json ARGS...`, parsed (null when the output is not JSON).
  nlohmann::json AdhocJson(const std::vector<std::string>& args) const;

  // One HTTP/1.1 request through the router with `Host: <env>.localhost`.
  HttpAnswer Http(const std::string& env, const std::string& method, const std::string& path,
                  const std::string& body = "",
                  const std::map<std::string, std::string>& headers = {}) const;
  // Repeats GET until `accept` says yes or `seconds` pass; returns the last answer.
  HttpAnswer WaitFor(const std::string& env, const std::string& path, int seconds,
                     const std::function<bool(const HttpAnswer&)>& accept) const;

  // Processes tied to the home (their command line, working folder or environment names it),
  // optionally only those mentioning `needle` too (e.g. "/envs/alpha/").
  std::vector<HomeProcess> HomeProcesses(const std::string& needle = "") const;
  // A SQL query on the base cluster as its superuser; rows of tab-separated values.
  std::vector<std::string> Sql(const std::string& query) const;
  // The pid in <home>/server.lock (the control plane), 0 if none.
  pid_t ControlPlanePid() const;

  // `adhoc --json ls` once a restarted control plane has finished its recovery (null when it
  // never does within a minute).
  nlohmann::json LsAfterRecovery() const;
  // What is left of `env` anywhere, one line each: its database, role, processes, routes,
  // folders, address block, state rows, ls entry. Empty when nothing is.
  std::vector<std::string> Leftovers(const std::string& env) const;
  // task id -> pid of every service task of `env`, from `adhoc status --json`.
  std::map<std::string, int> TaskPids(const std::string& env) const;

  const std::filesystem::path& home() const { return home_; }
  const std::filesystem::path& repo() const { return repo_; }
  int router_port() const { return router_port_; }

 private:
  std::map<std::string, std::string> Environment() const;

  std::filesystem::path binary_;
  std::filesystem::path root_;  // the temporary folder holding home and repo
  std::filesystem::path home_;
  std::filesystem::path repo_;
  int router_port_ = 0;
  int postgres_port_ = 0;
};

// A free TCP port on 127.0.0.1 (bound and released).
int FreePort();

}  // namespace adhoc::e2e
