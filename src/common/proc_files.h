// Reading files of /proc. A process may end while its files are read; libstdc++'s filebuf then
// throws (ESRCH from read), whatever the stream's exception mask, which would take a control
// plane's loop down. These read with read(2) and never throw.
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace adhoc {

// The whole file (up to `limit` bytes), or nullopt when it cannot be opened or read.
std::optional<std::string> ReadProcFile(const std::filesystem::path& path, size_t limit = 1 << 20);

// Pids of the processes this user may signal (its own; any, as root, such as a cluster run as
// `postgres`), not the caller, whose working folder is `folder` or below it,
// also after that folder was removed (the kernel then adds " (deleted)" to the link).
std::vector<pid_t> ProcessesWorkingUnder(const std::filesystem::path& folder);

}  // namespace adhoc
