#include "runtime/addresses.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace adhoc::runtime {
namespace {

const auto kAllFree = [](const AddressBlock&) { return true; };

TEST(AddressesTest, HomesDrawFromRangesOfTheirOwn) {
  int a = HomeSecondOctet("/var/lib/adhoc");
  EXPECT_GE(a, 1);
  EXPECT_LE(a, 254);
  EXPECT_EQ(a, HomeSecondOctet("/var/lib/adhoc/"));  // same home, same range
  EXPECT_NE(HomeSecondOctet("/home/ann/.local/share/adhoc"),
            HomeSecondOctet("/home/bob/.local/share/adhoc"));
  EXPECT_EQ(BaseAddress("/var/lib/adhoc"), "127." + std::to_string(a) + ".0.1");
}

TEST(AddressesTest, AllocatesTheFirstFreeBlockNeverIn127_0) {
  std::string home = "/tmp/home-x";
  int h = HomeSecondOctet(home);
  auto first = AllocateBlock(home, {}, kAllFree);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, (AddressBlock{h, 1}));
  EXPECT_EQ(first->Cidr(), "127." + std::to_string(h) + ".1.0/24");
  auto second = AllocateBlock(home, {*first}, kAllFree);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, (AddressBlock{h, 2}));
  // A block someone else uses is skipped.
  auto third = AllocateBlock(home, {*first}, [&](const AddressBlock& b) { return b.third != 2; });
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->third, 3);
  // A full range spills into the next second octet, never 0.
  std::set<AddressBlock> full;
  for (int c = 1; c <= 255; ++c) full.insert({h, c});
  auto spill = AllocateBlock(home, full, kAllFree);
  ASSERT_TRUE(spill.ok());
  EXPECT_EQ(spill->second, h == 254 ? 1 : h + 1);
  EXPECT_FALSE(AllocateBlock(home, {}, [](const AddressBlock&) { return false; }).ok());
}

TEST(AddressesTest, TaskAddressesStartAtTen) {
  AddressBlock b{12, 3};
  EXPECT_EQ(b.RedisAddress(), "127.12.3.1");
  EXPECT_EQ(*AllocateTaskAddress(b, {}), "127.12.3.10");
  EXPECT_EQ(*AllocateTaskAddress(b, {"127.12.3.10", "127.12.3.11"}), "127.12.3.12");
  std::set<std::string> all;
  for (int i = 10; i <= 254; ++i) all.insert(b.Address(i));
  EXPECT_FALSE(AllocateTaskAddress(b, all).ok());
}

TEST(AddressesTest, ParsesBlocks) {
  EXPECT_EQ(*ParseBlock("127.12.3.0/24"), (AddressBlock{12, 3}));
  EXPECT_EQ(*ParseBlock("127.12.3"), (AddressBlock{12, 3}));
  EXPECT_FALSE(ParseBlock("10.0.0.0/24").ok());
  EXPECT_FALSE(ParseBlock("127.300.1.0/24").ok());
}

TEST(BindProbeTest, TellsAFreePortFromOneInUse) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, "127.3.4.11", &sa.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int port = ntohs(sa.sin_port);
  BindProbe probe;
  Status busy = probe.CheckFree("127.3.4.11", port);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().message(), "127.3.4.11:" + std::to_string(port) + " is already in use");
  close(fd);
  EXPECT_TRUE(probe.CheckFree("127.3.4.11", port).ok());
}

}  // namespace
}  // namespace adhoc::runtime
