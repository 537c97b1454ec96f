#include "resources/env_folders.h"

#include "common/paths.h"

namespace adhoc::resources {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxNameLength = 40;

Status MakeDir(const fs::path& dir, fs::perms mode) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec) fs::permissions(dir, mode, fs::perm_options::replace, ec);
  if (ec) return Failed("creating " + dir.string() + ": " + ec.message());
  return OkStatus();
}

Status CheckName(const std::string& env) {
  if (!IsValidEnvironmentName(env))
    return BadInput("'" + env + "' is not a valid environment name");
  return OkStatus();
}

}  // namespace

bool IsValidEnvironmentName(const std::string& env) {
  if (env.empty() || env.size() > kMaxNameLength) return false;
  if (env[0] < 'a' || env[0] > 'z') return false;
  return env.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

Status CreateEnvironmentFolders(const fs::path& home, const std::string& env) {
  const std::string what = "creating the folders of environment '" + env + "'";
  ADHOC_RETURN_IF_ERROR(CheckName(env).context(what));
  // Everything of an environment is its owner's alone (see the header).
  const fs::perms private_folder = fs::perms::owner_all;
  for (const fs::path& dir :
       {paths::EnvsDir(home), paths::EnvDir(home, env), paths::StaticDir(home, env),
        paths::TasksDir(home, env), paths::LogsDir(home, env)})
    ADHOC_RETURN_IF_ERROR(MakeDir(dir, private_folder).context(what));
  return OkStatus();
}

Status RemoveEnvironmentFolders(const fs::path& home, const std::string& env) {
  const std::string what = "removing the folders of environment '" + env + "'";
  ADHOC_RETURN_IF_ERROR(CheckName(env).context(what));
  const fs::path dir = paths::EnvDir(home, env);
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return OkStatus();
  // A folder without owner write or search permission (made by a task) would stop
  // remove_all when not root: give the owner full access to every folder first.
  if (fs::is_directory(fs::symlink_status(dir, ec))) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code entry_ec;
      if (it->is_directory(entry_ec) && !it->is_symlink(entry_ec))
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, entry_ec);
    }
  }
  ec.clear();
  fs::remove_all(dir, ec);
  if (ec) return Failed(what + ": " + dir.string() + ": " + ec.message());
  return OkStatus();
}

}  // namespace adhoc::resources
