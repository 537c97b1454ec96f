#include "resources/redis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/exec.h"
#include "common/paths.h"
#include "common/proc_files.h"
#include "resources/databases.h"
#include "runtime/addresses.h"
#include "runtime/process.h"

namespace adhoc::resources {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kAppendOnlyDir[] = "appendonlydir";

// Redis reads its config with sdssplitargs: a "..." word with \" and \\ escaped.
std::string RedisQuote(const std::string& word) {
  std::string q = "\"";
  for (char c : word) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

std::string RedisUnquote(std::string word) {
  if (word.size() < 2 || word.front() != '"' || word.back() != '"') return word;
  std::string out;
  for (size_t i = 1; i + 1 < word.size(); ++i) {
    if (word[i] == '\\' && i + 2 < word.size()) ++i;
    out += word[i];
  }
  return out;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WritePrivateFile(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Failed("writing " + tmp.string() + ": " + strerror(errno));
  bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0)
    return Failed("writing " + path.string() + ": " + strerror(errno));
  return OkStatus();
}

// The `maxmemory` of a redis.conf written by adhoc ("64mb"), in MiB; 0 when it has none.
int ConfigMemoryMiB(const std::string& conf) {
  std::istringstream lines(conf);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("maxmemory ", 0) != 0) continue;
    std::string value = line.substr(10);
    int mib = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), mib);
    if (ec == std::errc() && std::string_view(end) == "mb" && mib > 0) return mib;
  }
  return 0;
}

int MemoryOrDefault(const RedisOptions& o) {
  return o.memory_mib > 0 ? o.memory_mib : kDefaultRedisMemoryMiB;
}

Result<sockaddr_storage> ParseAddress(const std::string& host, int port, socklen_t* len) {
  sockaddr_storage addr{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof(*v6);
  } else {
    return BadInput("'" + host + "' is not an IP address");
  }
  return addr;
}

class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }

  Status Open(const std::string& host, int port, Clock::time_point deadline) {
    socklen_t len = 0;
    ADHOC_ASSIGN_OR_RETURN(sockaddr_storage addr, ParseAddress(host, port, &len));
    fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return Failed(std::string("socket: ") + strerror(errno));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      if (errno != EINPROGRESS) return Failed(strerror(errno));
      ADHOC_RETURN_IF_ERROR(Wait(POLLOUT, deadline));
      int err = 0;
      socklen_t elen = sizeof err;
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &elen);
      if (err != 0) return Failed(strerror(err));
    }
    return OkStatus();
  }

  Status Send(const std::string& data, Clock::time_point deadline) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += n;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        ADHOC_RETURN_IF_ERROR(Wait(POLLOUT, deadline));
      } else {
        return Failed(std::string("sending: ") + strerror(errno));
      }
    }
    return OkStatus();
  }

  // The next reply; nullopt when the server closed the connection before any byte of it.
  Result<std::optional<RespReply>> Receive(Clock::time_point deadline) {
    for (;;) {
      size_t used = 0;
      ADHOC_ASSIGN_OR_RETURN(auto reply, ParseRespReply(buffer_, &used));
      if (reply) {
        buffer_.erase(0, used);
        return reply;
      }
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, n);
      } else if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        if (buffer_.empty()) return std::optional<RespReply>();
        return Failed("connection closed in the middle of a reply");
      } else if (errno == EAGAIN || errno == EINTR) {
        ADHOC_RETURN_IF_ERROR(Wait(POLLIN, deadline));
      } else {
        return Failed(std::string("receiving: ") + strerror(errno));
      }
    }
  }

 private:
  Status Wait(short events, Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Failed("timed out");
      pollfd p{fd_, events, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r > 0) return OkStatus();
      if (r < 0 && errno != EINTR) return Failed(std::string("poll: ") + strerror(errno));
    }
  }

  int fd_ = -1;
  std::string buffer_;
};

