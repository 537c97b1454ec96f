#include "common/proc_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

namespace adhoc {

std::optional<std::string> ReadProcFile(const std::filesystem::path& path, size_t limit) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() >= limit) break;
  }
  close(fd);
  return out;
}

std::vector<pid_t> ProcessesWorkingUnder(const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  std::vector<pid_t> out;
  const std::string root = folder.lexically_normal().string();
  const std::string deleted = " (deleted)";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
    if (pid == getpid()) continue;
    struct stat st {};
    if (stat(entry.path().c_str(), &st) != 0 || (getuid() != 0 && st.st_uid != getuid())) continue;
    std::error_code link_ec;
    std::string cwd = fs::read_symlink(entry.path() / "cwd", link_ec).string();
    if (link_ec) continue;
    if (cwd.size() > deleted.size() && cwd.ends_with(deleted))
      cwd.resize(cwd.size() - deleted.size());
    if (cwd == root || cwd.starts_with(root + "/")) out.push_back(pid);
  }
  return out;
}

}  // namespace adhoc
