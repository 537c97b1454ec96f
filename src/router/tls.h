// The router's HTTPS side (issue 14): an OpenSSL server context with the certificate the
// user gave (a wildcard certificate and its key, by path) or one the router generated for
// `*.<domain>` with its own CA (certificates.h). HTTP/1.1 only: ALPN selects "http/1.1"
// (a client offering protocols but not that one is refused); SNI picks the certificate (for
// a generated one under a single-label domain such as "localhost", a certificate minted for
// the exact host name, since clients refuse `*.localhost`). TLS 1.2 and 1.3.
//
// A TlsContext is immutable once made; reloading the certificate makes a new one, which new
// connections use while existing connections keep theirs (nothing is dropped). Thread-safe
// (the minted-certificate cache has its own lock).
#pragma once

#include <openssl/ssl.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "router/certificates.h"

namespace adhoc::router {

struct TlsOptions {
  std::string listen;  // "host:port" of the HTTPS listener; empty: no HTTPS
  // The user's certificate (PEM, chain allowed) and private key...
  std::filesystem::path cert_file, key_file;
  // ...or a generated one: a CA and a `*.<domain>` certificate kept in `dir`.
  std::string domain;
  std::filesystem::path dir;
  bool redirect_http = false;  // the plain listener answers 308 to https://

  bool enabled() const { return !listen.empty(); }
  // Which of the two sources is given; BadInput naming the flags otherwise.
  Status Validate() const;
};

class TlsContext {
 public:
  // Reads (or generates) the certificate and makes the context.
  static Result<std::shared_ptr<TlsContext>> Create(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const { return ctx_; }
  // SHA-256 fingerprint of the default certificate (logs, tests).
  const std::string& fingerprint() const { return fingerprint_; }
  // The CA certificate file when generated (empty otherwise).
  const std::filesystem::path& ca_file() const { return ca_file_; }

 private:
  TlsContext() = default;
  static int OnServerName(SSL* ssl, int* alert, void* arg);
  // The certificate for `host` when it is minted (single-label domains), else null.
  X509* MintedFor(const std::string& host);

  SSL_CTX* ctx_ = nullptr;
  std::string fingerprint_;
  std::filesystem::path ca_file_;
  std::string mint_suffix_;  // ".localhost": names "<label>.localhost" get their own
  X509Ptr ca_;
  PkeyPtr ca_key_, leaf_key_;
  std::mutex mu_;
  std::unordered_map<std::string, X509Ptr> minted_;
};

}  // namespace adhoc::router
