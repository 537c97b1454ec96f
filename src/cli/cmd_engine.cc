// The commands that act on environments through the control plane (docs/api.md): up, destroy,
// ls, status, logs, run, exec, base, serve. Argument parsing and printing only.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/offline.h"
#include "common/paths.h"
#include "server/launcher.h"
#include "server/serve.h"
#include "spec/duration.h"
#include "spec/env_file_writer.h"
#include "spec/loader.h"
#include "spec/names.h"

namespace adhoc::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Result<server::ApiClient> Connect() {
  return server::EnsureControlPlane(paths::HomeDir(), server::SelfBinary());
}

long long NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Ago(long long ms) {
  long long s = (NowMs() - ms) / 1000;
  if (s < 0) s = 0;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h", s / 3600);
  return fmt::format("{}d", s / 86400);
}

std::string Left(long long until_ms) {
  long long s = (until_ms - NowMs()) / 1000;
  if (s <= 0) return "expired";
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400) return fmt::format("{}h", s / 3600);
  return fmt::format("{}d{}h", s / 86400, (s % 86400) / 3600);
}

std::string Mib(uint64_t bytes) { return fmt::format("{}MiB", bytes / (1024 * 1024)); }

Status CheckEnvName(const std::string& env) { return spec::ValidateEnvName(env); }

// `deploy --write`: the env file's [versions] set to what was deployed, comments kept; the
// result must still be a valid env file, or nothing is written.
Status WriteEnvFileVersions(const fs::path& file, const std::map<std::string, std::string>& refs) {
  std::ifstream in(file);
  if (!in) return Failed("cannot read " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  std::string updated = spec::SetEnvFileVersions(text.str(), refs);
  auto parsed = spec::ParseEnvFile(updated, file.stem().string(), file.string());
  if (!parsed.ok())
    return Failed("not writing " + file.string() + ": the result would not parse (" +
                  parsed.status().error().message() + ")");
  return WriteFileAtomically(file, updated);
}

void PrintCommands(const Output& out, const json& env) {
  if (!env.contains("commands")) return;
  const json& c = env["commands"];
  out.Line(fmt::format("  shell:    {}", c.value("shell", "")));
  out.Line(fmt::format("  logs:     {}", c.value("logs", "")));
  if (c.contains("database")) out.Line(fmt::format("  database: {}", c.value("database", "")));
  out.Line(fmt::format("  destroy:  {}", c.value("destroy", "")));
}

// Who may enter a guarded environment and how (the Environment's `access`, docs/api.md).
void PrintAccess(const Output& out, const json& env) {
  if (!env.contains("access") || !env["access"].is_object()) return;
  const json& a = env["access"];
  if (a.contains("error")) {
    out.Line(fmt::format("  access:   {}", a.value("error", "")));
    return;
  }
  auto join = [](const json& items) {
    std::string text;
    for (const auto& i : items) text += (text.empty() ? "" : ", ") + i.get<std::string>();
    return text;
  };
  std::vector<std::string> guard;
  if (a.contains("basic_auth") || a.contains("token")) guard.push_back("credentials needed");
  if (a.contains("allow")) guard.push_back("only from " + join(a["allow"]));
  if (a.contains("public_paths")) guard.push_back("open paths " + join(a["public_paths"]));
  std::string line;
  for (const auto& g : guard) line += (line.empty() ? "" : "; ") + g;
  out.Line(fmt::format("  guarded:  {}", line));
  if (a.contains("basic_auth"))
    for (const auto& u : a["basic_auth"])
      out.Line(
          fmt::format("  user:     {}  password {}", u.value("user", ""), u.value("password", "")));
  if (a.contains("token_url")) out.Line(fmt::format("  link:     {}", a.value("token_url", "")));
}

}  // namespace

