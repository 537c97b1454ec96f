#include "server/disk_usage.h"

#include <sys/stat.h>

#include "common/paths.h"
#include "resources/databases.h"

namespace adhoc::server {

namespace fs = std::filesystem;

uint64_t FolderBytes(const fs::path& folder) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator
           it(folder, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

DiskUsage::DiskUsage(fs::path home, int postgres_port)
    : home_(std::move(home)), postgres_port_(postgres_port) {}

void DiskUsage::Refresh(const std::vector<std::string>& envs) {
  std::map<std::string, uint64_t> databases;
  std::error_code ec;
  if (fs::exists(paths::PostgresData(home_) / "PG_VERSION", ec))
    if (auto admin = resources::ConnectPostgresAdmin(home_, postgres_port_); admin.ok()) {
      resources::EnvironmentDatabases dbs(**admin, "", postgres_port_);
      if (auto sizes = dbs.DatabaseSizes(); sizes.ok()) databases = *sizes;
    }
  std::map<std::string, DiskFigures> figures;
  for (const auto& env : envs) {
    DiskFigures f;
    f.database = databases.count(env) ? databases[env] : 0;
    f.redis = FolderBytes(paths::RedisDir(home_, env));
    uint64_t folder = FolderBytes(paths::EnvDir(home_, env));
    f.files = folder > f.redis ? folder - f.redis : 0;
    figures[env] = f;
  }
  std::lock_guard lock(mu_);
  figures_ = std::move(figures);
}

std::optional<DiskFigures> DiskUsage::Get(const std::string& env) const {
  std::lock_guard lock(mu_);
  auto it = figures_.find(env);
  if (it == figures_.end()) return std::nullopt;
  return it->second;
}

}  // namespace adhoc::server
