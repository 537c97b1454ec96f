// Certificates the router makes itself (issue 14, TLS): its own certificate authority and a
// wildcard certificate for `*.<domain>` signed by it, kept in a folder so that a team trusts
// the CA once (`<dir>/ca.crt`) and keeps it across restarts.
//
// Files in `dir` (created 0755; private keys 0600):
//   ca.crt, ca.key              the CA: EC P-256, valid 10 years, "adhoc local CA (<domain>)"
//   <domain>.crt, <domain>.key  the leaf: SANs `*.<domain>` and `<domain>`, valid 1 year
// Existing files are reused while they are valid; a leaf that expires within 30 days or does
// not name the domain is made again (the CA stays).
//
// TLS clients refuse a wildcard directly under a single-label name (OpenSSL, hence curl,
// does not let `*.localhost` match `demo.localhost`), so for such a domain the router also
// mints a certificate per host name on demand (MintHostCertificate), signed by the same CA.
//
// Thread-safe: pure functions plus file writes (callers serialize writes to one folder).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/result.h"

namespace adhoc::router {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct CertificateFiles {
  std::filesystem::path ca_cert, ca_key, cert, key;
};

// Makes or reuses the CA and the `*.<domain>` certificate in `dir` (see above). BadInput
// for a domain that is not a host name; Failed for file or OpenSSL errors.
Result<CertificateFiles> EnsureCertificates(const std::string& domain,
                                            const std::filesystem::path& dir);

// A certificate for exactly `host`, signed by the CA, for `key`'s public key (valid 1 year).
Result<X509Ptr> MintHostCertificate(const std::string& host, X509* ca_cert, EVP_PKEY* ca_key,
                                    EVP_PKEY* key);

Result<X509Ptr> ReadCertificate(const std::filesystem::path& file);
Result<PkeyPtr> ReadPrivateKey(const std::filesystem::path& file);

// The SHA-256 fingerprint of a certificate, as hex (tests and logs).
std::string CertificateFingerprint(X509* cert);

}  // namespace adhoc::router
