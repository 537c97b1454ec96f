#include "runtime/warm_start.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "runtime/runtime.h"
#include "runtime/test_util.h"

namespace adhoc::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::CleanEnv;
using testing::ReadFile;
using testing::TaskReaper;
using testing::TempDir;
using testing::UniqueId;

constexpr const char* kPython = "/usr/bin/python3";

// A real fork server (the program this binary carries, under Debian's python3), started as a
// task like the control plane starts one, and tasks started through it by real shims.
class WarmStartTest : public ::testing::Test {
 protected:
  WarmStartTest() : runtime_(Options()) {}

  static LocalRuntimeOptions Options() {
    LocalRuntimeOptions o;
    o.shim_binary = ADHOC_BINARY;
    o.warn = [](const std::string&) {};
    return o;
  }

  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << "no " << kPython;
    program_ = dir_.path() / "fork_server.py";
    std::ofstream(program_) << ForkServerProgram();
    socket_ = dir_.path() / "server" / "socket";
    fs::create_directories(dir_.path() / "wd");
    std::ofstream(dir_.path() / "wd" / "report.py")
        << "import atexit, json, os, sys, time\n"
           "atexit.register(lambda: print('atexit ran', flush=True))\n"
           "print('preloaded', 'xml.dom.minidom' in sys.modules, flush=True)\n"
           "print('foo', os.environ.get('FOO'), 'cwd', os.getcwd(), 'ppid', os.getppid(),\n"
           "      'argv', sys.argv[1:], flush=True)\n"
           "if sys.argv[1:2] == ['wait']:\n"
           "    time.sleep(120)\n"
           "if sys.argv[1:2] == ['pipe']:\n"
           "    r, w = os.pipe()\n"
           "    os.close(r)\n"
           "    try:\n"
           "        os.write(w, b'x')\n"
           "    except BrokenPipeError:\n"
           "        print('broken pipe raised', flush=True)\n"
           "if sys.argv[1:2] == ['hog']:\n"
           "    b = bytearray(200 * 1024 * 1024)\n"
           "    print('survived', flush=True)\n"
           "sys.exit(3)\n";
  }

  // The server's task folder is the socket's folder, as the control plane makes it.
  void StartServer(bool wait_until_ready = true, const std::string& modules = "") {
    TaskSpec s = Spec(std::string(kPython) + " " + program_.string() + " " + socket_.string() +
                      " xml.dom.minidom no_such_module_here " + modules);
    s.task_folder = socket_.parent_path();
    auto h = runtime_.Start(s);
    ASSERT_TRUE(h.ok()) << h.error().message();
    reaper_.Add(*h);
    server_ = *h;
    server_log_ = s.log_path;
    if (!wait_until_ready) return;
    for (int i = 0; i < 400 && !fs::exists(socket_); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(fs::exists(socket_)) << ReadFile(server_log_);
  }

  TaskSpec Spec(const std::string& command) {
    TaskSpec s;
    s.id = UniqueId("warm");
    s.task_folder = dir_.path() / "tasks" / s.id;
    s.log_path = dir_.path() / "logs" / (s.id + ".log");
    s.command = command;
    s.env = CleanEnv();
    s.working_folder = dir_.path() / "wd";
    s.stop_timeout = 5s;
    return s;
  }

  TaskSpec Forked(const std::string& command) {
    TaskSpec s = Spec(command);
    s.fork_server = socket_;
    s.env["FOO"] = "bar";
    return s;
  }

  Result<TaskHandle> Start(const TaskSpec& spec) {
    auto h = runtime_.Start(spec);
    if (h.ok()) reaper_.Add(*h);
    return h;
  }

  bool WaitForLog(const TaskSpec& spec, const std::string& text) {
    for (int i = 0; i < 400; ++i) {
      if (ReadFile(spec.log_path).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  TempDir dir_;
  TaskReaper reaper_;
  LocalRuntime runtime_;
  fs::path program_, socket_, server_log_;
  TaskHandle server_;
};

TEST_F(WarmStartTest, AScriptIsForkedFromTheServerWithItsOwnEnvironmentFolderAndArguments) {
  StartServer();
  EXPECT_NE(ReadFile(server_log_).find("preloading no_such_module_here failed, skipped"),
            std::string::npos)
      << ReadFile(server_log_);
  TaskSpec spec = Forked(std::string(kPython) + " report.py one 'two words'");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  TaskState s = runtime_.Wait(*h, 30s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 3) << s.exit.ToString();
  std::string log = ReadFile(spec.log_path);
  // Its parent is the server, and the server's module is already there: it was forked.
  EXPECT_NE(log.find("preloaded True"), std::string::npos) << log;
  EXPECT_NE(log.find("ppid " + std::to_string(server_.task.pid)), std::string::npos) << log;
  EXPECT_NE(log.find("foo bar cwd " + (dir_.path() / "wd").string()), std::string::npos) << log;
  EXPECT_NE(log.find("argv ['one', 'two words']"), std::string::npos) << log;
  EXPECT_NE(log.find("atexit ran"), std::string::npos) << "it ends as an interpreter does";
}

// As an interpreter starts: SIGPIPE ignored, so a write to a closed socket raises (a gunicorn
// worker answering a client that left must not die of it).
TEST_F(WarmStartTest, AForkedProgramGetsBrokenPipeErrorsNotSigpipe) {
  StartServer();
  TaskSpec spec = Forked(std::string(kPython) + " report.py pipe");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  TaskState s = runtime_.Wait(*h, 30s);
  EXPECT_EQ(s.exit.code, 3) << s.exit.ToString();
  EXPECT_NE(ReadFile(spec.log_path).find("broken pipe raised"), std::string::npos)
      << ReadFile(spec.log_path);
  EXPECT_NE(ReadFile(spec.log_path).find("ppid " + std::to_string(server_.task.pid)),
            std::string::npos);
}

TEST_F(WarmStartTest, AServerStillImportingIsWaitedFor) {
  std::ofstream(dir_.path() / "wd" / "slow_import.py") << "import time\ntime.sleep(1.5)\n";
  StartServer(/*wait_until_ready=*/false, "slow_import");
  TaskSpec spec = Forked(std::string(kPython) + " report.py");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(runtime_.Wait(*h, 30s).exit.code, 3);
  EXPECT_NE(ReadFile(spec.log_path).find("ppid " + std::to_string(server_.task.pid)),
            std::string::npos)
      << ReadFile(spec.log_path) << ReadFile(spec.task_folder / kShimLogFile);
}

TEST_F(WarmStartTest, AServerWithAThreadForksNothing) {
  std::ofstream(dir_.path() / "wd" / "starts_thread.py")
      << "import threading, time\n"
         "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n";
  StartServer(true, "starts_thread");
  TaskSpec spec = Forked(std::string(kPython) + " report.py");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(runtime_.Wait(*h, 30s).exit.code, 3);
  EXPECT_NE(ReadFile(spec.log_path).find("preloaded False"), std::string::npos)
      << "started by exec";
  EXPECT_NE(ReadFile(spec.task_folder / kShimLogFile).find("started a thread"), std::string::npos)
      << ReadFile(spec.task_folder / kShimLogFile);
}

TEST_F(WarmStartTest, ACommandTheServerDoesNotRunStartsByExec) {
  StartServer();
  TaskSpec spec = Forked("echo \"shell $FOO\"; exit 4");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  TaskState s = runtime_.Wait(*h, 30s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 4);
  EXPECT_NE(ReadFile(spec.log_path).find("shell bar"), std::string::npos);
  EXPECT_NE(ReadFile(spec.task_folder / kShimLogFile).find("the command needs a shell"),
            std::string::npos)
      << ReadFile(spec.task_folder / kShimLogFile);
}

TEST_F(WarmStartTest, WithoutAServerTheTaskStartsByExec) {
  TaskSpec spec = Forked(std::string(kPython) + " report.py");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  TaskState s = runtime_.Wait(*h, 30s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 3);
  EXPECT_NE(ReadFile(spec.log_path).find("preloaded False"), std::string::npos);
}

TEST_F(WarmStartTest, StopReachesAForkedTaskAndItsSignalIsRecorded) {
  StartServer();
  TaskSpec spec = Forked(std::string(kPython) + " report.py wait");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_TRUE(WaitForLog(spec, "ppid " + std::to_string(server_.task.pid)))
      << ReadFile(spec.log_path);
  ASSERT_TRUE(runtime_.Stop(*h).ok());
  TaskState s = runtime_.Inspect(*h);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.signal, SIGTERM) << s.exit.ToString();
  EXPECT_FALSE(IsAlive(h->task));
  EXPECT_TRUE(IsAlive(server_.task)) << "the server serves on";
}

TEST_F(WarmStartTest, AForkedTaskOutlivesItsServerAndItsEndIsStillRecorded) {
  StartServer();
  TaskSpec spec = Forked(std::string(kPython) + " report.py wait");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_TRUE(WaitForLog(spec, "ppid " + std::to_string(server_.task.pid)));
  kill(server_.task.pid, SIGKILL);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(runtime_.Inspect(*h).kind, TaskState::kRunning);
  ASSERT_TRUE(runtime_.Stop(*h).ok());
  TaskState s = runtime_.Inspect(*h);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.code, 255) << "unknown: it went to nobody";
  EXPECT_NE(ReadFile(spec.task_folder / kShimLogFile).find("exit status will not be known"),
            std::string::npos);
}

TEST_F(WarmStartTest, GarbageToTheServerIsRefusedAndItServesOn) {
  StartServer();
  for (std::string garbage : {std::string("not json\n"), std::string("[1,2]\n"),
                              std::string("{\"command\": 5}\n"), std::string(200000, 'x')}) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    (void)!send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    char reply[512] = {};
    ssize_t n = recv(fd, reply, sizeof reply - 1, 0);
    close(fd);
    EXPECT_NE(std::string(reply, n > 0 ? n : 0).find("\"ok\": false"), std::string::npos)
        << garbage.substr(0, 40);
  }
  TaskSpec spec = Forked(std::string(kPython) + " report.py");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(runtime_.Wait(*h, 30s).exit.code, 3);
  EXPECT_NE(ReadFile(spec.log_path).find("preloaded True"), std::string::npos);
}

TEST_F(WarmStartTest, AForkedTaskIsInItsMemoryLimitBeforeItRuns) {
  CgroupSupport support = DetectCgroups();
  if (!support.memory.available) GTEST_SKIP() << support.Summary();
  StartServer();
  TaskSpec spec = Forked(std::string(kPython) + " report.py hog");
  spec.memory_mib = 50;
  spec.limits_group = LimitsGroup(dir_.path(), "env");
  auto h = Start(spec);
  ASSERT_TRUE(h.ok()) << h.error().message();
  TaskState s = runtime_.Wait(*h, 60s);
  ASSERT_EQ(s.kind, TaskState::kExited);
  EXPECT_EQ(s.exit.signal, SIGKILL) << s.exit.ToString() << "\n" << ReadFile(spec.log_path);
  EXPECT_NE(ReadFile(spec.log_path).find("ppid " + std::to_string(server_.task.pid)),
            std::string::npos);
  EXPECT_EQ(ReadFile(spec.log_path).find("survived"), std::string::npos);
  EXPECT_TRUE(IsAlive(server_.task)) << "the server is outside the task's limit";
}

}  // namespace
}  // namespace adhoc::runtime
