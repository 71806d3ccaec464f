// Throwaway key pairs and certificates for TLS tests, made with OpenSSL at
// run time (nothing is committed): a self-signed certificate, or one
// signed by a test CA.
#ifndef COUNTERD_TESTS_UNIT_HTTP_TEST_CERTIFICATES_H_
#define COUNTERD_TESTS_UNIT_HTTP_TEST_CERTIFICATES_H_

#include <string>

namespace counterd::testing {

struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;
};

// A P-256 key and a certificate for |common_name| with |serial|, valid for
// a day, with SAN DNS:localhost and IP:127.0.0.1. Self-signed when |issuer|
// is null.
TestCertificate MakeTestCertificate(const std::string& common_name,
                                    long serial,  // NOLINT(google-runtime-int)
                                    const TestCertificate* issuer = nullptr);

// Writes |contents| to |path| (replacing it); aborts the test on failure.
void WriteTestFile(const std::string& path, const std::string& contents);

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_UNIT_HTTP_TEST_CERTIFICATES_H_
