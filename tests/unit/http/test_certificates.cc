#include "test_certificates.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>

#include <gtest/gtest.h>

namespace counterd::testing {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Free>;

std::string Drain(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
  return std::string(data, static_cast<std::size_t>(n));
}

Owned<EVP_PKEY> ReadKey(const std::string& pem) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Owned<EVP_PKEY>(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

Owned<X509> ReadCert(const std::string& pem) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Owned<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  ASSERT_TRUE(ext);
  ASSERT_EQ(X509_add_ext(cert, ext.get(), -1), 1);
}

}  // namespace

TestCertificate MakeTestCertificate(const std::string& common_name,
                                    long serial,  // NOLINT(google-runtime-int)
                                    const TestCertificate* issuer) {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  EXPECT_TRUE(key);
  Owned<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);

  Owned<X509> issuer_cert;
  Owned<EVP_PKEY> issuer_key;
  if (issuer != nullptr) {
    issuer_cert = ReadCert(issuer->cert_pem);
    issuer_key = ReadKey(issuer->key_pem);
    EXPECT_TRUE(issuer_cert && issuer_key);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert.get()));
    AddExtension(cert.get(), issuer_cert.get(), NID_subject_alt_name,
                 "DNS:localhost,IP:127.0.0.1");
  } else {
    X509_set_issuer_name(cert.get(), name);
    AddExtension(cert.get(), cert.get(), NID_basic_constraints,
                 "critical,CA:TRUE");
    AddExtension(cert.get(), cert.get(), NID_subject_alt_name,
                 "DNS:localhost,IP:127.0.0.1");
  }
  EXPECT_GT(X509_sign(cert.get(), issuer ? issuer_key.get() : key.get(),
                      EVP_sha256()),
            0);

  TestCertificate out;
  Owned<BIO> cert_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  out.cert_pem = Drain(cert_bio.get());
  Owned<BIO> key_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0,
                           nullptr, nullptr);
  out.key_pem = Drain(key_bio.get());
  return out;
}

void WriteTestFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  ASSERT_TRUE(out) << path;
}

}  // namespace counterd::testing
