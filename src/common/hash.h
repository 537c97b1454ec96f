// Content hashes for fingerprints and cache keys. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace adhoc {

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// `n` random bytes from OpenSSL's generator as lowercase hex (2n characters), for passwords
// and secrets.
std::string RandomHex(size_t n);

}  // namespace adhoc
