// adhoc_runtime_bench: how long the local runtime and resources take for the steps an
// environment's creation is made of, in a temporary home of its own:
//   (a) LocalRuntime::Start of a small HTTP task until the start-up health probing (every
//       100 ms, DESIGN "Health") says healthy, then Stop; peer: the same server spawned
//       directly (no shim, no cgroups, no log writer), probed the same way;
//   (b) the base cluster's initdb and start (once each), then CreateEnvironmentDatabase and
//       DropEnvironmentDatabase; peer: the seed's way, `psql -c "CREATE ROLE ..."` + `createdb`
//       (and `dropdb` + `psql -c "DROP ROLE ..."`) against the same cluster;
//   (c) RedisInstance Start until it answers PING, and Stop; peer: a bare redis-server.
// Prints min/median/max per measure, then one JSON line (the last line of stdout) for
// bench/runtime.sh. Usage: adhoc_runtime_bench [--runs N]   (default 5)
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/exec.h"
#include "common/paths.h"
#include "resources/databases.h"
#include "resources/postgres_cluster.h"
#include "resources/redis.h"
#include "runtime/addresses.h"
#include "runtime/health.h"
#include "runtime/runtime.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace adhoc;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::map<std::string, std::string> kTaskEnv = {
    {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    {"HOME", "/tmp"},
    {"LANG", "C.UTF-8"}};

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Samples of one measure, in milliseconds.
struct Measure {
  std::string name;
  std::string what;
  std::vector<double> samples;
  double Median() const {
    std::vector<double> s = samples;
    std::sort(s.begin(), s.end());
    size_t n = s.size();
    return n == 0 ? 0 : (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2);
  }
  double Min() const {
    return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end());
  }
  double Max() const {
    return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end());
  }
};

class Report {
 public:
  Measure& Add(const std::string& name, const std::string& what) {
    measures_.push_back({name, what, {}});
    return measures_.back();
  }
  Measure* Find(const std::string& name) {
    for (Measure& m : measures_)
      if (m.name == name) return &m;
    return nullptr;
  }
  // adhoc's median over the peer's: > 1 means adhoc is slower.
  void Ratio(const std::string& name, const std::string& ours, const std::string& peer) {
    Measure* a = Find(ours);
    Measure* b = Find(peer);
    if (a && b && b->Median() > 0) ratios_[name] = a->Median() / b->Median();
  }
  void Print(int runs) const {
    std::printf("%-28s %9s %9s %9s  %s\n", "measure (ms)", "min", "median", "max", "what");
    for (const Measure& m : measures_)
      std::printf("%-28s %9.1f %9.1f %9.1f  %s\n", m.name.c_str(), m.Min(), m.Median(), m.Max(),
                  m.what.c_str());
    for (const auto& [name, ratio] : ratios_)
      std::printf("ratio %-22s %9.2f\n", name.c_str(), ratio);
    nlohmann::json doc = {{"runs", runs}, {"measures", nlohmann::json::array()}};
    for (const Measure& m : measures_)
      doc["measures"].push_back({{"name", m.name},
                                 {"what", m.what},
                                 {"min_ms", m.Min()},
                                 {"median_ms", m.Median()},
                                 {"max_ms", m.Max()},
                                 {"samples_ms", m.samples}});
    doc["ratios"] = ratios_;
    std::printf("%s\n", doc.dump().c_str());
    std::fflush(stdout);
  }

 private:
  std::deque<Measure> measures_;  // stable references: callers keep the Measure& of Add()
  std::map<std::string, double> ratios_;
};

// A failed step: thrown to main (so every guard below it stops what it started), never
// out of this program.
struct BenchFailure {
  std::string message;
};

[[noreturn]] void Die(const std::string& what, const Error& error) {
  throw BenchFailure{what + ": " + error.message()};
}
[[noreturn]] void Die(const std::string& what) { throw BenchFailure{what}; }

