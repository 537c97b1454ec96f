// What each environment takes on disk, for `adhoc ls` (issue 13, "what it costs"): its
// databases (pg_database_size), its Redis data (envs/<env>/redis/) and its other files
// (envs/<env>/: static and media files, task folders, logs). A sleeping environment keeps
// all of these, so its figure is what it costs while it runs nothing.
//
// Measuring walks folders and asks the cluster, so it is done now and then by the control
// plane's loop (in the background), never by `ls` itself: `ls` shows the last figures, which
// stay fast to list for any number of environments. Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::server {

struct DiskFigures {
  uint64_t database = 0;  // bytes of its databases
  uint64_t redis = 0;     // its Redis data folder
  uint64_t files = 0;     // the rest of its folder
  uint64_t total() const { return database + redis + files; }
};

class DiskUsage {
 public:
  DiskUsage(std::filesystem::path home, int postgres_port);

  // Measures `envs` now and keeps the figures (those of other environments are dropped).
  // The cluster is asked only when it runs (a home without one has no databases).
  void Refresh(const std::vector<std::string>& envs);
  std::optional<DiskFigures> Get(const std::string& env) const;

 private:
  std::filesystem::path home_;
  int postgres_port_;
  mutable std::mutex mu_;
  std::map<std::string, DiskFigures> figures_;
};

// Bytes of the regular files under `folder` (allocated blocks, as du counts them); 0 when
// it does not exist.
uint64_t FolderBytes(const std::filesystem::path& folder);

}  // namespace adhoc::server
