#include "server/router_link.h"

#include <fmt/format.h>

#include <thread>

#include "common/exec.h"
#include "common/paths.h"
#include "common/unix_socket.h"
#include "runtime/addresses.h"
#include "spec/task_env.h"

namespace adhoc::server {

namespace fs = std::filesystem;

RouterLink::RouterLink(fs::path home, runtime::Runtime& runtime, RouterOptions options)
    : home_(std::move(home)), runtime_(runtime), options_(std::move(options)) {}

bool RouterLink::Running() {
  std::lock_guard lock(mu_);
  if (!handle_) {
    // A router left running by an earlier control plane is adopted here too.
    auto adopted = runtime_.Adopt(paths::RouterDir(home_) / "task");
    if (adopted.ok()) handle_ = *adopted;
  }
  return handle_ && runtime_.Inspect(*handle_).kind == runtime::TaskState::kRunning;
}

Status RouterLink::EnsureRunning(bool* started) {
  std::unique_lock lock(mu_);
  if (started) *started = false;
  fs::path folder = paths::RouterDir(home_) / "task";
  if (!handle_) {
    auto adopted = runtime_.Adopt(folder);
    if (adopted.ok()) handle_ = *adopted;
  }
  if (handle_ && runtime_.Inspect(*handle_).kind == runtime::TaskState::kRunning) return OkStatus();
  // A fresh start: the old folder only holds an ended router's records.
  std::error_code ec;
  fs::remove_all(folder, ec);
  // Not create_directories: a home removed since the caller's check must not be made again.
  fs::create_directory(paths::RouterDir(home_), ec);
  fs::create_directory(paths::RouterDir(home_) / "access", ec);
  if (!fs::is_directory(paths::RouterDir(home_) / "access", ec))
    return Failed("cannot make " + (paths::RouterDir(home_) / "access").string());
  runtime::TaskSpec spec;
  spec.id = "router";
  spec.task_folder = folder;
  spec.log_path = paths::RouterLog(home_);
  spec.command = ShellQuote(options_.adhoc_binary.string()) + " router --home " +
                 ShellQuote(home_.string()) + " --listen " + options_.listen_address + ":" +
                 std::to_string(options_.listen_port);
  if (options_.threads > 0) spec.command += " --threads " + std::to_string(options_.threads);
  if (!options_.tls_listen.empty()) {
    spec.command += " --tls-listen " + ShellQuote(options_.tls_listen);
    if (!options_.tls_cert.empty())
      spec.command += " --tls-cert " + ShellQuote(options_.tls_cert.string()) + " --tls-key " +
                      ShellQuote(options_.tls_key.string());
    else
      spec.command += " --tls-domain " + ShellQuote(options_.tls_domain) + " --tls-dir " +
                      ShellQuote((paths::RouterDir(home_) / "tls").string());
    if (options_.redirect_http) spec.command += " --redirect-http";
  }
  spec.env = {
      {"PATH", spec::kBasePath}, {"HOME", paths::RouterDir(home_).string()}, {"LANG", "C.UTF-8"}};
  spec.working_folder = paths::RouterDir(home_);
  spec.address = options_.listen_address;
  spec.port = options_.listen_port;
  spec.stop_timeout = std::chrono::seconds(5);
  auto handle = runtime_.Start(spec);
  if (!handle.ok()) return std::move(handle).context("starting the router").error();
  handle_ = *handle;
  if (started) *started = true;
  // Ready when its feed socket answers.
  lock.unlock();
  for (int i = 0; i < 500; ++i) {
    if (Send({{"op", "ping"}}).ok()) return OkStatus();
    if (!Running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Failed("the router did not come up; see " + paths::RouterLog(home_).string());
}

Status RouterLink::Stop() {
  std::lock_guard lock(mu_);
  if (!handle_) {
    auto adopted = runtime_.Adopt(paths::RouterDir(home_) / "task");
    if (!adopted.ok()) return OkStatus();
    handle_ = *adopted;
  }
  Status s = runtime_.Stop(*handle_);
  handle_.reset();
  return s;
}

Status RouterLink::ReplaceAll(const nlohmann::json& envs) {
  return Send({{"op", "replace_all"}, {"envs", envs}});
}
Status RouterLink::PutEnv(const nlohmann::json& env) {
  return Send({{"op", "put_env"}, {"env", env}});
}
Status RouterLink::RemoveEnv(const std::string& name) {
  return Send({{"op", "remove_env"}, {"name", name}});
}
Result<nlohmann::json> RouterLink::Stats() { return Send({{"op", "stats"}}); }

Result<int> RouterLink::InFlight(const std::string& address) {
  ADHOC_ASSIGN_OR_RETURN(nlohmann::json stats,
                         Send({{"op", "stats"}, {"addresses", nlohmann::json::array({address})}}));
  const nlohmann::json& upstreams = stats["upstreams"];
  if (!upstreams.is_object() || !upstreams.contains(address) ||
      !upstreams[address].is_number_integer())
    return Failed("the router's stats say nothing of " + address);
  return upstreams[address].get<int>();
}

Status RouterLink::CheckPortFree() {
  if (Running()) return OkStatus();
  runtime::BindProbe probe;
  Status free = probe.CheckFree(options_.listen_address, options_.listen_port);
  if (free.ok()) return OkStatus();
  return Conflict(fmt::format(
      "the router's address {}:{} is taken by another program (another adhoc home's router?); "
      "stop it, or give this home its own port with ADHOC_ROUTER_LISTEN=127.0.0.1:PORT",
      options_.listen_address, options_.listen_port));
}

Result<nlohmann::json> RouterLink::Send(const nlohmann::json& message) {
  fs::path socket_path = paths::RouterSocket(home_);
  auto sock = UnixSocket::Connect(socket_path);
  if (!sock.ok())
    return Failed("the router's feed socket does not answer (" + socket_path.string() + ")");
  if (!sock->SendAll(message.dump() + "\n").ok())
    return Failed("writing to the router's feed socket failed");
  std::string buffer;
  // A table of a thousand environments is a few hundred KiB; no bound below that.
  std::optional<std::string> reply = sock->ReadLine(
      buffer, UnixSocket::Clock::now() + std::chrono::seconds(10), size_t{256} << 20);
  if (!reply) return Failed("the router did not answer a feed message");
  auto json = nlohmann::json::parse(*reply, nullptr, false);
  if (json.is_discarded()) return Failed("the router answered something that is not JSON");
  if (!json.value("ok", false))
    return Failed("the router refused a feed message: " + json.value("error", std::string("?")));
  return json;
}

}  // namespace adhoc::server
