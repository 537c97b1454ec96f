#include "runtime/addresses.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace adhoc::runtime {

std::string AddressBlock::Cidr() const { return Address(0) + "/24"; }

std::string AddressBlock::Address(int host) const {
  return "127." + std::to_string(second) + "." + std::to_string(third) + "." + std::to_string(host);
}

Result<AddressBlock> ParseBlock(const std::string& text) {
  int a = -1, b = -1, c = -1;
  char rest[8] = {0};
  int n = sscanf(text.c_str(), "%d.%d.%d%7s", &a, &b, &c, rest);
  std::string tail = n == 4 ? rest : "";
  if (n < 3 || a != 127 || b < 0 || b > 255 || c < 0 || c > 255 ||
      !(tail.empty() || tail == ".0" || tail == ".0/24"))
    return BadInput("not an address block of 127.0.0.0/8: '" + text + "'");
  return AddressBlock{b, c};
}

int HomeSecondOctet(const std::filesystem::path& home) {
  // FNV-1a: stable across builds and machines (std::hash is not promised to be).
  uint32_t h = 2166136261u;
  std::string key = home.lexically_normal().string();
  while (key.size() > 1 && key.back() == '/') key.pop_back();
  for (unsigned char ch : key) {
    h ^= ch;
    h *= 16777619u;
  }
  return 1 + static_cast<int>(h % 254);
}

std::string BaseAddress(const std::filesystem::path& home) {
  return AddressBlock{HomeSecondOctet(home), 0}.Address(1);
}

Result<AddressBlock> AllocateBlock(const std::filesystem::path& home,
                                   const std::set<AddressBlock>& used,
                                   const std::function<bool(const AddressBlock&)>& is_free) {
  int start = HomeSecondOctet(home);
  for (int i = 0; i < 254; ++i) {
    int second = 1 + (start - 1 + i) % 254;
    for (int third = 1; third <= 255; ++third) {
      AddressBlock b{second, third};
      if (used.count(b) == 0 && is_free(b)) return b;
    }
  }
  return Conflict("no free address block left in 127.0.0.0/8");
}

Result<std::string> AllocateTaskAddress(const AddressBlock& block,
                                        const std::set<std::string>& used) {
  for (int host = 10; host <= 254; ++host) {
    std::string a = block.Address(host);
    if (used.count(a) == 0) return a;
  }
  return Conflict("no free task address left in " + block.Cidr());
}

Status BindProbe::CheckFree(const std::string& address, int port) {
  std::string where = address + ":" + std::to_string(port);
  sockaddr_storage storage{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    return BadInput("not an IP address: '" + address + "'");
  }
  int fd = socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failed(std::string("socket: ") + strerror(errno));
  // SO_REUSEADDR: only a listener counts as taken, not a connection in TIME_WAIT.
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int r = bind(fd, reinterpret_cast<sockaddr*>(&storage), len);
  int err = errno;
  close(fd);
  if (r == 0) return OkStatus();
  if (err == EADDRINUSE) return Conflict(where + " is already in use");
  if (err == EADDRNOTAVAIL) return BadInput(where + " is not an address of this machine");
  return Failed("checking " + where + ": " + strerror(err));
}

}  // namespace adhoc::runtime