int RunUp(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  std::error_code ec;
  fs::path project = fs::absolute(args.project, ec);
  if (!fs::exists(project / "adhoc.toml"))
    return out.Fail(BadInput((project / "adhoc.toml").string() +
                             ": no such file (run `adhoc init`, or -C the app's folder)"));
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  out.Line(fmt::format("adhoc up {}", args.env));
  auto t0 = std::chrono::steady_clock::now();
  auto env =
      client->Stream("POST", "/v1/environments/" + args.env + "/up",
                     {{"project", fs::canonical(project, ec).string()}, {"wait", !args.no_wait}},
                     [&](const json& e) { PrintProgressEvent(out, e); });
  if (!env.ok()) return out.Fail(env.error());
  long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (out.json()) {
    out.Document(*env);
    return 0;
  }
  out.Line(
      fmt::format("\n{} is up in {}: {}", args.env, FormatDuration(ms), env->value("url", "")));
  PrintAccess(out, *env);
  PrintCommands(out, *env);
  return 0;
}

int RunDestroy(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto t0 = std::chrono::steady_clock::now();
  auto r =
      client->Stream("POST", "/v1/environments/" + args.env + "/destroy", {{"wait", !args.no_wait}},
                     [&](const json& e) { PrintProgressEvent(out, e); });
  if (!r.ok()) return out.Fail(r.error());
  if (out.json()) {
    out.Document(*r);
    return 0;
  }
  long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  out.Line(fmt::format("{} destroyed in {}: nothing of it is left.", args.env, FormatDuration(ms)));
  return 0;
}

// sleep and wake: the same long operation shape as destroy.
static int SleepOrWake(const Args& args, const Output& out, const std::string& verb) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto t0 = std::chrono::steady_clock::now();
  auto env =
      client->Stream("POST", "/v1/environments/" + args.env + "/" + verb, {{"wait", !args.no_wait}},
                     [&](const json& e) { PrintProgressEvent(out, e); });
  if (!env.ok()) return out.Fail(env.error());
  if (out.json()) {
    out.Document(*env);
    return 0;
  }
  long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (verb == "sleep")
    out.Line(
        fmt::format("{} is asleep ({}): no process runs, its data is kept; the next request "
                    "or `adhoc wake {}` wakes it.",
                    args.env, FormatDuration(ms), args.env));
  else
    out.Line(
        fmt::format("{} is awake in {}: {}", args.env, FormatDuration(ms), env->value("url", "")));
  return 0;
}

int RunSleep(const Args& args, const Output& out) { return SleepOrWake(args, out, "sleep"); }
int RunWake(const Args& args, const Output& out) { return SleepOrWake(args, out, "wake"); }

int RunGc(const Args& args, const Output& out) {
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto r = client->Stream("POST", "/v1/gc", {{"dry_run", args.dry_run}},
                          [&](const json& e) { PrintProgressEvent(out, e); });
  if (!r.ok()) return out.Fail(r.error());
  int failed = 0;
  for (const auto& g : (*r)["garbage"]) failed += g.contains("error");
  for (const auto& e : (*r)["expired"]) failed += e.contains("error");
  if (out.json()) {
    out.Document(*r);  // each failed item carries its "error"
    return failed ? 1 : 0;
  }
  {
    const std::string verb = args.dry_run ? "would go" : "removed";
    for (const auto& e : (*r)["expired"])
      out.Line(fmt::format("{} {:<9} {}  {}{}", args.dry_run ? "would destroy" : "destroyed", "env",
                           e.value("env", ""), e.value("reason", ""),
                           e.contains("error") ? "  FAILED: " + e.value("error", "") : ""));
    for (const auto& g : (*r)["garbage"])
      out.Line(fmt::format("{} {:<9} {}{}{}", args.dry_run ? "would remove" : "removed",
                           g.value("kind", ""), g.value("name", ""),
                           g.contains("detail") ? "  (" + g.value("detail", "") + ")" : "",
                           g.contains("error") ? "  FAILED: " + g.value("error", "") : ""));
    size_t n = (*r)["expired"].size() + (*r)["garbage"].size();
    if (n == 0)
      out.Line(
          "Nothing to collect: every environment is within its TTL and everything of "
          "adhoc's in the home belongs to one.");
    else
      out.Line(fmt::format("{} item(s) {}{}.", n, verb,
                           failed ? fmt::format(", {} of them could not be removed", failed) : ""));
  }
  if (failed)
    return out.Fail(Failed(fmt::format("gc: {} item(s) could not be removed (see above)", failed)));
  return 0;
}

