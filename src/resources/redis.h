// One Redis server per environment (DESIGN: "Redis of its own, with a password, on the
// environment's address"; the seed's Redis ECS service).
//
// Everything lives in paths::RedisDir(home, env) (mode 0700; every file in it 0600, as
// Redis runs with umask 077: the config holds the password, the data the app's): redis.conf,
// appendonlydir/ (the append-only file), dump.rdb, redis.pid (written by Redis), redis.log,
// and redis.proc ("<pid> <start time>", written by adhoc) so the process is known by pid AND
// start time (/proc/<pid>/stat), never by pid alone: after a restart of the caller,
// Adopt() finds the server again and a recycled pid is never signalled.
//
// Durability: `appendonly yes` with `appendfsync everysec`. Redis writes each change to the
// append-only file before it replies, so a killed server (kill -9) loses no confirmed write;
// the file is fsynced every second, so a crash of the machine loses at most about the last
// second (up to two when the disk stalls). Data is kept across Stop/Start (sleeps) and
// removed only by Destroy. An instance whose data is only in dump.rdb (made before the
// append-only file) is started once without it and switched over live, since Redis itself
// would start from an empty append-only file and ignore dump.rdb.
//
// Redis daemonizes (it outlives the caller) and runs as the calling user.
// The state is on disk, so any RedisInstance for the same home and env sees the same
// server. Not thread-safe; callers serialize operations per environment.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace adhoc::resources {

// What one environment's Redis may take (docs/files.md#redis). Memory is bounded with
// `maxmemory-policy noeviction`: Redis is Celery's broker, and an evicted key would be a task
// lost without a word, where a refused write (OOM) fails loudly. Clients are bounded far below
// Redis's default of 10,000: an environment's processes need some tens, and Redis raises its
// own open-files limit to maxclients + 32 at start (10,032 by default, half the machine's hard
// limit of 20,000 per process; 544 with this bound).
inline constexpr int kDefaultRedisMemoryMiB = 64;  // as spec::Redis's default
inline constexpr int kRedisMaxClients = 512;

struct RedisOptions {
  std::string host;  // required: the environment's address; Redis binds only there
  int port = 6379;
  std::string password;  // empty: the one in an existing redis.conf, else a new random one
  // MiB, Redis's `maxmemory`. 0: the one in an existing redis.conf, else
  // kDefaultRedisMemoryMiB.
  int memory_mib = 0;
  std::filesystem::path server_binary = "redis-server";  // searched in /usr/bin:/bin
  std::chrono::milliseconds start_timeout{15000};
  std::chrono::milliseconds stop_timeout{30000};  // for SHUTDOWN SAVE, then SIGTERM, SIGKILL
};

struct RedisCredentials {
  std::string host;
  int port = 6379;
  std::string password;
  std::string url;  // redis://:password@host:port/0 (password URL-encoded)
};

// A process known by pid and its start time (clock ticks since boot, /proc/<pid>/stat).
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;
};

class RedisInstance {
 public:
  RedisInstance(std::filesystem::path home, std::string env, RedisOptions options);

  // Writes redis.conf, starts redis-server and waits until it answers PING with the
  // password. Idempotent: a server already running for this env keeps running; when
  // `memory_mib` is given and differs from its config's, its bound is changed live (CONFIG
  // SET) and written to redis.conf. A Conflict when the address:port is taken by another
  // process.
  Status Start();

  // SHUTDOWN SAVE over the protocol; if that fails, SIGTERM then SIGKILL to the recorded
  // process (identity checked). A no-op when not running. The append-only file (and a
  // dump.rdb) then hold every write.
  Status Stop();

  // Whether the recorded process is alive (pid and start time match).
  Result<bool> Running();

  // After a restart of the caller: reads redis.conf (password, address) and the pidfile +
  // recorded start time. NotFound when no server of this env is running.
  Status Adopt();

  // Stops the server and removes the env's redis folder.
  Status Destroy();

  // Valid after Start() or Adopt().
  RedisCredentials credentials() const;
  // The memory bound in MiB the server runs with. Valid after Start() or Adopt().
  int memory_mib() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::optional<ProcessIdentity> RecordedProcess() const;
  // Reads redis.conf: the password, address and memory bound where options_ leave them open.
  Status LoadPasswordFromConfig();
  // A running server's bound changed to options_.memory_mib when its config says otherwise.
  Status ApplyMemoryBound();
  Status WaitUntilGone(const ProcessIdentity& p, std::chrono::milliseconds timeout);
  // Turns on the append-only file of a server started without it, waiting until the file
  // holds the whole dataset, then writes redis.conf with it on.
  Status SwitchToAppendOnly();

  std::filesystem::path home_;
  std::string env_;
  RedisOptions options_;
  std::filesystem::path dir_;
  int config_memory_mib_ = 0;  // as redis.conf says; 0: it says nothing (an older adhoc's)
};

// The redis.conf of an instance. Pure, for tests. `append_only` false only for the one start
// that turns an older instance's dump.rdb into an append-only file.
std::string RenderRedisConfig(const RedisOptions& options, const std::filesystem::path& dir,
                              bool append_only = true);

// ---- RESP, the Redis protocol (enough for adhoc: commands out, any reply in) ----------

struct RespReply {
  enum class Type { kSimple, kError, kInteger, kBulk, kNull, kArray };
  Type type = Type::kNull;
  std::string text;  // simple string, error message or bulk string
  int64_t integer = 0;
  std::vector<RespReply> elements;
};

// The command as a RESP array of bulk strings.
std::string EncodeRespCommand(const std::vector<std::string>& args);

// Parses one reply from the front of `data`. nullopt when more bytes are needed; else the
// reply and `*consumed` bytes. An error for malformed input.
Result<std::optional<RespReply>> ParseRespReply(std::string_view data, size_t* consumed);

// Connects to host:port (plain TCP), AUTHs when `password` is not empty, sends each
// command in turn and returns the last reply (an error reply is a RespReply, not an
// error). An error when the connection fails or closes early; `closed_ok` accepts a
// close after the last command instead of a reply (SHUTDOWN).
Result<RespReply> RedisCommands(const std::string& host, int port, const std::string& password,
                                const std::vector<std::vector<std::string>>& commands,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                bool closed_ok = false);

// Like RedisCommands, pipelined: every command sent at once on one connection (AUTH first when
// `password` is not empty; a refused AUTH is an error), and every reply returned, in order.
Result<std::vector<RespReply>> RedisPipeline(
    const std::string& host, int port, const std::string& password,
    const std::vector<std::vector<std::string>>& commands,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace adhoc::resources
