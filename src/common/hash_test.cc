#include "common/hash.h"

#include <gtest/gtest.h>

namespace adhoc {
namespace {

TEST(HashTest, Sha256KnownValue) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, RandomHexIsRandomAndSized) {
  std::string a = RandomHex(16), b = RandomHex(16);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace adhoc