int RunDashboard(const Args&, const Output& out) {
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto r = client->Call("GET", "/v1/dashboard");
  if (!r.ok()) return out.Fail(r.error());
  if (out.json()) {
    out.Document(*r);
    return 0;
  }
  const std::string url = r->value("url", "");
  out.Line("dashboard:  " + url);
  out.Line("sign in:    " + r->value("token_url", "") + "  (a browser keeps it for 7 days)");
  out.Line("API token:  " + r->value("token", "") +
           "  (keep it secret: it can do all that this home's owner can)");
  out.Line("  curl -H \"Authorization: Bearer $ADHOC_TOKEN\" " + url + "v1/environments");
  return 0;
}

int RunLs(const Args& args, const Output& out) {
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto r = client->Call("GET", "/v1/environments");
  if (!r.ok()) return out.Fail(r.error());
  if (out.json()) {
    out.Document(*r);
    return 0;
  }
  const json& envs = (*r)["environments"];
  if (r->value("recovering", false))
    out.Note("note: the control plane restarted and is finishing or undoing what was interrupted");
  if (envs.empty()) {
    out.Line("No environments. Create one with `adhoc new NAME` and `adhoc up NAME`.");
    return 0;
  }
  const char* row = "{:<20} {:<10} {:<34} {:<28} {:<10} {:>5} {:>9} {:>9} {:>8} {:>8}";
  out.Line(fmt::format(fmt::runtime(row), "NAME", "STATUS", "URL", "VERSIONS", "OWNER", "AGE",
                       "LAST REQ", "TIME LEFT", "MEMORY", "DISK"));
  for (const auto& e : envs) {
    std::string versions;
    for (auto& [image, v] : e["versions"].items())
      versions += (versions.empty() ? "" : " ") + image + "=" + v.value("ref", "");
    std::string left = e.contains("expires_ms") ? Left(e["expires_ms"].get<long long>()) : "never";
    std::string last = e.contains("last_request_ms")
                           ? Ago(e["last_request_ms"].get<long long>()) + " ago"
                           : "never";
    std::string disk =
        e.contains("disk") ? Mib(e["disk"].value("total_bytes", 0ULL)) : std::string("-");
    out.Line(fmt::format(fmt::runtime(row), e.value("name", ""), e.value("status", ""),
                         e.value("url", ""), versions, e.value("owner", ""),
                         Ago(e.value("created_ms", 0LL)), last, left,
                         Mib(e.value("memory_bytes", 0ULL)), disk));
  }
  const json& total = (*r)["total"];
  out.Line(fmt::format(fmt::runtime(row), fmt::format("TOTAL ({})", total.value("environments", 0)),
                       fmt::format("{} up", total.value("running", 0)),
                       fmt::format("{} asleep", total.value("sleeping", 0)), "", "", "", "", "",
                       Mib(total.value("memory_bytes", 0ULL)),
                       Mib(total.value("disk_bytes", 0ULL))));
  return 0;
}

int RunStatus(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto r = client->Call("GET", "/v1/environments/" + args.env);
  if (!r.ok()) return out.Fail(r.error());
  if (out.json()) {
    out.Document(*r);
    return 0;
  }
  const json& e = *r;
  out.Line(
      fmt::format("{}  {}  {}", e.value("name", ""), e.value("status", ""), e.value("url", "")));
  out.Line(fmt::format("owner {}, created {} ago, memory {}, addresses {}", e.value("owner", ""),
                       Ago(e.value("created_ms", 0LL)), Mib(e.value("memory_bytes", 0ULL)),
                       e.value("address_block", "")));
  for (auto& [image, v] : e["versions"].items())
    out.Line(fmt::format("  {:<10} {} (commit {}, tree {})", image, v.value("ref", ""),
                         v.value("commit", "").substr(0, 7), v.value("tree", "").substr(0, 7)));
  PrintAccess(out, e);
  out.Line("");
  out.Line(fmt::format("  {:<12} {:<10} {:<16} {:<9} {:>8} {:>16} {:>9}", "SERVICE", "STATUS",
                       "TASK", "PID", "RESTARTS", "ADDRESS", "MEMORY"));
  for (const auto& s : e["services"]) {
    bool first = true;
    for (const auto& t : s["tasks"]) {
      out.Line(fmt::format("  {:<12} {:<10} {:<16} {:<9} {:>8} {:>16} {:>9}",
                           first ? s.value("name", "") : "", t.value("status", ""),
                           t.value("id", ""), t.value("pid", 0), t.value("restarts", 0),
                           t.value("address", ""), Mib(t.value("memory_bytes", 0ULL))));
      first = false;
    }
    if (first)
      out.Line(
          fmt::format("  {:<12} {:<10} (no task)", s.value("name", ""), s.value("status", "")));
  }
  if (e.contains("last_operation")) {
    const json& op = e["last_operation"];
    out.Line(fmt::format("\nlast operation: {} #{} {} {} ago{}", op.value("kind", ""),
                         op.value("id", 0), op.value("status", ""),
                         Ago(op.value("started_ms", 0LL)),
                         op.value("error", "").empty() ? "" : ": " + op.value("error", "")));
  }
  return 0;
}

