// Loopback addresses for environments and tasks (DESIGN "Addresses").
//
// The whole of 127.0.0.0/8 is loopback on Linux. Each home owns a range of its own:
// the second octet H = 1 + hash(home path) % 254, and its blocks are 127.H.C.0/24 for
// C = 1..255 (then the following second octets, wrapping, if a home ever needs more).
// 127.0.x.x is never used (127.0.0.1 is everyone's). Within the home's first range:
//   127.H.0.1     the base address: the home's PostgreSQL (BaseAddress)
// Within an environment's block 127.H.C.0/24:
//   .1            the environment's Redis
//   .2 - .9       reserved
//   .10 - .254    one address per task
//
// The allocation functions are pure (thread-safe); AddressProbe touches the network.
#pragma once

#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "common/result.h"

namespace adhoc::runtime {

// One /24 of 127.0.0.0/8: 127.second.third.0/24.
struct AddressBlock {
  int second = 0;
  int third = 0;
  // "127.12.3.0/24"
  std::string Cidr() const;
  // "127.12.3.<host>"
  std::string Address(int host) const;
  std::string RedisAddress() const { return Address(1); }
  auto operator<=>(const AddressBlock&) const = default;
};

// Parses "127.12.3.0/24" (or "127.12.3.0", "127.12.3").
Result<AddressBlock> ParseBlock(const std::string& text);

// The second octet where `home` starts drawing blocks (1..254).
int HomeSecondOctet(const std::filesystem::path& home);

// 127.H.0.1 for the home's range: the base's PostgreSQL listens here.
std::string BaseAddress(const std::filesystem::path& home);

// The first block of the home's range that is neither in `used` nor refused by
// `is_free` (e.g. something outside adhoc already listens in it). An error when every
// block is taken.
Result<AddressBlock> AllocateBlock(const std::filesystem::path& home,
                                   const std::set<AddressBlock>& used,
                                   const std::function<bool(const AddressBlock&)>& is_free);

// The lowest task address (.10-.254) of `block` not in `used` (dotted strings).
Result<std::string> AllocateTaskAddress(const AddressBlock& block,
                                        const std::set<std::string>& used);

// Whether an address:port can be listened on. The real one binds; fakes decide.
// Thread-safe.
class AddressProbe {
 public:
  virtual ~AddressProbe() = default;
  // OK when free; Conflict "127.3.4.10:8000 is already in use" when not.
  virtual Status CheckFree(const std::string& address, int port) = 0;
};

// Binds a TCP socket (with SO_REUSEADDR, as servers do) to address:port and closes it.
class BindProbe : public AddressProbe {
 public:
  Status CheckFree(const std::string& address, int port) override;
};

}  // namespace adhoc::runtime
