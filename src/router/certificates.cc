#include "router/certificates.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

namespace adhoc::router {

namespace fs = std::filesystem;

namespace {

std::string OpensslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + ": " + buf;
}

bool IsHostName(const std::string& s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.' || s.front() == '-') {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return s.find("..") == std::string::npos;
}

Result<PkeyPtr> NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Failed(OpensslError("generating an EC key"));
  return key;
}

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key`, valid `days` from an hour ago, with subject CN `cn`, signed by
// (issuer, issuer_key) or self-signed when issuer is null.
Result<X509Ptr> MakeCertificate(const std::string& cn, EVP_PKEY* key, X509* issuer,
                                EVP_PKEY* issuer_key, long days, bool ca, const std::string& sans) {
  X509Ptr cert(X509_new());
  if (!cert) return Failed(OpensslError("X509_new"));
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("adhoc"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool ok = true;
  if (ca) {
    ok = AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
         AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    ok = AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature") &&
         AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth") &&
         AddExtension(cert.get(), signer, NID_subject_alt_name, sans.c_str()) &&
         AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  if (!ok) return Failed(OpensslError("certificate extensions"));
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0) {
    return Failed(OpensslError("signing a certificate"));
  }
  return cert;
}

// Writes `text` to `path` atomically (a temporary file renamed) with `mode`.
Status WriteFile(const fs::path& path, const std::string& text, mode_t mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Failed("writing " + tmp.string() + ": " + std::strerror(errno));
  fchmod(fd, mode);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Failed("writing " + tmp.string() + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Failed("renaming " + tmp.string() + ": " + ec.message());
  return OkStatus();
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// Whether `cert` is valid for at least `days` more days.
bool ValidFor(X509* cert, int days) {
  time_t later = time(nullptr) + static_cast<time_t>(days) * 24 * 3600;
  return X509_cmp_time(X509_get0_notAfter(cert), &later) > 0 &&
         X509_cmp_current_time(X509_get0_notBefore(cert)) < 0;
}

}  // namespace

Result<X509Ptr> ReadCertificate(const fs::path& file) {
  FILE* f = std::fopen(file.c_str(), "re");
  if (!f) return Failed("reading certificate " + file.string() + ": " + std::strerror(errno));
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert)
    return BadInput(OpensslError("certificate " + file.string() + " is not a PEM certificate"));
  return cert;
}

Result<PkeyPtr> ReadPrivateKey(const fs::path& file) {
  FILE* f = std::fopen(file.c_str(), "re");
  if (!f) return Failed("reading key " + file.string() + ": " + std::strerror(errno));
  PkeyPtr key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!key) return BadInput(OpensslError("key " + file.string() + " is not a PEM private key"));
  return key;
}

std::string CertificateFingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<X509Ptr> MintHostCertificate(const std::string& host, X509* ca_cert, EVP_PKEY* ca_key,
                                    EVP_PKEY* key) {
  if (!IsHostName(host)) return BadInput("'" + host + "' is not a host name");
  return MakeCertificate(host, key, ca_cert, ca_key, 365, false, "DNS:" + host);
}

Result<CertificateFiles> EnsureCertificates(const std::string& domain, const fs::path& dir) {
  if (!IsHostName(domain)) {
    return BadInput("--tls-domain '" + domain +
                    "' is not a host name (e.g. localhost, preview.example.com)");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Failed("creating " + dir.string() + ": " + ec.message());
  CertificateFiles files{dir / "ca.crt", dir / "ca.key", dir / (domain + ".crt"),
                         dir / (domain + ".key")};

  X509Ptr ca;
  PkeyPtr ca_key;
  if (fs::exists(files.ca_cert) && fs::exists(files.ca_key)) {
    auto c = ReadCertificate(files.ca_cert);
    auto k = ReadPrivateKey(files.ca_key);
    if (c.ok() && k.ok() && ValidFor(c->get(), 30) &&
        X509_check_private_key(c->get(), k->get()) == 1) {
      ca = std::move(*c);
      ca_key = std::move(*k);
    }
    ERR_clear_error();
  }
  bool new_ca = !ca;
  if (new_ca) {
    ADHOC_ASSIGN_OR_RETURN(ca_key, NewKey());
    ADHOC_ASSIGN_OR_RETURN(ca, MakeCertificate("adhoc local CA (" + domain + ")", ca_key.get(),
                                               nullptr, nullptr, 3650, true, ""));
    ADHOC_RETURN_IF_ERROR(WriteFile(files.ca_key, KeyPem(ca_key.get()), 0600));
    ADHOC_RETURN_IF_ERROR(WriteFile(files.ca_cert, CertPem(ca.get()), 0644));
  }

  if (!new_ca && fs::exists(files.cert) && fs::exists(files.key)) {
    auto c = ReadCertificate(files.cert);
    auto k = ReadPrivateKey(files.key);
    bool usable = c.ok() && k.ok() && ValidFor(c->get(), 30) &&
                  X509_check_private_key(c->get(), k->get()) == 1 &&
                  X509_check_host(c->get(), domain.c_str(), domain.size(), 0, nullptr) == 1;
    if (usable) {
      // Still signed by this CA?
      PkeyPtr ca_pub(X509_get_pubkey(ca.get()));
      usable = X509_verify(c->get(), ca_pub.get()) == 1;
    }
    ERR_clear_error();
    if (usable) return files;
  }
  ADHOC_ASSIGN_OR_RETURN(PkeyPtr key, NewKey());
  ADHOC_ASSIGN_OR_RETURN(
      X509Ptr cert, MakeCertificate("*." + domain, key.get(), ca.get(), ca_key.get(), 365, false,
                                    "DNS:*." + domain + ",DNS:" + domain));
  ADHOC_RETURN_IF_ERROR(WriteFile(files.key, KeyPem(key.get()), 0600));
  // The chain: the leaf, then the CA (clients that trust the CA need only the leaf, but a
  // chain file is what servers are usually given).
  ADHOC_RETURN_IF_ERROR(WriteFile(files.cert, CertPem(cert.get()) + CertPem(ca.get()), 0644));
  return files;
}

}  // namespace adhoc::router
