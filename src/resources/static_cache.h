// Cached static folders (issue 12): what a `cache = "static"` task (collectstatic) writes into
// an environment's {static} folder is the same for every environment on one release, so it is
// kept once under paths::StaticCacheDir(home)/<key>/files and a new environment's folder gets
// hard links to those files instead of running the task again. Hard links are safe because
// nothing writes a static file in place: the router only reads them, and collectstatic
// replaces a changed file (unlink, then a new file), which leaves the cached copy alone.
// Files are copied instead where a hard link is refused (another file system).
//
// <key>/release names the release it was made for ("<image>/<release key>", for `adhoc gc`).
// A cache is saved under a temporary name and renamed into place, so a reader sees it whole
// or not at all. Thread-safety: saving one key twice at once is the caller's to prevent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace adhoc::resources {

struct StaticCacheEntry {
  std::string key;
  std::string release;
  uint64_t bytes = 0;
  int files = 0;
};

class StaticCache {
 public:
  explicit StaticCache(std::filesystem::path home);

  bool Has(const std::string& key) const;
  // Keeps the files under `folder` as `key`'s (links to them).
  Status Save(const std::string& key, const std::string& release,
              const std::filesystem::path& folder);
  // Links `key`'s files into `folder` (made when missing), replacing files of the same name.
  // Returns how many files it placed.
  Result<int> CopyInto(const std::string& key, const std::filesystem::path& folder) const;
  Status Remove(const std::string& key);
  Result<std::vector<StaticCacheEntry>> List() const;

 private:
  std::filesystem::path dir_;
};

}  // namespace adhoc::resources
