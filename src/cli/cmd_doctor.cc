// `adhoc doctor`: what this machine has and lacks (server/doctor.h), one line per check. The
// exit status is 1 when something required is missing, else 0: warnings never fail.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "server/doctor.h"

namespace adhoc::cli {

using server::DoctorCheck;
using Level = server::DoctorCheck::Level;
using server::LevelName;

int RunDoctor(const Args&, const Output& out) {
  server::DoctorSettings settings = server::DoctorSettingsFromEnvironment();
  std::vector<DoctorCheck> checks = server::RunDoctorChecks(settings);
  int warnings = 0, missing = 0, missing_required = 0;
  for (const DoctorCheck& c : checks) {
    if (c.level == Level::kWarning) ++warnings;
    if (c.level == Level::kMissing) {
      ++missing;
      if (c.required) ++missing_required;
    }
  }
  int exit_code = missing_required > 0 ? 1 : 0;
  if (out.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const DoctorCheck& c : checks)
      list.push_back({{"name", c.name},
                      {"status", LevelName(c.level)},
                      {"required", c.required},
                      {"detail", c.detail},
                      {"fix", c.fix}});
    out.Document(
        {{"home", settings.home.string()},
         {"router_listen", fmt::format("{}:{}", settings.router_address, settings.router_port)},
         {"postgres_port", settings.postgres_port},
         {"checks", list},
         {"warnings", warnings},
         {"missing", missing},
         {"missing_required", missing_required},
         {"ok", exit_code == 0}});
    return exit_code;
  }
  for (const DoctorCheck& c : checks) {
    std::string name = c.level == Level::kMissing && !c.required ? c.name + " (optional)" : c.name;
    out.Line(fmt::format("{:<8} {:<26} {}", LevelName(c.level), name, c.detail));
    if (!c.fix.empty() && c.level != Level::kOk) out.Line(fmt::format("{:<35}-> {}", "", c.fix));
  }
  if (missing_required > 0)
    out.Line(
        fmt::format("{} required missing, {} optional missing, {} warnings: adhoc cannot run "
                    "environments here yet",
                    missing_required, missing - missing_required, warnings));
  else
    out.Line(fmt::format("nothing required is missing ({} optional missing, {} warnings)", missing,
                         warnings));
  return exit_code;
}

}  // namespace adhoc::cli