Result<std::optional<RespReply>> ParseAt(std::string_view data, size_t* pos, int depth) {
  if (depth > 16) return Failed("RESP reply nested too deeply");
  if (*pos >= data.size()) return std::optional<RespReply>();
  size_t eol = data.find("\r\n", *pos + 1);
  if (eol == std::string_view::npos) return std::optional<RespReply>();
  char type = data[*pos];
  std::string_view line = data.substr(*pos + 1, eol - *pos - 1);
  size_t next = eol + 2;
  RespReply reply;
  auto parse_int = [&](int64_t* out) -> Status {
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), *out);
    if (ec != std::errc() || end != line.data() + line.size())
      return Failed("bad RESP number '" + std::string(line) + "'");
    return OkStatus();
  };
  switch (type) {
    case '+':
    case '-':
      reply.type = type == '+' ? RespReply::Type::kSimple : RespReply::Type::kError;
      reply.text = line;
      break;
    case ':':
      reply.type = RespReply::Type::kInteger;
      ADHOC_RETURN_IF_ERROR(parse_int(&reply.integer));
      break;
    case '$': {
      int64_t len = 0;
      ADHOC_RETURN_IF_ERROR(parse_int(&len));
      if (len < 0) {
        reply.type = RespReply::Type::kNull;
        break;
      }
      if (next + len + 2 > data.size()) return std::optional<RespReply>();
      if (data.substr(next + len, 2) != "\r\n") return Failed("bad RESP bulk string end");
      reply.type = RespReply::Type::kBulk;
      reply.text = data.substr(next, len);
      next += len + 2;
      break;
    }
    case '*': {
      int64_t count = 0;
      ADHOC_RETURN_IF_ERROR(parse_int(&count));
      if (count < 0) {
        reply.type = RespReply::Type::kNull;
        break;
      }
      reply.type = RespReply::Type::kArray;
      for (int64_t i = 0; i < count; ++i) {
        ADHOC_ASSIGN_OR_RETURN(auto element, ParseAt(data, &next, depth + 1));
        if (!element) return std::optional<RespReply>();
        reply.elements.push_back(std::move(*element));
      }
      break;
    }
    default:
      return Failed(std::string("bad RESP reply type '") + type + "'");
  }
  *pos = next;
  return std::optional<RespReply>(std::move(reply));
}

}  // namespace

std::string RenderRedisConfig(const RedisOptions& o, const fs::path& dir, bool append_only) {
  std::ostringstream s;
  s << "# Written by adhoc for one environment; rewritten at every start.\n"
    << "bind " << o.host << "\n"
    << "port " << o.port << "\n"
    << "protected-mode yes\n"
    << "requirepass " << RedisQuote(o.password) << "\n"
    << "dir " << RedisQuote(dir.string()) << "\n"
    << "dbfilename dump.rdb\n"
    << "daemonize yes\n"
    << "pidfile " << RedisQuote((dir / "redis.pid").string()) << "\n"
    << "logfile " << RedisQuote((dir / "redis.log").string())
    << "\n"
    // Every write goes to the append-only file before its reply (a killed server loses
    // nothing), which is fsynced every second (a machine crash loses at most about a second).
    // No periodic snapshots (many idle environments); one more is written at shutdown.
    << "appendonly " << (append_only ? "yes" : "no") << "\n"
    << "appendfsync everysec\n"
    << "appenddirname " << RedisQuote(kAppendOnlyDir) << "\n"
    << "save \"\"\n"
    << "shutdown-on-sigterm save\n"
    << "shutdown-on-sigint save\n"
    // Bounds per environment (redis.h): a write past the memory bound fails with OOM instead
    // of evicting a queued task; "mb" is MiB to Redis.
    << "maxmemory " << MemoryOrDefault(o) << "mb\n"
    << "maxmemory-policy noeviction\n"
    << "maxclients " << kRedisMaxClients << "\n";
  return s.str();
}

