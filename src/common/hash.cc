#include "common/hash.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

namespace adhoc {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return Hex(digest, len);
}

std::string RandomHex(size_t n) {
  std::vector<unsigned char> bytes(n);
  RAND_bytes(bytes.data(), static_cast<int>(n));
  return Hex(bytes.data(), n);
}

}  // namespace adhoc
