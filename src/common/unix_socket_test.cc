#include "common/unix_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/test_support.h"

namespace adhoc {
namespace {

using namespace std::chrono_literals;

// A listening socket at `path` (the server's end, by hand: this is what is tested against).
int Listen(const std::filesystem::path& path, int backlog = 4) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(listen(fd, backlog), 0);
  return fd;
}

TEST(UnixSocketTest, NothingListeningIsNotFoundNamingThePath) {
  testutil::TempDir dir;
  auto s = UnixSocket::Connect(dir.path() / "none.sock");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(s.error().message().find("none.sock"), std::string::npos) << s.error().message();
}

TEST(UnixSocketTest, APathTooLongIsRefusedNotCutToAnotherPath) {
  testutil::TempDir dir;
  // The first 107 bytes of the long path name a socket that does listen: a cut path would
  // reach it.
  std::string base = (dir.path() / "").string();
  std::string name(107 - base.size(), 's');
  int listener = Listen(base + name);
  auto s = UnixSocket::Connect(base + name + "-longer");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(s.error().message().find("longer than 107 bytes"), std::string::npos)
      << s.error().message();
  EXPECT_TRUE(UnixSocket::Connect(base + name).ok());
  close(listener);
}

TEST(UnixSocketTest, LinesComeOneAtATimeWithTheRestKept) {
  testutil::TempDir dir;
  int listener = Listen(dir.path() / "s.sock");
  std::thread server([&] {
    int c = accept(listener, nullptr, nullptr);
    char buf[64];
    ssize_t n = read(c, buf, sizeof buf);  // the request
    ASSERT_GT(n, 0);
    std::string reply = "first\nsec";
    (void)write(c, reply.data(), reply.size());
    std::this_thread::sleep_for(50ms);  // the second line comes in two reads
    reply = "ond\nthi";
    (void)write(c, reply.data(), reply.size());
    close(c);
  });
  auto s = UnixSocket::Connect(dir.path() / "s.sock", 2s);
  ASSERT_TRUE(s.ok()) << s.error().message();
  ASSERT_TRUE(s->SendAll("hello\n").ok());
  std::string buffer;
  auto deadline = UnixSocket::Clock::now() + 10s;
  EXPECT_EQ(s->ReadLine(buffer, deadline), "first");
  EXPECT_EQ(s->ReadLine(buffer, deadline), "second");
  // The end of the stream without a newline: no line, and what came is kept.
  EXPECT_EQ(s->ReadLine(buffer, deadline), std::nullopt);
  EXPECT_EQ(buffer, "thi");
  server.join();
  close(listener);
}

TEST(UnixSocketTest, ReadLineGivesUpAtItsDeadlineAndPastItsSizeLimit) {
  testutil::TempDir dir;
  int listener = Listen(dir.path() / "s.sock");
  auto s = UnixSocket::Connect(dir.path() / "s.sock");
  ASSERT_TRUE(s.ok());
  int c = accept(listener, nullptr, nullptr);
  std::string buffer;
  // Silence: nullopt once the deadline passes, not before.
  auto start = UnixSocket::Clock::now();
  EXPECT_EQ(s->ReadLine(buffer, start + 100ms), std::nullopt);
  EXPECT_GE(UnixSocket::Clock::now() - start, 100ms);
  // Endless bytes without a newline: nullopt past the limit.
  std::string junk(4096, 'x');
  for (int i = 0; i < 4; ++i) (void)write(c, junk.data(), junk.size());
  EXPECT_EQ(s->ReadLine(buffer, UnixSocket::Clock::now() + 10s, 8192), std::nullopt);
  EXPECT_GT(buffer.size(), 8192u);
  close(c);
  close(listener);
}

TEST(UnixSocketTest, SendingToAClosedPeerIsAnErrorNotASignal) {
  testutil::TempDir dir;
  int listener = Listen(dir.path() / "s.sock");
  auto s = UnixSocket::Connect(dir.path() / "s.sock");
  ASSERT_TRUE(s.ok());
  close(accept(listener, nullptr, nullptr));
  std::string big(1 << 20, 'x');
  EXPECT_FALSE(s->SendAll(big).ok());  // EPIPE, and the test process lives on
  // Moved from: the new owner closes it, the old one holds nothing.
  UnixSocket moved = std::move(*s);
  EXPECT_EQ(s->fd(), -1);
  EXPECT_GE(moved.fd(), 0);
  close(listener);
}

}  // namespace
}  // namespace adhoc
