#include "router/certificates.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>

#include "router/test_support.h"

namespace adhoc::router {
namespace {

namespace fs = std::filesystem;

mode_t Mode(const fs::path& p) {
  struct stat st {};
  stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

bool SignedBy(X509* cert, X509* ca) {
  PkeyPtr key(X509_get_pubkey(ca));
  return X509_verify(cert, key.get()) == 1;
}

bool Names(X509* cert, const std::string& host) {
  return X509_check_host(cert, host.c_str(), host.size(), 0, nullptr) == 1;
}

TEST(Certificates, MakesACaAndAWildcardAndKeepsThem) {
  testing::TempDir dir;
  auto files = EnsureCertificates("preview.example.com", dir.path() / "tls");
  ASSERT_TRUE(files.ok()) << files.error().message();
  EXPECT_EQ(Mode(files->ca_key), 0600u);
  EXPECT_EQ(Mode(files->key), 0600u);
  EXPECT_EQ(Mode(files->ca_cert), 0644u);
  auto ca = ReadCertificate(files->ca_cert);
  auto cert = ReadCertificate(files->cert);
  ASSERT_TRUE(ca.ok() && cert.ok());
  EXPECT_TRUE(SignedBy(cert->get(), ca->get()));
  EXPECT_TRUE(Names(cert->get(), "demo.preview.example.com"));
  EXPECT_TRUE(Names(cert->get(), "preview.example.com"));
  EXPECT_FALSE(Names(cert->get(), "a.b.preview.example.com"));
  EXPECT_FALSE(Names(cert->get(), "demo.other.com"));
  EXPECT_EQ(X509_check_ca(ca->get()), 1);

  // A restart reuses both, so the CA a team trusted stays trusted.
  std::string ca_print = CertificateFingerprint(ca->get());
  std::string cert_print = CertificateFingerprint(cert->get());
  auto again = EnsureCertificates("preview.example.com", dir.path() / "tls");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(CertificateFingerprint(ReadCertificate(again->ca_cert)->get()), ca_print);
  EXPECT_EQ(CertificateFingerprint(ReadCertificate(again->cert)->get()), cert_print);

  // Another domain: a new leaf from the same CA.
  auto other = EnsureCertificates("other.test", dir.path() / "tls");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(CertificateFingerprint(ReadCertificate(other->ca_cert)->get()), ca_print);
  auto other_cert = ReadCertificate(other->cert);
  EXPECT_TRUE(Names(other_cert->get(), "x.other.test"));
  EXPECT_TRUE(SignedBy(other_cert->get(), ca->get()));
}

TEST(Certificates, ABrokenLeafIsMadeAgain) {
  testing::TempDir dir;
  auto files = EnsureCertificates("example.test", dir.path());
  ASSERT_TRUE(files.ok());
  std::ofstream(files->cert) << "not a certificate";
  auto again = EnsureCertificates("example.test", dir.path());
  ASSERT_TRUE(again.ok()) << again.error().message();
  auto cert = ReadCertificate(again->cert);
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(Names(cert->get(), "a.example.test"));
}

TEST(Certificates, MintsForExactHostsUnderSingleLabelDomains) {
  testing::TempDir dir;
  auto files = EnsureCertificates("localhost", dir.path());
  ASSERT_TRUE(files.ok());
  auto ca = ReadCertificate(files->ca_cert);
  auto ca_key = ReadPrivateKey(files->ca_key);
  auto key = ReadPrivateKey(files->key);
  // A wildcard directly under one label does not name its hosts for TLS clients...
  EXPECT_FALSE(Names(ReadCertificate(files->cert)->get(), "demo.localhost"));
  // ...so the router mints one per host.
  auto minted = MintHostCertificate("demo.localhost", ca->get(), ca_key->get(), key->get());
  ASSERT_TRUE(minted.ok()) << minted.error().message();
  EXPECT_TRUE(Names(minted->get(), "demo.localhost"));
  EXPECT_FALSE(Names(minted->get(), "other.localhost"));
  EXPECT_TRUE(SignedBy(minted->get(), ca->get()));
  EXPECT_FALSE(MintHostCertificate("bad host", ca->get(), ca_key->get(), key->get()).ok());
}

TEST(Certificates, RefusesBadDomainsAndFiles) {
  testing::TempDir dir;
  auto bad = EnsureCertificates("not a domain", dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(bad.error().message().find("not a domain"), std::string::npos);
  std::ofstream(dir.path() / "junk.pem") << "junk";
  auto cert = ReadCertificate(dir.path() / "junk.pem");
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.error().message().find("junk.pem"), std::string::npos);
  EXPECT_FALSE(ReadPrivateKey(dir.path() / "missing.pem").ok());
}

}  // namespace
}  // namespace adhoc::router
