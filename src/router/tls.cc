#include "router/tls.h"

#include <openssl/err.h>

#include <cstring>

namespace adhoc::router {

namespace {

std::string SslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + ": " + buf;
}

// ALPN: HTTP/1.1 only (RFC 7301: no overlap is a fatal no_application_protocol alert).
int OnAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
           unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned int i = 0;
  while (i < inlen) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof kHttp11 && std::memcmp(in + i + 1, kHttp11, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

Status TlsOptions::Validate() const {
  if (!enabled()) {
    if (!cert_file.empty() || !key_file.empty() || !domain.empty() || redirect_http) {
      return BadInput("--tls-cert, --tls-key, --tls-domain and --redirect-http need --tls-listen");
    }
    return OkStatus();
  }
  bool given = !cert_file.empty() || !key_file.empty();
  bool generated = !domain.empty() || !dir.empty();
  if (given && generated) {
    return BadInput(
        "give either --tls-cert and --tls-key, or --tls-domain and --tls-dir, not both");
  }
  if (given && (cert_file.empty() || key_file.empty())) {
    return BadInput("--tls-cert and --tls-key go together");
  }
  if (generated && (domain.empty() || dir.empty())) {
    return BadInput("--tls-domain and --tls-dir go together");
  }
  if (!given && !generated) {
    return BadInput(
        "--tls-listen needs a certificate: --tls-cert and --tls-key, or --tls-domain and "
        "--tls-dir");
  }
  return OkStatus();
}

Result<std::shared_ptr<TlsContext>> TlsContext::Create(const TlsOptions& options) {
  ADHOC_RETURN_IF_ERROR(options.Validate());
  std::shared_ptr<TlsContext> t(new TlsContext());
  t->ctx_ = SSL_CTX_new(TLS_server_method());
  if (!t->ctx_) return Failed(SslError("SSL_CTX_new"));
  SSL_CTX* ctx = t->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Partial writes let a large body go out as the socket takes it; idle connections give
  // their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Read whole records (and whatever follows) in one read instead of a 5-byte header
  // first and then the rest: one syscall less per request.
  SSL_CTX_set_read_ahead(ctx, 1);
  static constexpr unsigned char kSessionContext[] = "adhoc-router";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_alpn_select_cb(ctx, OnAlpn, nullptr);

  std::filesystem::path cert_file = options.cert_file, key_file = options.key_file;
  if (!options.domain.empty()) {
    ADHOC_ASSIGN_OR_RETURN(CertificateFiles files, EnsureCertificates(options.domain, options.dir));
    cert_file = files.cert;
    key_file = files.key;
    t->ca_file_ = files.ca_cert;
    if (options.domain.find('.') == std::string::npos) {
      ADHOC_ASSIGN_OR_RETURN(t->ca_, ReadCertificate(files.ca_cert));
      ADHOC_ASSIGN_OR_RETURN(t->ca_key_, ReadPrivateKey(files.ca_key));
      t->mint_suffix_ = "." + options.domain;
    }
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return BadInput(SslError("certificate " + cert_file.string()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return BadInput(SslError("key " + key_file.string()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return BadInput(
        SslError("key " + key_file.string() + " does not match certificate " + cert_file.string()));
  }
  if (!t->mint_suffix_.empty()) {
    ADHOC_ASSIGN_OR_RETURN(t->leaf_key_, ReadPrivateKey(key_file));
  }
  t->fingerprint_ = CertificateFingerprint(SSL_CTX_get0_certificate(ctx));
  SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, t.get());
  return t;
}

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

int TlsContext::OnServerName(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  if (self->mint_suffix_.empty()) return SSL_TLSEXT_ERR_OK;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  if (X509* cert = self->MintedFor(name)) {
    SSL_use_certificate(ssl, cert);
    SSL_use_PrivateKey(ssl, self->leaf_key_.get());
    SSL_add1_chain_cert(ssl, self->ca_.get());
  }
  return SSL_TLSEXT_ERR_OK;
}

X509* TlsContext::MintedFor(const std::string& given) {
  std::string host;
  for (char c : given) host += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  const std::string& suffix = mint_suffix_;
  if (host.size() <= suffix.size() ||
      host.compare(host.size() - suffix.size(), suffix.size(), suffix) != 0 ||
      host.find('.') != host.size() - suffix.size()) {
    return nullptr;  // only "<one label>.<domain>": the names environments get
  }
  std::lock_guard lock(mu_);
  auto it = minted_.find(host);
  if (it != minted_.end()) return it->second.get();
  if (minted_.size() >= 4096) minted_.clear();  // bounded; cleared ones are minted again
  auto cert = MintHostCertificate(host, ca_.get(), ca_key_.get(), leaf_key_.get());
  if (!cert.ok()) return nullptr;
  return minted_.emplace(host, std::move(*cert)).first->second.get();
}

}  // namespace adhoc::router