std::string EncodeRespCommand(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

Result<std::optional<RespReply>> ParseRespReply(std::string_view data, size_t* consumed) {
  size_t pos = 0;
  ADHOC_ASSIGN_OR_RETURN(auto reply, ParseAt(data, &pos, 0));
  *consumed = reply ? pos : 0;
  return reply;
}

Result<RespReply> RedisCommands(const std::string& host, int port, const std::string& password,
                                const std::vector<std::vector<std::string>>& commands,
                                milliseconds timeout, bool closed_ok) {
  const std::string where = "Redis at " + host + ":" + std::to_string(port);
  auto deadline = Clock::now() + timeout;
  Connection conn;
  if (auto s = conn.Open(host, port, deadline); !s.ok())
    return std::move(s).context("connecting to " + where).error();
  std::vector<std::vector<std::string>> all;
  if (!password.empty()) all.push_back({"AUTH", password});
  all.insert(all.end(), commands.begin(), commands.end());
  RespReply last;
  for (size_t i = 0; i < all.size(); ++i) {
    if (auto s = conn.Send(EncodeRespCommand(all[i]), deadline); !s.ok())
      return std::move(s).context(where).error();
    auto reply = conn.Receive(deadline);
    if (!reply.ok()) return std::move(reply).error().context(where);
    if (!*reply) {
      if (closed_ok && i + 1 == all.size()) return RespReply{};
      return Failed(where + " closed the connection");
    }
    last = std::move(**reply);
    // A refused AUTH ends the conversation: its error is the answer.
    if (!password.empty() && i == 0 && last.type == RespReply::Type::kError) return last;
  }
  return last;
}

RedisInstance::RedisInstance(fs::path home, std::string env, RedisOptions options)
    : home_(std::move(home)),
      env_(std::move(env)),
      options_(std::move(options)),
      dir_(paths::RedisDir(home_, env_)) {}

int RedisInstance::memory_mib() const { return MemoryOrDefault(options_); }

RedisCredentials RedisInstance::credentials() const {
  return {options_.host, options_.port, options_.password,
          "redis://:" + UrlEncode(options_.password) + "@" + options_.host + ":" +
              std::to_string(options_.port) + "/0"};
}

std::optional<ProcessIdentity> RedisInstance::RecordedProcess() const {
  std::istringstream record(ReadFile(dir_ / "redis.proc"));
  ProcessIdentity p;
  if (!(record >> p.pid >> p.start_time)) return std::nullopt;
  // The pidfile is Redis's own word; a record that disagrees with it is stale.
  std::istringstream pidfile(ReadFile(dir_ / "redis.pid"));
  pid_t written = 0;
  if (pidfile >> written && written != p.pid) return std::nullopt;
  auto start = runtime::ProcessStartTime(p.pid);
  if (!start || *start != p.start_time) return std::nullopt;
  return p;
}

Result<bool> RedisInstance::Running() { return RecordedProcess().has_value(); }

Status RedisInstance::LoadPasswordFromConfig() {
  const std::string text = ReadFile(dir_ / "redis.conf");
  config_memory_mib_ = ConfigMemoryMiB(text);
  if (options_.memory_mib == 0) options_.memory_mib = config_memory_mib_;
  std::istringstream conf(text);
  std::string line;
  bool found = false;
  while (std::getline(conf, line)) {
    auto space = line.find(' ');
    if (space == std::string::npos) continue;
    std::string key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "requirepass") {
      if (options_.password.empty()) options_.password = RedisUnquote(value);
      found = true;
    } else if (key == "bind" && options_.host.empty()) {
      options_.host = value;
    } else if (key == "port") {
      std::from_chars(value.data(), value.data() + value.size(), options_.port);
    }
  }
  if (!found) return NotFound("no Redis config in " + dir_.string());
  return OkStatus();
}

