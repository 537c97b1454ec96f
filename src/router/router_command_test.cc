// Runs the real `adhoc router` binary and feeds it through its Unix socket.
#include "router/router_command.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/paths.h"
#include "router/test_support.h"

namespace adhoc::router {
namespace {

using json = nlohmann::json;

// The child process; killed and reaped if the test ends early.
class ChildGuard {
 public:
  ~ChildGuard() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // Waits (bounded) for the exit status; -1 if it did not exit in time.
  int Wait(int max_ms = 10000) {
    for (int waited = 0; waited < max_ms; waited += 10) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  pid_t pid = -1;
};

TEST(RouterCommand, RealBinaryServesWhatItIsFed) {
  testing::TempDir home;
  testing::Upstream up;
  int err_pipe[2];
  ASSERT_EQ(pipe2(err_pipe, O_CLOEXEC), 0);
  ChildGuard child;
  child.pid = fork();
  ASSERT_GE(child.pid, 0);
  if (child.pid == 0) {
    dup2(err_pipe[1], 2);
    execl(ADHOC_BINARY, ADHOC_BINARY, "router", "--home", home.path().c_str(), "--listen",
          "127.0.0.1:0", "--threads", "2", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err_pipe[1]);
  testing::SetRecvTimeout(err_pipe[0], 10);
  // "adhoc router: listening on port N, feed ..." (read() on a pipe: bounded by poll below)
  std::string line;
  pollfd pfd{err_pipe[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos && poll(&pfd, 1, 10000) > 0) {
    char buf[256];
    ssize_t n = read(err_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  close(err_pipe[0]);
  size_t at = line.find("port ");
  ASSERT_NE(at, std::string::npos) << line;
  uint16_t port = static_cast<uint16_t>(std::atoi(line.c_str() + at + 5));
  ASSERT_GT(port, 0);

  // The pid file names the process; an empty table answers 404 until fed.
  std::ifstream pid_file(paths::RouterPid(home.path()));
  pid_t written = 0;
  pid_file >> written;
  EXPECT_EQ(written, child.pid);
  EXPECT_EQ(testing::Client(port).Get("demo.localhost", "/")->status(), 404);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, paths::RouterSocket(home.path()).c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  testing::SetRecvTimeout(fd, 10);
  testing::Reader reader(fd);
  json env = {{"name", "demo"},
              {"hosts", {"demo.localhost"}},
              {"status", "running"},
              {"routes",
               {{{"pattern", "/*"},
                 {"service", "web"},
                 {"targets", {{{"id", "t1"}, {"address", up.address()}}}}}}}};
  ASSERT_TRUE(testing::SendAll(fd, json({{"op", "replace_all"}, {"envs", {env}}}).dump() + "\n"));
  auto answer = reader.Until("\n");
  ASSERT_TRUE(answer);
  EXPECT_EQ(json::parse(*answer)["ok"], true) << *answer;

  auto r = testing::Client(port).Get("demo.localhost", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status(), 200);
  EXPECT_EQ(r->body, "hello from up");

  ASSERT_TRUE(testing::SendAll(fd, "{\"op\":\"stats\"}\n"));
  answer = reader.Until("\n");
  ASSERT_TRUE(answer);
  EXPECT_EQ(json::parse(*answer)["envs"]["demo"]["requests"], 1);
  close(fd);

  kill(child.pid, SIGTERM);
  EXPECT_EQ(child.Wait(), 0);
  EXPECT_FALSE(std::filesystem::exists(paths::RouterPid(home.path())));
}

TEST(RouterCommand, BadUsageExits2) {
  char arg0[] = "router", arg1[] = "--threads", arg2[] = "zero";
  char* argv[] = {arg0, arg1, arg2, nullptr};
  EXPECT_EQ(RouterMain(3, argv), 2);
}

}  // namespace
}  // namespace adhoc::router
