// The data commands (docs/api.md "Data"): `adhoc snapshot ENV NAME`, `adhoc reset ENV` and
// `adhoc snapshots [rm NAME]`. Argument parsing and printing only.
#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "cli/commands.h"
#include "common/paths.h"
#include "server/launcher.h"
#include "spec/names.h"

namespace adhoc::cli {

using nlohmann::json;

namespace {

Result<server::ApiClient> Connect() {
  return server::EnsureControlPlane(paths::HomeDir(), server::SelfBinary());
}

long long Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

std::string Bytes(int64_t bytes) {
  if (bytes < 1024) return fmt::format("{}B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f}KiB", bytes / 1024.0);
  if (bytes < 1024LL * 1024 * 1024) return fmt::format("{:.1f}MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.1f}GiB", bytes / (1024.0 * 1024 * 1024));
}

// "backend v1.0.0, frontend v2.0.0".
std::string Versions(const json& versions) {
  std::string out;
  if (!versions.is_array()) return out;
  for (const auto& v : versions)
    if (v.is_object())
      out += (out.empty() ? "" : ", ") + v.value("image", "") + " " + v.value("ref", "");
  return out;
}

}  // namespace

int RunSnapshot(const Args& args, const Output& out) {
  if (Status s = spec::ValidateEnvName(args.env); !s.ok()) return out.Fail(s.error());
  if (Status s = spec::ValidateObjectName("snapshot", args.name); !s.ok())
    return out.Fail(s.error());
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto t0 = std::chrono::steady_clock::now();
  auto r = client->Stream("POST", "/v1/environments/" + args.env + "/snapshot",
                          {{"name", args.name}, {"wait", !args.no_wait}},
                          [&](const json& e) { PrintProgressEvent(out, e); });
  if (!r.ok()) return out.Fail(r.error());
  if (out.json()) {
    out.Document(*r);
    return 0;
  }
  out.Line(
      fmt::format("{} saved as snapshot {} in {} ({}): start an environment from it with "
                  "data = \"snapshot:{}\" in its env file.",
                  args.env, args.name, FormatDuration(Since(t0)),
                  Bytes(r->value("size_bytes", 0LL)), args.name));
  return 0;
}

int RunReset(const Args& args, const Output& out) {
  if (Status s = spec::ValidateEnvName(args.env); !s.ok()) return out.Fail(s.error());
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto t0 = std::chrono::steady_clock::now();
  auto env =
      client->Stream("POST", "/v1/environments/" + args.env + "/reset", {{"wait", !args.no_wait}},
                     [&](const json& e) { PrintProgressEvent(out, e); });
  if (!env.ok()) return out.Fail(env.error());
  if (out.json()) {
    out.Document(*env);
    return 0;
  }
  out.Line(fmt::format("{} is back to its start data in {}: {}", args.env,
                       FormatDuration(Since(t0)), env->value("url", "")));
  return 0;
}

int RunSnapshots(const Args& args, const Output& out) {
  if (!args.target.empty()) {  // `adhoc snapshots rm NAME`
    if (args.name.empty())
      return out.Fail(BadInput("`adhoc snapshots rm` needs the snapshot's NAME"));
    if (Status s = spec::ValidateObjectName("snapshot", args.name); !s.ok())
      return out.Fail(s.error());
    auto client = Connect();
    if (!client.ok()) return out.Fail(client.error());
    auto r = client->Call("DELETE", "/v1/snapshots/" + args.name, nullptr);
    if (!r.ok()) return out.Fail(r.error());
    if (out.json()) {
      out.Document(*r);
      return 0;
    }
    out.Line("snapshot " + args.name + " removed, with its files.");
    return 0;
  }
  if (!args.name.empty())
    return out.Fail(BadInput("unexpected '" + args.name + "' (did you mean `adhoc snapshots rm " +
                             args.name + "`?)"));
  auto client = Connect();
  if (!client.ok()) return out.Fail(client.error());
  auto r = client->Call("GET", "/v1/snapshots", nullptr);
  if (!r.ok()) return out.Fail(r.error());
  if (out.json()) {
    out.Document(*r);
    return 0;
  }
  const json& all = (*r)["snapshots"];
  if (all.empty()) {
    out.Line("No snapshots. `adhoc snapshot ENV NAME` saves an environment's data.");
    return 0;
  }
  out.Line(fmt::format("{:<30} {:<20} {:>10} {:>6}  {:<20}  {}", "NAME", "FROM", "SIZE", "KEYS",
                       "TAKEN", "VERSIONS"));
  for (const auto& s : all)
    out.Line(fmt::format("{:<30} {:<20} {:>10} {:>6}  {:<20}  {}", s.value("name", ""),
                         s.value("env", ""), Bytes(s.value("size_bytes", 0LL)),
                         s.value("redis_keys", 0LL), s.value("created", ""),
                         Versions(s.value("versions", json::array()))));
  out.Line(
      fmt::format("{} snapshot(s), {} in all.", all.size(), Bytes(r->value("total_bytes", 0LL))));
  return 0;
}

}  // namespace adhoc::cli
