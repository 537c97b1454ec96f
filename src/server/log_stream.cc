#include "server/log_stream.h"

#include <algorithm>
#include <memory>
#include <set>
#include <thread>

#include "common/paths.h"
#include "runtime/logs.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

long long Millis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::vector<std::pair<std::string, fs::path>> LogFiles(const fs::path& home,
                                                       const LogQuery& query) {
  std::vector<std::pair<std::string, fs::path>> logs;
  std::error_code ec;
  fs::path dir = paths::LogsDir(home, query.env);
  for (auto& pdir : fs::directory_iterator(dir, ec)) {
    std::string name = pdir.path().filename();
    if (!query.process.empty() && name != query.process) continue;
    std::error_code ec2;
    for (auto& f : fs::directory_iterator(pdir.path(), ec2))
      if (f.path().extension() == ".log") logs.push_back({name, f.path()});
  }
  std::sort(logs.begin(), logs.end(), [](auto& a, auto& b) {
    std::error_code e1, e2;
    return fs::last_write_time(a.second, e1) < fs::last_write_time(b.second, e2);
  });
  return logs;
}

void ServeLogs(const fs::path& home, const LogQuery& query, bool stream, ApiResponder& r,
               const std::atomic<bool>& stop) {
  auto logs = LogFiles(home, query);
  std::vector<json> lines;
  for (auto& [proc, file] : logs) {
    std::string task = file.stem();
    auto read = query.since ? runtime::ReadLinesSince(file, *query.since)
                            : runtime::ReadLastLines(file, query.tail);
    if (!read.ok()) continue;
    for (auto& l : *read)
      lines.push_back({{"type", "log"},
                       {"process", proc},
                       {"task", task},
                       {"time", Millis(l.time)},
                       {"line", l.text}});
  }
  std::stable_sort(lines.begin(), lines.end(), [](const json& a, const json& b) {
    return a["time"].get<long long>() < b["time"].get<long long>();
  });
  if (!stream) return r.Reply(200, {{"lines", lines}});
  for (auto& l : lines)
    if (!r.Event(l)) return;
  if (!query.follow) return;
  std::vector<std::pair<std::string, std::unique_ptr<runtime::LogFollower>>> followers;
  std::set<fs::path> followed;
  for (auto& [proc, file] : logs) {
    followers.push_back({proc, std::make_unique<runtime::LogFollower>(file, true)});
    followed.insert(file);
  }
  // New tasks (a restart) are followed as their logs appear.
  for (int idle = 0; !stop; ++idle) {
    for (auto& [proc, f] : followers)
      for (auto& l : f->Poll())
        if (!r.Event(
                {{"type", "log"}, {"process", proc}, {"line", l.text}, {"time", Millis(l.time)}}))
          return;
    if (idle % 20 == 0) {
      if (!r.Event({{"type", "keepalive"}})) return;
      for (auto& [proc, file] : LogFiles(home, query))
        if (!followed.count(file)) {
          followed.insert(file);
          followers.push_back({proc, std::make_unique<runtime::LogFollower>(file, false)});
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace adhoc::server
