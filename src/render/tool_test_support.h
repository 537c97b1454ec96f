// Test helpers for the real tools the cloud targets are proven with: terraform (with the AWS
// provider from a local plugin mirror), moto_server (a local fake of the AWS APIs) and the
// `aws` client. Tests skip, naming the tool, where one is missing.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/exec.h"

namespace adhoc::render::testing {

// Whether `program` is on PATH.
inline bool OnPath(const std::string& program) {
  auto r = Exec({"/bin/sh", "-c", "command -v " + ShellQuote(program)});
  return r.ok() && r->exit_code == 0;
}

// The folder holding registry.terraform.io/hashicorp/aws: ADHOC_TF_PLUGIN_DIR, then the places
// these machines and Terraform's own conventions use. Empty when there is none.
inline std::filesystem::path TerraformPluginDir() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("ADHOC_TF_PLUGIN_DIR")) candidates.push_back(dir);
  candidates.push_back("/opt/tf-plugins");
  candidates.push_back("/usr/local/share/terraform/plugins");
  candidates.push_back("/usr/share/terraform/plugins");
  if (const char* home = std::getenv("HOME"))
    candidates.push_back(std::string(home) + "/.terraform.d/plugins");
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_directory(
            std::filesystem::path(c) / "registry.terraform.io" / "hashicorp" / "aws", ec))
      return c;
  }
  return {};
}

inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

inline bool Connects(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// moto_server on 127.0.0.1 and a free port, in a process group of its own, stopped (the
// whole group) when destroyed. IAM's managed policies are loaded; ECS services report their
// desired count as running.
class MotoServer {
 public:
  MotoServer() : port_(FreePort()) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true", 1);
      setenv("MOTO_ECS_SERVICE_RUNNING", "1", 1);
      std::string port = std::to_string(port_);
      execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port.c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);
    for (int i = 0; i < 300 && !Connects(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ready_ = Connects(port_);
  }
  ~MotoServer() {
    if (pid_ > 0) {
      kill(-pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
  }
  MotoServer(const MotoServer&) = delete;
  MotoServer& operator=(const MotoServer&) = delete;

  bool ready() const { return ready_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The environment for the `aws` client and terraform: this process's, with test credentials,
  // the region and AWS_ENDPOINT_URL pointing at this server.
  std::map<std::string, std::string> Env() const {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      size_t eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    env["AWS_ACCESS_KEY_ID"] = "test";
    env["AWS_SECRET_ACCESS_KEY"] = "test";
    env["AWS_DEFAULT_REGION"] = "us-east-1";
    env["AWS_REGION"] = "us-east-1";
    env["AWS_ENDPOINT_URL"] = url();
    env.erase("AWS_PROFILE");
    return env;
  }

 private:
  int port_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace adhoc::render::testing
