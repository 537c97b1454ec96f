#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <thread>

#include "runtime/logs.h"
#include "runtime/test_util.h"

namespace adhoc::runtime {
namespace {

using namespace std::chrono_literals;
using testing::CleanEnv;
using testing::ReadFile;
using testing::TaskReaper;
using testing::TempDir;
using testing::UniqueId;

class RuntimeTest : public ::testing::Test {
 protected:
  RuntimeTest() : runtime_(Options()) {}

  static LocalRuntimeOptions Options() {
    LocalRuntimeOptions o;
    o.shim_binary = ADHOC_BINARY;
    return o;
  }

  TaskSpec Spec(const std::string& command) {
    TaskSpec s;
    s.id = UniqueId("task");
    s.task_folder = dir_.path() / "tasks" / s.id;
    s.log_path = dir_.path() / "logs" / (s.id + ".log");
    s.command = command;
    s.env = CleanEnv();
    s.stop_timeout = 5s;
    return s;
  }

  Result<TaskHandle> Start(const TaskSpec& spec) {
    auto h = runtime_.Start(spec);
    if (h.ok()) reaper_.Add(*h);
    return h;
  }

  std::string Log(const TaskSpec& spec) { return ReadFile(spec.log_path); }

  TempDir dir_;
  TaskReaper reaper_;
  LocalRuntime runtime_;
};

TEST_F(RuntimeTest, RunsWithExactEnvAndFolderAndRecordsExit) {
  TaskSpec spec = Spec("echo \"foo=$FOO home=$HOME pwd=$(pwd)\"; echo to-stderr >&2; exit 3");
  spec.env["FOO"] = "bar";
  std::filesystem::create_directories(dir_.path() / "wd");
  spec.working_folder = dir_.path() / "wd";
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_GT(h->task.pid, 0);
  EXPECT_NE(h->task.pid, h->shim.pid);
  TaskState s = runtime_.Wait(*h, 20s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 3);
  std::string log = Log(spec);
  EXPECT_NE(log.find("foo=bar home=/root pwd=" + (dir_.path() / "wd").string()), std::string::npos)
      << log;
  EXPECT_NE(log.find("to-stderr"), std::string::npos) << log;
}

// A task's records hold its environment (secrets): its folder, records and log are its
// owner's alone, even when the caller made the folder open to all.
TEST_F(RuntimeTest, TheTasksFolderRecordsAndLogAreItsOwnersOnly) {
  TaskSpec spec = Spec("echo \"$SECRET_KEY\"");
  spec.env["SECRET_KEY"] = "not-for-others";
  std::filesystem::create_directories(spec.task_folder);
  chmod(spec.task_folder.c_str(), 0755);
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(runtime_.Wait(*h, 20s).kind, TaskState::kExited);
  auto mode = [](const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  };
  EXPECT_EQ(mode(spec.task_folder), 0700u);
  for (const char* record : {kLaunchFile, kShimFile, kExitFile})
    EXPECT_EQ(mode(spec.task_folder / record), 0600u) << record;
  EXPECT_EQ(mode(spec.log_path), 0600u);
  EXPECT_NE(ReadFile(spec.task_folder / kLaunchFile).find("not-for-others"), std::string::npos);
}

TEST_F(RuntimeTest, LogLinesCarryTimestamps) {
  TaskSpec spec = Spec("echo one; echo two");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(runtime_.Wait(*h, 20s).kind, TaskState::kExited);
  auto lines = ReadLastLines(spec.log_path, 10);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].text, "one");
  // RFC 3339 UTC with milliseconds, e.g. 2024-05-01T12:34:56.789Z
  EXPECT_TRUE(std::regex_match((*lines)[1].raw.substr(0, 24),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << (*lines)[1].raw;
  auto age = std::chrono::system_clock::now() - (*lines)[1].time;
  EXPECT_LT(age, std::chrono::hours(1));
  EXPECT_GT(age, -std::chrono::hours(1));
}

TEST_F(RuntimeTest, LogRotatesBySize) {
  TaskSpec spec =
      Spec("i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done");
  spec.log_max_bytes = 2000;
  spec.log_keep = 2;
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(runtime_.Wait(*h, 20s).kind, TaskState::kExited);
  auto size = [](const std::filesystem::path& p) { return std::filesystem::file_size(p); };
  ASSERT_TRUE(std::filesystem::exists(spec.log_path.string() + ".1"));
  ASSERT_TRUE(std::filesystem::exists(spec.log_path.string() + ".2"));
  EXPECT_FALSE(std::filesystem::exists(spec.log_path.string() + ".3"));
  EXPECT_LE(size(spec.log_path), 2000u);
  EXPECT_LE(size(spec.log_path.string() + ".1"), 2000u);
  auto last = ReadLastLines(spec.log_path, 1);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ(last->back().text, "line-199-xxxxxxxxxxxxxxxxxxxxxxxx");
  // The rotated files hold the lines just before the current file's first one.
  auto many = ReadLastLines(spec.log_path, 40);
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->front().text, "line-160-xxxxxxxxxxxxxxxxxxxxxxxx");
}

TEST_F(RuntimeTest, MissingCommandIsAClearError) {
  auto h = Start(Spec("gunicornx -b 127.0.0.1:8000 app"));
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message().find("command not found: gunicornx"), std::string::npos)
      << h.error().message();
}

