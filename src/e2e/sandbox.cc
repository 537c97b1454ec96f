#include "e2e/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/exec.h"
#include "common/paths.h"
#include "common/proc_files.h"
#include "resources/databases.h"
#include "state/store.h"

namespace adhoc::e2e {

namespace fs = std::filesystem;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

Sandbox::Sandbox(fs::path adhoc_binary) : binary_(std::move(adhoc_binary)) {
  std::string templ = (fs::temp_directory_path() / "adhoc-e2e-XXXXXX").string();
  root_ = mkdtemp(templ.data());
  chmod(root_.c_str(), 0755);  // PostgreSQL's user and nginx's workers pass through it
  home_ = root_ / "home";
  repo_ = root_ / "repo";
  router_port_ = FreePort();
  postgres_port_ = FreePort();
}

Sandbox::~Sandbox() {
  // Everything the test started: the control plane and what it runs, then any straggler.
  Adhoc({"base", "down"}, 120);
  for (int round = 0; round < 3; ++round) {
    auto left = HomeProcesses();
    if (left.empty()) break;
    for (const auto& p : left) kill(p.pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::map<std::string, std::string> Sandbox::Environment() const {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", root_.string()},
      {"LANG", "C.UTF-8"},
      {"ADHOC_HOME", home_.string()},
      {"ADHOC_ROUTER_LISTEN", "127.0.0.1:" + std::to_string(router_port_)},
      {"ADHOC_POSTGRES_PORT", std::to_string(postgres_port_)},
      {"USER", "tester"}};
  return env;
}

void Sandbox::RepoFromFolder(const fs::path& source) {
  fs::copy(source, repo_, fs::copy_options::recursive);
  auto env = Environment();
  ExecOptions o{.cwd = repo_, .env = env};
  (void)Exec({"git", "init", "-q", "-b", "main"}, o);
  (void)Exec({"git", "add", "-A"}, o);
  (void)Exec({"git", "-c", "user.name=adhoc", "-c", "user.email=adhoc@example.invalid", "commit",
              "-qm", "test app"},
             o);
}

void Sandbox::RepoFromScript(const fs::path& script) {
  auto r = Exec({script.string(), repo_.string()}, {.env = Environment()});
  if (!r.ok() || r->exit_code != 0)
    std::fprintf(stderr, "making the repository failed: %s\n",
                 r.ok() ? r->output.c_str() : r.error().message().c_str());
}

CommandResult Sandbox::Adhoc(const std::vector<std::string>& args, int timeout_seconds,
                             const std::map<std::string, std::string>& extra_env) const {
  std::vector<std::string> argv = {binary_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto env = Environment();
  for (const auto& [k, v] : extra_env) env[k] = v;
  ExecOptions o{.cwd = fs::exists(repo_) ? repo_ : root_,
                .env = env,
                .timeout = std::chrono::seconds(timeout_seconds)};
  auto r = Exec(argv, o);
  if (!r.ok()) return {-1, r.error().message(), false};
  return {r->exit_code, r->output, r->timed_out};
}

nlohmann::json Sandbox::AdhocJson(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"--json"};
  all.insert(all.end(), args.begin(), args.end());
  CommandResult r = Adhoc(all);
  // Notes may precede the document on stderr; the document starts at the first '{'.
  auto brace = r.output.find('{');
  if (brace == std::string::npos) return nullptr;
  auto j = nlohmann::json::parse(r.output.substr(brace), nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

HttpAnswer Sandbox::Http(const std::string& env, const std::string& method, const std::string& path,
                         const std::string& body,
                         const std::map<std::string, std::string>& headers) const {
  HttpAnswer answer;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(router_port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return answer;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + env +
                    ".localhost:" + std::to_string(router_port_) + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) raw.append(buf, n);
  close(fd);
  auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return answer;
  answer.status = std::atoi(raw.c_str() + 9);
  std::istringstream head(raw.substr(0, end));
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(tolower(c));
    answer.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  std::string rest = raw.substr(end + 4);
  if (answer.headers["transfer-encoding"] == "chunked") {
    size_t pos = 0;
    while (pos < rest.size()) {
      size_t nl = rest.find("\r\n", pos);
      if (nl == std::string::npos) break;
      size_t size = std::stoul(rest.substr(pos, nl - pos), nullptr, 16);
      if (size == 0) break;
      answer.body += rest.substr(nl + 2, size);
      pos = nl + 2 + size + 2;
    }
  } else {
    answer.body = rest;
  }
  return answer;
}

HttpAnswer Sandbox::WaitFor(const std::string& env, const std::string& path, int seconds,
                            const std::function<bool(const HttpAnswer&)>& accept) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  HttpAnswer last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = Http(env, "GET", path);
    if (accept(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

std::vector<HomeProcess> Sandbox::HomeProcesses(const std::string& needle) const {
  std::vector<HomeProcess> out;
  const std::string home = home_.string();
  auto read_all = [](const fs::path& p) {
    std::string s = ReadProcFile(p).value_or("");
    for (char& c : s)
      if (c == '\0') c = ' ';
    return s;
  };
  std::error_code ec;
  for (auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !isdigit(name[0])) continue;
    pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    std::string cmdline = read_all(entry.path() / "cmdline");
    if (cmdline.empty()) continue;  // kernel threads and zombies
    std::string cwd = fs::read_symlink(entry.path() / "cwd", ec).string();
    std::string environ = read_all(entry.path() / "environ");
    std::string all = cmdline + "\n" + cwd + "\n" + environ;
    if (all.find(home) == std::string::npos) continue;
    if (!needle.empty() && all.find(needle) == std::string::npos) continue;
    out.push_back({pid, cmdline});
  }
  return out;
}

std::vector<std::string> Sandbox::Sql(const std::string& query) const {
  std::vector<std::string> rows;
  auto admin = resources::ConnectPostgresAdmin(home_, postgres_port_);
  if (!admin.ok()) return {"ERROR: " + admin.error().message()};
  auto result = (*admin)->Query(query);
  if (!result.ok()) return {"ERROR: " + result.error().message()};
  for (const auto& row : *result) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += (i ? "\t" : "") + row[i];
    rows.push_back(line);
  }
  return rows;
}

pid_t Sandbox::ControlPlanePid() const {
  std::ifstream in(paths::ServerLock(home_));
  pid_t pid = 0;
  in >> pid;
  return pid;
}

nlohmann::json Sandbox::LsAfterRecovery() const {
  for (int i = 0; i < 600; ++i) {
    nlohmann::json ls = AdhocJson({"ls"});
    if (ls.is_object() && !ls.value("recovering", true)) return ls;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return nullptr;
}

std::vector<std::string> Sandbox::Leftovers(const std::string& env) const {
  std::vector<std::string> left;
  // No cluster was ever made (an operation that died before the base step): nothing in it.
  if (fs::exists(paths::PostgresData(home_) / "PG_VERSION")) {
    for (const auto& row : Sql("SELECT datname FROM pg_database WHERE datname = '" + env + "-db'"))
      left.push_back("database " + row);
    std::string role = "env_" + env;
    for (char& c : role)
      if (c == '-') c = '_';
    for (const auto& row : Sql("SELECT rolname FROM pg_roles WHERE rolname = '" + role + "'"))
      left.push_back("role " + row);
  }
  for (const auto& p : HomeProcesses("/envs/" + env + "/"))
    left.push_back("process " + std::to_string(p.pid) + ": " + p.cmdline);
  if (int status = Http(env, "GET", "/").status; status != 404)
    left.push_back("a route: GET / answers " + std::to_string(status));
  if (fs::exists(home_ / "envs" / env)) left.push_back("folder " + (home_ / "envs" / env).string());
  if (fs::exists(paths::AccessLog(home_, env))) left.push_back("access log");
  if (auto store = state::Store::Open(paths::StateDb(home_)); store.ok()) {
    if (auto blocks = (*store)->ListBlocks(); blocks.ok())
      for (const auto& b : *blocks)
        if (b.env == env) left.push_back("address block " + b.block);
    if (auto found = (*store)->FindEnvironment(env); found.ok() && *found)
      left.push_back("environment record (" + std::string(state::ToString((*found)->status)) + ")");
  }
  nlohmann::json ls = AdhocJson({"ls"});
  if (ls.is_object())
    for (const auto& e : ls["environments"])
      if (e["name"] == env) left.push_back("ls lists it");
  return left;
}

std::map<std::string, int> Sandbox::TaskPids(const std::string& env) const {
  std::map<std::string, int> out;
  // A control plane just started again shows its tasks once its recovery adopted them.
  nlohmann::json s;
  for (int i = 0; i < 600; ++i) {
    s = AdhocJson({"status", env});
    if (!s.is_object() || !s.value("recovering", false)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!s.is_object() || !s.contains("services")) return out;
  for (const auto& svc : s["services"])
    for (const auto& t : svc["tasks"]) out[t["id"]] = t["pid"];
  return out;
}

}  // namespace adhoc::e2e
