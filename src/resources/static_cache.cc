#include "resources/static_cache.h"

#include <unistd.h>

#include <fstream>

#include "common/paths.h"

namespace adhoc::resources {
namespace fs = std::filesystem;

namespace {

bool ValidKey(const std::string& key) {
  bool valid = key.size() >= 8 && key.size() <= 64;
  for (char c : key) valid = valid && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  return valid;
}

// Every file under `from` linked (or copied) to the same place under `to`; folders made.
Result<int> LinkTree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return Failed("making " + to.string() + ": " + ec.message());
  int files = 0;
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path target = to / fs::relative(it->path(), from, ec);
    if (ec) break;
    if (it->is_directory(ec)) {
      fs::create_directories(target, ec);
    } else if (it->is_regular_file(ec)) {
      fs::remove(target, ec);
      fs::create_hard_link(it->path(), target, ec);
      if (ec) {
        ec.clear();
        fs::copy_file(it->path(), target, fs::copy_options::overwrite_existing, ec);
      }
      ++files;
    }
    if (ec) return Failed("placing " + target.string() + ": " + ec.message());
  }
  if (ec) return Failed("reading " + from.string() + ": " + ec.message());
  return files;
}

}  // namespace

StaticCache::StaticCache(fs::path home) : dir_(paths::StaticCacheDir(home)) {}

bool StaticCache::Has(const std::string& key) const {
  std::error_code ec;
  return ValidKey(key) && fs::is_directory(dir_ / key / "files", ec);
}

Status StaticCache::Save(const std::string& key, const std::string& release,
                         const fs::path& folder) {
  if (!ValidKey(key)) return BadInput("'" + key + "' is not a cache key");
  const std::string what = "keeping the static files of " + folder.string();
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Failed(ec.message()).context(what);
  const fs::path partial = dir_ / (".partial-" + key + "-" + std::to_string(getpid()));
  fs::remove_all(partial, ec);
  auto undo = [&](Error e) {
    fs::remove_all(partial, ec);
    return std::move(e).context(what);
  };
  auto linked = LinkTree(folder, partial / "files");
  if (!linked.ok()) return undo(linked.error());
  std::ofstream(partial / "release") << release << "\n";
  fs::remove_all(dir_ / key, ec);
  fs::rename(partial, dir_ / key, ec);
  if (ec) return undo(Failed(ec.message()));
  return OkStatus();
}

Result<int> StaticCache::CopyInto(const std::string& key, const fs::path& folder) const {
  if (!Has(key)) return NotFound("no cached static files for '" + key + "'");
  return LinkTree(dir_ / key / "files", folder);
}

Status StaticCache::Remove(const std::string& key) {
  if (!ValidKey(key)) return BadInput("'" + key + "' is not a cache key");
  std::error_code ec;
  fs::remove_all(dir_ / key, ec);
  return ec ? Failed("removing " + (dir_ / key).string() + ": " + ec.message()) : OkStatus();
}

Result<std::vector<StaticCacheEntry>> StaticCache::List() const {
  std::vector<StaticCacheEntry> out;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return out;
  for (auto& entry : fs::directory_iterator(dir_, ec)) {
    std::string key = entry.path().filename().string();
    if (!ValidKey(key)) continue;  // a partial save
    StaticCacheEntry e{key, "", 0, 0};
    std::ifstream(entry.path() / "release") >> e.release;
    std::error_code walk;
    for (auto it = fs::recursive_directory_iterator(entry.path() / "files", walk);
         !walk && it != fs::end(it); it.increment(walk))
      if (it->is_regular_file(walk)) {
        ++e.files;
        e.bytes += it->file_size(walk);
      }
    out.push_back(std::move(e));
  }
  if (ec) return Failed("listing " + dir_.string() + ": " + ec.message());
  return out;
}

}  // namespace adhoc::resources