Status RedisInstance::WaitUntilGone(const ProcessIdentity& p, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (runtime::ProcessStartTime(p.pid) == p.start_time) {
    if (Clock::now() >= deadline)
      return Failed("still running after " + std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(milliseconds(50));
  }
  return OkStatus();
}

Status RedisInstance::Adopt() {
  const std::string what = "adopting Redis of environment '" + env_ + "'";
  if (auto s = LoadPasswordFromConfig(); !s.ok()) return std::move(s).context(what);
  if (!RecordedProcess())
    return NotFound("no running Redis recorded in " + dir_.string()).context(what);
  return OkStatus();
}

Status RedisInstance::Start() {
  const std::string what = "starting Redis of environment '" + env_ + "' on " + options_.host +
                           ":" + std::to_string(options_.port);
  auto fail = [&](Error e) { return Status(e.context(what)); };
  if (options_.host.empty()) return fail(BadInput("no address given"));
  if (RecordedProcess()) {
    (void)LoadPasswordFromConfig();
    if (auto s = ApplyMemoryBound(); !s.ok()) return fail(s.error());
    return OkStatus();
  }
  if (auto s = runtime::BindProbe().CheckFree(options_.host, options_.port); !s.ok())
    return fail(s.error());

  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return fail(Failed("creating " + dir_.string() + ": " + ec.message()));
  fs::permissions(dir_, fs::perms(0700), ec);
  if (options_.password.empty()) (void)LoadPasswordFromConfig();
  if (options_.password.empty()) options_.password = RandomPassword();
  if (options_.memory_mib == 0)
    options_.memory_mib = ConfigMemoryMiB(ReadFile(dir_ / "redis.conf"));
  // Data saved by an older adhoc (dump.rdb, no append-only file) is loaded first.
  const bool from_snapshot = !fs::exists(dir_ / kAppendOnlyDir / "appendonly.aof.manifest", ec) &&
                             fs::exists(dir_ / "dump.rdb", ec);
  if (auto s =
          WritePrivateFile(dir_ / "redis.conf", RenderRedisConfig(options_, dir_, !from_snapshot));
      !s.ok())
    return fail(s.error());
  fs::remove(dir_ / "redis.pid", ec);
  fs::remove(dir_ / "redis.proc", ec);

  const fs::path log = dir_ / "redis.log";
  // The log is appended to by every start: only what this one writes counts.
  const size_t log_start = ReadFile(log).size();
  auto log_tail = [&] {
    std::string tail = LastLines(ReadFile(log), 5);
    return tail.empty() ? std::string() : "; its log ends with:\n" + tail;
  };
  ExecOptions exec;
  exec.env = std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}, {"LANG", "C.UTF-8"}};
  exec.cwd = dir_;
  exec.timeout = options_.start_timeout;
  // umask 077: the data files Redis makes (append-only file, dump.rdb, its log) are 0600.
  auto launched = Exec({"/bin/sh", "-c", "umask 077 && exec \"$0\" \"$1\"",
                        options_.server_binary.string(), (dir_ / "redis.conf").string()},
                       exec);
  if (!launched.ok()) return fail(launched.error());
  if (launched->exit_code != 0)
    return fail(Failed("redis-server exited with status " + std::to_string(launched->exit_code) +
                       ": " + LastLines(launched->output, 5) + log_tail()));

  // Daemonized: the server is known by its pidfile once it runs, and ready once it answers.
  // A server this call started and then gave up on is killed: nothing is left running.
  std::optional<ProcessIdentity> launched_server;
  auto give_up = [&](Error e) {
    if (launched_server &&
        runtime::ProcessStartTime(launched_server->pid) == launched_server->start_time) {
      kill(launched_server->pid, SIGKILL);
      (void)WaitUntilGone(*launched_server, milliseconds(5000));
    }
    fs::remove(dir_ / "redis.proc", ec);
    return fail(std::move(e));
  };
  auto deadline = Clock::now() + options_.start_timeout;
  while (Clock::now() < deadline) {
    std::istringstream pidfile(ReadFile(dir_ / "redis.pid"));
    pid_t pid = 0;
    if (pidfile >> pid) {
      auto start = runtime::ProcessStartTime(pid);
      if (!start) return give_up(Failed("redis-server exited" + log_tail()));
      launched_server = ProcessIdentity{pid, *start};
      auto pong = RedisCommands(options_.host, options_.port, options_.password, {{"PING"}},
                                milliseconds(1000));
      if (pong.ok() && pong->type == RespReply::Type::kSimple && pong->text == "PONG") {
        auto recorded = WritePrivateFile(dir_ / "redis.proc",
                                         std::to_string(pid) + " " + std::to_string(*start) + "\n");
        if (!recorded.ok()) return give_up(recorded.error());
        if (from_snapshot)
          if (auto s = SwitchToAppendOnly(); !s.ok()) return give_up(s.error());
        return OkStatus();
      }
      // Reading the append-only file back takes a moment: LOADING until it is done.
      bool loading =
          pong.ok() && pong->type == RespReply::Type::kError && pong->text.rfind("LOADING", 0) == 0;
      if (pong.ok() && pong->type == RespReply::Type::kError && !loading)
        return give_up(Conflict("another server answers on the address: " + pong->text));
    } else if (ReadFile(log).find("Could not create server TCP listening socket", log_start) !=
               std::string::npos) {
      return give_up(Conflict("redis-server could not listen" + log_tail()));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return give_up(Failed("no answer to PING within " +
                        std::to_string(options_.start_timeout.count()) + " ms" + log_tail()));
}

Status RedisInstance::ApplyMemoryBound() {
  if (options_.memory_mib == 0 || options_.memory_mib == config_memory_mib_) return OkStatus();
  const std::string bound = std::to_string(options_.memory_mib) + "mb";
  auto replies = RedisPipeline(options_.host, options_.port, options_.password,
                               {{"CONFIG", "SET", "maxmemory", bound},
                                {"CONFIG", "SET", "maxmemory-policy", "noeviction"},
                                {"CONFIG", "SET", "maxclients", std::to_string(kRedisMaxClients)}},
                               options_.start_timeout);
  if (!replies.ok()) return std::move(replies).error().context("setting its memory to " + bound);
  for (const RespReply& r : *replies)
    if (r.type == RespReply::Type::kError)
      return Failed("setting its memory to " + bound + ": " + r.text);
  ADHOC_RETURN_IF_ERROR(
      WritePrivateFile(dir_ / "redis.conf", RenderRedisConfig(options_, dir_, true)));
  config_memory_mib_ = options_.memory_mib;
  return OkStatus();
}

Status RedisInstance::SwitchToAppendOnly() {
  auto ask = [&](std::vector<std::string> command) {
    return RedisCommands(options_.host, options_.port, options_.password, {std::move(command)});
  };
  auto on = ask({"CONFIG", "SET", "appendonly", "yes"});
  if (!on.ok()) return on.error();
  if (on->type == RespReply::Type::kError)
    return Failed("turning on the append-only file: " + on->text);
  // The first append-only file is written by a rewrite of the whole dataset in the background.
  auto deadline = Clock::now() + options_.start_timeout;
  while (true) {
    auto info = ask({"INFO", "persistence"});
    if (!info.ok()) return info.error();
    const std::string& text = info->text;
    bool done = text.find("aof_rewrite_in_progress:0") != std::string::npos &&
                text.find("aof_rewrite_scheduled:0") != std::string::npos &&
                fs::exists(dir_ / kAppendOnlyDir / "appendonly.aof.manifest");
    if (done && text.find("aof_last_bgrewrite_status:ok") == std::string::npos)
      return Failed("writing the first append-only file failed; see " +
                    (dir_ / "redis.log").string());
    if (done) break;
    if (Clock::now() >= deadline)
      return Failed("the first append-only file was not written within " +
                    std::to_string(options_.start_timeout.count()) + " ms");
    std::this_thread::sleep_for(milliseconds(20));
  }
  return WritePrivateFile(dir_ / "redis.conf", RenderRedisConfig(options_, dir_, true));
}

Status RedisInstance::Stop() {
  const std::string what = "stopping Redis of environment '" + env_ + "'";
  std::error_code ec;
  auto p = RecordedProcess();
  if (!p) {
    fs::remove(dir_ / "redis.proc", ec);
    return OkStatus();
  }
  (void)LoadPasswordFromConfig();
  // SHUTDOWN SAVE writes dump.rdb and exits; success closes the connection without a reply.
  auto reply = RedisCommands(options_.host, options_.port, options_.password,
                             {{"SHUTDOWN", "SAVE"}}, options_.stop_timeout, /*closed_ok=*/true);
  bool asked = reply.ok() && reply->type != RespReply::Type::kError;
  if (!asked || !WaitUntilGone(*p, options_.stop_timeout).ok()) {
    // The pid is signalled only while its start time still matches (never a recycled pid).
    if (runtime::ProcessStartTime(p->pid) == p->start_time) kill(p->pid, SIGTERM);
    if (!WaitUntilGone(*p, options_.stop_timeout).ok()) {
      if (runtime::ProcessStartTime(p->pid) == p->start_time) kill(p->pid, SIGKILL);
      (void)WaitUntilGone(*p, milliseconds(5000));
      fs::remove(dir_ / "redis.proc", ec);
      return Failed("it did not stop in time and was killed: data since the last save is lost")
          .context(what);
    }
  }
  fs::remove(dir_ / "redis.proc", ec);
  return OkStatus();
}

Status RedisInstance::Destroy() {
  auto stopped = Stop();
  // A killed server is gone all the same; only a live one keeps its folder.
  if (!stopped.ok() && RecordedProcess()) return stopped;
  // A server whose start was cut short (the caller killed between redis-server's start and
  // recording it) is known only by its working folder, which Redis sets to its data folder.
  for (pid_t pid : ProcessesWorkingUnder(dir_)) kill(pid, SIGKILL);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) return Failed("removing " + dir_.string() + ": " + ec.message());
  return OkStatus();
}