int RunLogs(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  std::string query = "?tail=" + std::to_string(args.tail);
  if (!args.name.empty()) query += "&process=" + args.name;
  if (!args.since.empty()) {
    auto d = spec::ParseDuration(args.since);
    if (!d.ok()) return out.Fail(BadInput("--since " + args.since + ": " + d.error().message()));
    query += "&since_ms=" + std::to_string(NowMs() - d->count() * 1000);
  }
  if (args.follow) query += "&follow=1";
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  json all = json::array();
  auto r = client->Stream("GET", "/v1/environments/" + args.env + "/logs" + query, nullptr,
                          [&](const json& e) {
                            if (e.value("type", "") != "log") return;
                            if (out.json()) {
                              std::puts(e.dump().c_str());
                              std::fflush(stdout);
                              return;
                            }
                            long long ms = e.value("time", 0LL);
                            std::time_t t = ms / 1000;
                            char buf[32];
                            std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&t));
                            out.Line(fmt::format("{}.{:03} {:<14} {}", buf, ms % 1000,
                                                 e.value("process", ""), e.value("line", "")));
                          });
  if (!r.ok() && r.error().message().find("without a result") == std::string::npos)
    return out.Fail(r.error());
  return 0;
}

int RunRun(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  if (args.name.empty() && args.rest.empty())
    return out.Fail(
        BadInput("give a task (adhoc run ENV migrate) or a command after -- "
                 "(adhoc run ENV -- sh -c 'exit 7')"));
  json body = json::object();
  if (!args.name.empty()) body["task"] = args.name;
  if (!args.rest.empty()) body["command"] = args.rest;
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  json lines = json::array();
  auto r =
      client->Stream("POST", "/v1/environments/" + args.env + "/run", body, [&](const json& e) {
        if (e.value("type", "") != "log") return;
        if (out.json())
          lines.push_back(e.value("line", ""));
        else
          out.Line(e.value("line", ""));
      });
  if (!r.ok()) return out.Fail(r.error());
  int code = r->value("exit_code", 1);
  if (out.json()) out.Document({{"exit_code", code}, {"lines", lines}});
  return code;
}

int RunExec(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto r = client->Call("GET", "/v1/environments/" + args.env + "/exec/" + args.name);
  if (!r.ok()) return out.Fail(r.error());
  std::vector<std::string> argv = args.rest;
  if (argv.empty()) argv = {access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh"};
  std::vector<std::string> env_strings;
  for (auto& [k, v] : (*r)["env"].items()) env_strings.push_back(k + "=" + v.get<std::string>());
  std::string cwd = r->value("cwd", "/");
  if (chdir(cwd.c_str()) != 0) return out.Fail(Failed("cannot enter " + cwd));
  // PATH of the service's environment decides where the command is found.
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (auto& e : env_strings)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  std::string program = argv[0];
  if (program.find('/') == std::string::npos) {
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string::npos) end = path.size();
      std::string candidate = path.substr(start, end - start) + "/" + program;
      if (access(candidate.c_str(), X_OK) == 0) {
        program = candidate;
        break;
      }
      start = end + 1;
    }
  }
  execve(program.c_str(), cargv.data(), cenv.data());
  return out.Fail(NotFound("command not found: " + argv[0]));
}

