// `adhoc logs`: the log lines of an environment's processes from their files (tasks that
// ended keep theirs), oldest first, and with `follow` the new lines as they are written,
// including those of tasks started later (a restart). Sent as ndjson events of the API.
// Blocking; one call per API request.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "server/api_server.h"

namespace adhoc::server {

struct LogQuery {
  std::string env;
  std::string process;  // a service or task; empty: all
  size_t tail = 100;    // last lines of each log file to start with
  bool follow = false;
  std::optional<std::chrono::system_clock::time_point> since;
};

// The log files of `query.env` (and `process`): (process, file), oldest file first.
std::vector<std::pair<std::string, std::filesystem::path>> LogFiles(
    const std::filesystem::path& home, const LogQuery& query);

// Answers `query` on `responder`: a {"lines": [...]} reply, or a stream of log events when
// `stream` (and with follow, until the client goes or `stop` is set).
void ServeLogs(const std::filesystem::path& home, const LogQuery& query, bool stream,
               ApiResponder& responder, const std::atomic<bool>& stop);

}  // namespace adhoc::server