Result<std::vector<RespReply>> RedisPipeline(const std::string& host, int port,
                                             const std::string& password,
                                             const std::vector<std::vector<std::string>>& commands,
                                             milliseconds timeout) {
  const std::string where = "Redis at " + host + ":" + std::to_string(port);
  auto deadline = Clock::now() + timeout;
  Connection conn;
  if (auto s = conn.Open(host, port, deadline); !s.ok())
    return std::move(s).context("connecting to " + where).error();
  std::string out;
  if (!password.empty()) out += EncodeRespCommand({"AUTH", password});
  for (const auto& c : commands) out += EncodeRespCommand(c);
  if (auto s = conn.Send(out, deadline); !s.ok()) return std::move(s).context(where).error();
  std::vector<RespReply> replies;
  for (size_t i = 0; i < commands.size() + (password.empty() ? 0 : 1); ++i) {
    auto reply = conn.Receive(deadline);
    if (!reply.ok()) return std::move(reply).error().context(where);
    if (!*reply) return Failed(where + " closed the connection");
    if (!password.empty() && i == 0) {
      if ((*reply)->type == RespReply::Type::kError)
        return Failed(where + ": AUTH: " + (*reply)->text);
      continue;
    }
    replies.push_back(std::move(**reply));
  }
  return replies;
}

}  // namespace adhoc::resources