TEST_F(RuntimeTest, PortInUseIsAClearError) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, "127.3.4.10", &sa.sin_addr);
  sa.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int port = ntohs(sa.sin_port);
  TaskSpec spec = Spec("sleep 30");
  spec.address = "127.3.4.10";
  spec.port = port;
  auto h = Start(spec);
  close(fd);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().message(), "127.3.4.10:" + std::to_string(port) + " is already in use");
}

TEST_F(RuntimeTest, StopSendsTheSignalToTheMainProcessFirst) {
  // The child traps TERM and records it; the main records TERM and waits for its child.
  // The child gets no TERM (it must finish its job), the main does; after the timeout
  // the whole group is killed.
  std::string marks = (dir_.path() / "marks").string();
  TaskSpec spec =
      Spec("sh -c 'trap \"echo child-term >> " + marks + "\" TERM; echo child-up >> " + marks +
           "; while true; do sleep 0.1; done' & "
           "trap 'echo main-term >> " +
           marks +
           "' TERM; "
           "while ! grep -q child-up " +
           marks +
           " 2>/dev/null; do sleep 0.05; done; echo ready; "
           "while true; do wait; done");
  spec.stop_timeout = 1500ms;
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  for (int i = 0; i < 400 && Log(spec).find("ready") == std::string::npos; ++i)
    std::this_thread::sleep_for(25ms);
  ASSERT_NE(Log(spec).find("ready"), std::string::npos);
  ASSERT_TRUE(runtime_.Stop(*h).ok());
  TaskState s = runtime_.Inspect(*h);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.signal, SIGKILL);
  std::string m = ReadFile(marks);
  EXPECT_NE(m.find("main-term"), std::string::npos) << m;
  EXPECT_EQ(m.find("child-term"), std::string::npos) << m;
  EXPECT_FALSE(IsAlive(h->task));
}

TEST_F(RuntimeTest, StopEndsAnObedientTaskWithItsSignal) {
  TaskSpec spec = Spec("exec sleep 60");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_TRUE(runtime_.Stop(*h).ok());
  TaskState s = runtime_.Inspect(*h);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.signal, SIGTERM);
  EXPECT_TRUE(runtime_.Stop(*h).ok()) << "stopping an ended task succeeds";
}

TEST_F(RuntimeTest, ChildrenHoldingThePipeDoNotHangTheShim) {
  TaskSpec spec = Spec("sleep 300 & echo main-done");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  TaskState s = runtime_.Wait(*h, 30s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 0);
  EXPECT_NE(Log(spec).find("main-done"), std::string::npos);
}