class TempHome {
 public:
  TempHome() {
    std::string tmpl = (fs::temp_directory_path() / "adhoc-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    path_ = tmpl;
  }
  ~TempHome() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A process spawned without adhoc (the peers), killed and reaped when it goes out of scope.
class BareProcess {
 public:
  explicit BareProcess(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~BareProcess() { Stop(); }
  bool ok() const { return pid_ > 0; }
  // SIGTERM, then waits for it to exit.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
  }

 private:
  pid_t pid_ = 0;
};

// Probes every start_interval (the runtime's start-up probing) until healthy or start failed.
void WaitHealthy(runtime::Prober& prober) {
  runtime::SystemClock clock;
  runtime::HealthSettings settings;
  settings.start_timeout = 30s;
  runtime::HealthTracker tracker(settings, clock);
  while (true) {
    auto state = tracker.Tick(prober);
    if (state == runtime::HealthTracker::State::kHealthy) return;
    if (state == runtime::HealthTracker::State::kStartFailed)
      Die("not healthy within 30s: " + tracker.last_detail());
    std::this_thread::sleep_for(2ms);
  }
}

// Runs a PostgreSQL client tool against the cluster's private socket as its superuser.
void PgTool(const fs::path& bin_dir, const fs::path& socket_dir, int port,
            std::vector<std::string> args) {
  ExecOptions options;
  options.env = std::map<std::string, std::string>{{"PATH", bin_dir.string() + ":/usr/bin:/bin"},
                                                   {"LANG", "C.UTF-8"}};
  options.timeout = 60s;
  args.insert(args.begin() + 1,
              {"-h", socket_dir.string(), "-p", std::to_string(port), "-U", "postgres"});
  args[0] = (bin_dir / args[0]).string();
  auto r = ExecOk(args, options);
  if (!r.ok()) Die("running " + args[0], r.error());
}

void BenchTasks(const fs::path& home, const runtime::AddressBlock& block, int runs,
                Report& report) {
  runtime::LocalRuntimeOptions options;
  options.shim_binary = ADHOC_BINARY;
  options.warn = [](const std::string&) {};
  runtime::LocalRuntime rt(options);
  auto matcher = runtime::StatusMatcher::Parse("200-399");
  if (!matcher.ok()) Die("matcher", matcher.error());
  const std::string address = block.Address(10);
  const int port = 8000;
  const std::string server =
      "/usr/bin/python3 -m http.server " + std::to_string(port) + " --bind " + address;

  Measure& start = report.Add("task.start", "LocalRuntime::Start returns (shim up, task running)");
  Measure& healthy =
      report.Add("task.start_healthy", "Start until the 100 ms start-up probing says healthy");
  Measure& stop = report.Add("task.stop", "LocalRuntime::Stop (SIGTERM, wait for the exit)");
  Measure& stop_exec =
      report.Add("task.stop_exec", "LocalRuntime::Stop of the same task run as `exec python3 ...`");
  Measure& peer = report.Add("peer.spawn_healthy",
                             "posix_spawn of the same server, probed the same way, no shim");
  for (int i = 0; i < runs; ++i) {
    runtime::TaskSpec spec;
    spec.id = "http-" + std::to_string(i);
    spec.task_folder = paths::TaskDir(home, "bench", spec.id);
    spec.log_path = paths::TaskLog(home, "bench", "http", spec.id);
    spec.command = server;
    spec.env = kTaskEnv;
    spec.address = address;
    spec.port = port;
    spec.stop_timeout = 10s;
    fs::create_directories(spec.task_folder);
    spec.working_folder = spec.task_folder;
    runtime::HttpProber prober(address, port, "bench.localhost", "/", *matcher);

    auto t0 = Clock::now();
    auto handle = rt.Start(spec);
    if (!handle.ok()) Die("starting the task", handle.error());
    start.samples.push_back(MsSince(t0));
    struct Guard {
      runtime::LocalRuntime& rt;
      runtime::TaskHandle handle;
      bool stopped = false;
      ~Guard() {
        if (!stopped) (void)rt.Stop(handle);
      }
    } guard{rt, *handle};
    WaitHealthy(prober);
    healthy.samples.push_back(MsSince(t0));
    auto t1 = Clock::now();
    guard.stopped = true;
    if (auto s = rt.Stop(*handle); !s.ok()) Die("stopping the task", s.error());
    stop.samples.push_back(MsSince(t1));

    auto t2 = Clock::now();
    BareProcess bare({"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind",
                      address, "--directory", spec.task_folder.string()});
    if (!bare.ok()) Die("spawning the bare server");
    WaitHealthy(prober);
    peer.samples.push_back(MsSince(t2));
    bare.Stop();

    // `/bin/sh -c CMD` (dash) does not exec a lone command, so the stop signal reaches the
    // shell, not the server; with `exec` it reaches the server. Both are measured.
    spec.id = "http-exec-" + std::to_string(i);
    spec.task_folder = paths::TaskDir(home, "bench", spec.id);
    spec.log_path = paths::TaskLog(home, "bench", "http", spec.id);
    spec.command = "exec " + server;
    auto exec_handle = rt.Start(spec);
    if (!exec_handle.ok()) Die("starting the exec task", exec_handle.error());
    Guard exec_guard{rt, *exec_handle};
    WaitHealthy(prober);
    auto t3 = Clock::now();
    exec_guard.stopped = true;
    if (auto s = rt.Stop(*exec_handle); !s.ok()) Die("stopping the exec task", s.error());
    stop_exec.samples.push_back(MsSince(t3));
  }
  report.Ratio("task.start_healthy/peer", "task.start_healthy", "peer.spawn_healthy");
}

void BenchDatabases(const fs::path& home, int runs, Report& report) {
  // The base address of this (temporary) home, on a free port: never the machine's 5432 user.
  std::string address = runtime::BaseAddress(home);
  runtime::BindProbe probe;
  int port = 55432;
  while (!probe.CheckFree(address, port).ok() && port < 55532) ++port;
  auto bin_dir = resources::FindPostgresBinDir();
  if (!bin_dir.ok()) Die("finding PostgreSQL", bin_dir.error());
  resources::PostgresCluster cluster(home, {.listen_address = address, .port = port});
  struct Guard {
    resources::PostgresCluster& c;
    ~Guard() { (void)c.Destroy(); }
  } guard{cluster};

  auto t0 = Clock::now();
  if (auto s = cluster.Init(); !s.ok()) Die("initdb", s.error());
  report.Add("cluster.initdb", "initdb of the base cluster (once)").samples.push_back(MsSince(t0));
  auto t1 = Clock::now();
  if (auto s = cluster.Start(); !s.ok()) Die("starting the cluster", s.error());
  report.Add("cluster.start", "pg_ctl start -w of the base cluster (once)")
      .samples.push_back(MsSince(t1));

  auto admin = resources::ConnectPostgresAdmin(home, port);
  if (!admin.ok()) Die("connecting", admin.error());
  resources::EnvironmentDatabases dbs(**admin, address, port);
  Measure& create =
      report.Add("db.create", "CreateEnvironmentDatabase: role, password, database, grants");
  Measure& drop = report.Add("db.drop", "DropEnvironmentDatabase: database (forced), role");
  Measure& peer_create =
      report.Add("peer.psql_createdb", "psql -c \"CREATE ROLE ... LOGIN PASSWORD\" + createdb -O");
  Measure& peer_drop = report.Add("peer.dropdb_psql", "dropdb --force + psql -c \"DROP ROLE\"");
  fs::path socket_dir = cluster.SocketDir();
  for (int i = 0; i < runs; ++i) {
    std::string env = "bench-" + std::to_string(i);
    auto t2 = Clock::now();
    auto creds = dbs.CreateEnvironmentDatabase(env, env + "-db");
    if (!creds.ok()) Die("creating a database", creds.error());
    create.samples.push_back(MsSince(t2));
    auto t3 = Clock::now();
    if (auto s = dbs.DropEnvironmentDatabase(env, env + "-db"); !s.ok())
      Die("dropping a database", s.error());
    drop.samples.push_back(MsSince(t3));

    std::string role = "peer_" + std::to_string(i);
    std::string db = "peer-" + std::to_string(i) + "-db";
    auto t4 = Clock::now();
    PgTool(*bin_dir, socket_dir, port,
           {"psql", "-X", "-q", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c",
            "CREATE ROLE " + role + " LOGIN PASSWORD '" + resources::RandomPassword() + "'"});
    PgTool(*bin_dir, socket_dir, port, {"createdb", "-O", role, db});
    peer_create.samples.push_back(MsSince(t4));
    auto t5 = Clock::now();
    PgTool(*bin_dir, socket_dir, port, {"dropdb", "--force", db});
    PgTool(
        *bin_dir, socket_dir, port,
        {"psql", "-X", "-q", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "DROP ROLE " + role});
    peer_drop.samples.push_back(MsSince(t5));
  }
  admin->reset();  // the connection must go before the server does
  auto t6 = Clock::now();
  if (auto s = cluster.Stop(); !s.ok()) Die("stopping the cluster", s.error());
  report.Add("cluster.stop", "pg_ctl stop -m fast (once)").samples.push_back(MsSince(t6));
  report.Ratio("db.create/peer", "db.create", "peer.psql_createdb");
  report.Ratio("db.drop/peer", "db.drop", "peer.dropdb_psql");
}

void BenchRedis(const fs::path& home, const runtime::AddressBlock& block, int runs,
                Report& report) {
  Measure& start = report.Add("redis.start", "RedisInstance::Start until PING answers");
  Measure& stop = report.Add("redis.stop", "RedisInstance::Stop (SHUTDOWN SAVE)");
  Measure& peer =
      report.Add("peer.redis_start", "bare redis-server --port (no config, no password) to PING");
  const std::string host = block.RedisAddress();
  const int port = 6379;
  for (int i = 0; i < runs; ++i) {
    resources::RedisInstance redis(home, "bench-r" + std::to_string(i),
                                   {.host = host, .port = port});
    struct Guard {
      resources::RedisInstance& r;
      ~Guard() { (void)r.Destroy(); }
    } guard{redis};
    auto t0 = Clock::now();
    if (auto s = redis.Start(); !s.ok()) Die("starting Redis", s.error());
    start.samples.push_back(MsSince(t0));
    auto t1 = Clock::now();
    if (auto s = redis.Stop(); !s.ok()) Die("stopping Redis", s.error());
    stop.samples.push_back(MsSince(t1));

    auto t2 = Clock::now();
    BareProcess bare({"/usr/bin/redis-server", "--bind", host, "--port", std::to_string(port),
                      "--save", "", "--appendonly", "no", "--dir", redis.dir().string()});
    bool answered = false;
    while (bare.ok() && !answered && MsSince(t2) < 15000) {
      auto reply = resources::RedisCommands(host, port, "", {{"PING"}}, 1s);
      answered = reply.ok() && reply->text == "PONG";
      if (!answered) std::this_thread::sleep_for(2ms);
    }
    if (!answered) Die("the bare redis-server did not answer within 15s");
    peer.samples.push_back(MsSince(t2));
  }
  report.Ratio("redis.start/peer", "redis.start", "peer.redis_start");
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--runs N]\n", argv[0]);
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  signal(SIGPIPE, SIG_IGN);

  TempHome home;
  runtime::BindProbe probe;
  auto block = runtime::AllocateBlock(home.path(), {}, [&](const runtime::AddressBlock& b) {
    return probe.CheckFree(b.Address(10), 8000).ok() &&
           probe.CheckFree(b.RedisAddress(), 6379).ok();
  });
  if (!block.ok()) {
    std::fprintf(stderr, "adhoc_runtime_bench: choosing addresses: %s\n",
                 block.error().message().c_str());
    return 1;
  }

  Report report;
  try {
    BenchTasks(home.path(), *block, runs, report);
    BenchDatabases(home.path(), runs, report);
    BenchRedis(home.path(), *block, runs, report);
  } catch (const BenchFailure& failure) {
    std::fprintf(stderr, "adhoc_runtime_bench: %s\n", failure.message.c_str());
    return 1;
  }
  report.Print(runs);
  return 0;
}
