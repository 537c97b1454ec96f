// What this machine has and lacks for the engine (`adhoc doctor`): one check per thing the
// control plane and the example need (PostgreSQL, its user, Redis, git, the example's tools,
// cgroups, open files, the home, the router's address, PostgreSQL's port, loopback).
//
// Each check ends as ok, warning (works, with a limit worth knowing) or missing (not there;
// `required` says whether adhoc itself needs it or only the example application does). Tools
// are looked up in the PATH tasks get (DESIGN "Environment variables"), not the caller's, since
// that is where adhoc's processes will look for them. The home, the router's address and
// PostgreSQL's port are the ones ADHOC_HOME, ADHOC_ROUTER_LISTEN and ADHOC_POSTGRES_PORT give,
// as the control plane will use them; a bad value is missing. Needs no control plane.
// Thread-safe: reads the machine, changes nothing.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace adhoc::server {

struct DoctorCheck {
  enum class Level { kOk, kWarning, kMissing };
  std::string name;
  Level level = Level::kOk;
  bool required = true;  // a missing required check fails the command
  std::string detail;    // what was found
  std::string fix;       // what to do; empty when ok
};

// "ok", "warning", "missing".
const char* LevelName(DoctorCheck::Level level);

// What the doctor checks against: the settings the control plane will use, read from the same
// environment variables (README "A team machine"), and what is wrong with them.
struct DoctorSettings {
  std::filesystem::path home;
  std::string router_address = "127.0.0.1";  // ADHOC_ROUTER_LISTEN
  int router_port = 8080;
  std::string router_error;  // a bad ADHOC_ROUTER_LISTEN
  int postgres_port = 5432;  // ADHOC_POSTGRES_PORT, on the home's base address
  std::string postgres_error;
};

DoctorSettings DoctorSettingsFromEnvironment();
std::vector<DoctorCheck> RunDoctorChecks(const DoctorSettings& settings);

}  // namespace adhoc::server