TEST_F(RuntimeTest, OneOffRunStreamsLinesAndReturnsExit7) {
  std::vector<std::string> lines;
  TaskSpec spec = Spec("echo hello; echo world; exit 7");
  auto r = runtime_.RunToCompletion(spec, 30s, [&](const std::string& l) { lines.push_back(l); });
  reaper_.AddFolder(spec.task_folder);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->code, 7);
  EXPECT_EQ(r->ShellCode(), 7);
  EXPECT_EQ(lines, (std::vector<std::string>{"hello", "world"}));
}

TEST_F(RuntimeTest, OneOffRunTimesOut) {
  TaskSpec spec = Spec("exec sleep 60");
  auto r = runtime_.RunToCompletion(spec, 300ms, nullptr);
  reaper_.AddFolder(spec.task_folder);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("timed out"), std::string::npos);
  auto h = runtime_.Adopt(spec.task_folder);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(runtime_.Inspect(*h).kind, TaskState::kExited);
}

TEST_F(RuntimeTest, TaskOutlivesItsStarterAndIsAdoptedAgain) {
  TaskSpec spec = Spec("echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; exit 5");
  // Started from a child process that then exits at once, as a CLI or a killed control
  // plane would.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    LocalRuntime runtime(Options());
    auto h = runtime.Start(spec);
    _exit(h.ok() ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  reaper_.AddFolder(spec.task_folder);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  auto h = runtime_.Adopt(spec.task_folder);
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_EQ(runtime_.Inspect(*h).kind, TaskState::kRunning);
  EXPECT_TRUE(IsAlive(h->shim));
  std::ofstream(spec.task_folder / "go").put('\n');
  TaskState s = runtime_.Wait(*h, 20s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 5);
  std::string log = Log(spec);
  EXPECT_NE(log.find("first"), std::string::npos);
  EXPECT_NE(log.find("second"), std::string::npos) << "the log continues after the starter left";
}

TEST_F(RuntimeTest, ATaskWhoseShimWasKilledIsEndedAndRecordedSoItCanBeReplaced) {
  TaskSpec spec = Spec("sleep 60");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(kill(h->shim.pid, SIGKILL), 0);
  for (int i = 0; i < 200 && IsAlive(h->shim); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(IsAlive(h->task)) << "the task outlives its shim";
  TaskState s = runtime_.Inspect(*h);
  EXPECT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.signal, SIGKILL);
  EXPECT_FALSE(IsAlive(h->task)) << "a half-dead task is ended, not left holding its port";
  EXPECT_EQ(runtime_.Inspect(*h).kind, TaskState::kExited);
}

TEST_F(RuntimeTest, AdoptingAnEmptyFolderFails) {
  std::filesystem::create_directories(dir_.path() / "nothing");
  EXPECT_FALSE(runtime_.Adopt(dir_.path() / "nothing").ok());
}

TEST_F(RuntimeTest, ATaskWithAReusedPidIsNotMistakenForTheOldOne) {
  TaskSpec spec = Spec("exit 0");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(runtime_.Wait(*h, 20s).kind, TaskState::kExited);
  // Same pid as a live process (ourselves) but another start time: not ours.
  TaskHandle fake = *h;
  fake.task_folder = dir_.path() / "no-such-folder";
  fake.task = {getpid(), Self().start_time + 1};
  fake.shim = fake.task;
  EXPECT_EQ(runtime_.Inspect(fake).kind, TaskState::kVanished);
  fake.task = Self();
  fake.shim = Self();
  EXPECT_EQ(runtime_.Inspect(fake).kind, TaskState::kRunning);
}

TEST(CommandWordTest, FindsTheCommandOrLeavesItToTheShell) {
  EXPECT_EQ(CommandWord("gunicorn -b x app"), "gunicorn");
  EXPECT_EQ(CommandWord("FOO=1 exec celery worker"), "celery");
  EXPECT_EQ(CommandWord("  /usr/bin/python3 manage.py"), "/usr/bin/python3");
  EXPECT_EQ(CommandWord("cd x && ls"), "");
  EXPECT_EQ(CommandWord("while true; do :; done"), "");
  EXPECT_EQ(CommandWord("\"quoted\" x"), "");
  EXPECT_EQ(CommandWord("$CMD"), "");
}

TEST(CommandWordTest, ChecksPathAndWorkingFolder) {
  TempDir dir;
  std::ofstream(dir.path() / "run.sh") << "#!/bin/sh\n";
  std::filesystem::permissions(dir.path() / "run.sh", std::filesystem::perms::owner_all);
  EXPECT_TRUE(CheckCommandExists("./run.sh", "/bin", dir.path()).ok());
  EXPECT_TRUE(CheckCommandExists("sh -c true", "/usr/bin:/bin", dir.path()).ok());
  EXPECT_FALSE(CheckCommandExists("sh", "/nonexistent", dir.path()).ok());
  EXPECT_FALSE(CheckCommandExists("./missing.sh", "/bin", dir.path()).ok());
}

}  // namespace
}  // namespace adhoc::runtime