int RunBase(const Args& args, const Output& out) {
  const fs::path home = paths::HomeDir();
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  const std::string action = args.target;
  auto r = client->Stream("POST", "/v1/base/" + action, json::object(),
                          [&](const json& e) { PrintProgressEvent(out, e); });
  if (!r.ok()) return out.Fail(r.error());
  if (action == "destroy") {
    // The control plane is gone once it lets go of its lock; then the home itself goes:
    // state, releases, logs, everything. Only a folder that is an adhoc home is removed.
    for (int i = 0; i < 500 && server::ApiClient(paths::ServerSocket(home)).Reachable(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::error_code ec;
    if (!fs::exists(paths::StateDb(home), ec))
      return out.Fail(Failed(home.string() + " does not look like an adhoc home; left as it is"));
    // The control plane may still be leaving (its socket and lock go last): a file it removes
    // while remove_all walks the folder ends that walk (ENOENT), so walk again.
    for (int attempt = 0; attempt < 50; ++attempt) {
      ec.clear();
      fs::remove_all(home, ec);
      if (!ec || !fs::exists(home)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (ec && fs::exists(home))
      return out.Fail(Failed("removing " + home.string() + ": " + ec.message()));
  }
  if (out.json())
    out.Document(action == "destroy" ? json{{"home", home.string()}, {"destroyed", true}} : *r);
  else
    out.Line(action == "up" ? "base is up"
             : action == "down"
                 ? "base is down (data kept)"
                 : "base destroyed: every environment and " + home.string() + " are gone");
  return 0;
}

int RunDeployLocal(const Args& args, const Output& out) {
  if (Status s = CheckEnvName(args.env); !s.ok()) return out.Fail(s.error());
  json versions = json::object();
  for (const std::string& word : args.versions) {
    auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == word.size())
      return out.Fail(BadInput("'" + word + "': expected IMAGE=REF, e.g. backend=v1.1.0"));
    versions[word.substr(0, eq)] = word.substr(eq + 1);
  }
  std::error_code ec;
  fs::path env_path = fs::absolute(args.project, ec) / "envs" / (args.env + ".toml");
  if (args.write && !fs::exists(env_path, ec))
    return out.Fail(BadInput(env_path.string() + ": no such file to --write"));
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  out.Line(fmt::format("adhoc deploy {}", args.env));
  auto t0 = std::chrono::steady_clock::now();
  auto before = client->Call("GET", "/v1/environments/" + args.env);
  auto env = client->Stream("POST", "/v1/environments/" + args.env + "/deploy",
                            {{"versions", versions}, {"wait", !args.no_wait}},
                            [&](const json& e) { PrintProgressEvent(out, e); });
  if (!env.ok()) return out.Fail(env.error());
  if (args.write) {
    std::map<std::string, std::string> refs;
    for (auto& [image, ref] : versions.items()) refs[image] = ref.get<std::string>();
    if (Status w = WriteEnvFileVersions(env_path, refs); !w.ok()) return out.Fail(w.error());
  }
  long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (out.json()) {
    out.Document(*env);
    return 0;
  }
  std::string changes;
  for (auto& [image, v] : (*env)["versions"].items()) {
    std::string was = before.ok() && (*before)["versions"].contains(image)
                          ? (*before)["versions"][image].value("ref", "")
                          : "";
    std::string now = v.value("ref", "");
    changes += (changes.empty() ? "" : ", ") + image + " " +
               (was.empty() || was == now ? now : was + " -> " + now);
  }
  out.Line(fmt::format("\n{} deployed in {}: {}", args.env, FormatDuration(ms), changes));
  if (args.write) out.Line("  wrote " + env_path.string());
  out.Line(fmt::format("  {}", env->value("url", "")));
  return 0;
}

int RunServe(const Args& args, const Output& out) {
  Status s = server::ServeForeground(paths::HomeDir());
  if (!s.ok()) return out.Fail(s.error());
  return 0;
}

}  // namespace adhoc::cli