namespace adhoc::runtime {
namespace {

TEST(ExecFormTest, ASimpleCommandReplacesTheShell) {
  EXPECT_EQ(ExecForm("gunicorn -b 127.0.0.1:8000 app.wsgi"),
            "exec gunicorn -b 127.0.0.1:8000 app.wsgi");
  EXPECT_EQ(ExecForm("nginx -p /t -c nginx.conf -g 'daemon off;'"),
            "exec nginx -p /t -c nginx.conf -g 'daemon off;'");
  EXPECT_EQ(ExecForm("/bin/echo \"a;b\" x"), "exec /bin/echo \"a;b\" x");
}

TEST(ExecFormTest, AnythingElseIsLeftToTheShell) {
  EXPECT_EQ(ExecForm("echo a; exit 3"), "echo a; exit 3");
  EXPECT_EQ(ExecForm("a && b"), "a && b");
  EXPECT_EQ(ExecForm("a | b"), "a | b");
  EXPECT_EQ(ExecForm("sleep 300 & echo x"), "sleep 300 & echo x");
  EXPECT_EQ(ExecForm("exec sleep 60"), "exec sleep 60");
  EXPECT_EQ(ExecForm("FOO=1 run"), "FOO=1 run");
  EXPECT_EQ(ExecForm("if true; then x; fi"), "if true; then x; fi");
  EXPECT_EQ(ExecForm("i=0; while x; do y; done"), "i=0; while x; do y; done");
  EXPECT_EQ(ExecForm(""), "");
}

TEST_F(RuntimeTest, TheStopSignalReachesTheProgramOfASimpleCommand) {
  // Without `exec`, dash would keep itself as the main process and the program would only
  // see the final SIGKILL.
  std::string marks = (dir_.path() / "marks").string();
  TaskSpec spec = Spec(
      "/usr/bin/python3 -c \"import signal,sys,time\n"
      "def stop(*a):\n"
      "  open('" +
      marks +
      "','a').write('term\\n'); sys.exit(0)\n"
      "signal.signal(signal.SIGTERM, stop)\n"
      "open('" +
      marks +
      "','a').write('up\\n')\n"
      "time.sleep(60)\"");
  spec.stop_timeout = std::chrono::seconds(10);
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  for (int i = 0; i < 200 && !std::filesystem::exists(marks); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(runtime_.Stop(*h).ok());
  std::ifstream in(marks);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("term"), std::string::npos) << all;
  auto exit = ReadExitRecord(h->task_folder);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 0);
}

}  // namespace
}  // namespace adhoc::runtime
