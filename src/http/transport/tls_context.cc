#include "transport/tls_context.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/system_error.hpp>

namespace counterd::http {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2: ECDHE key exchange (forward secrecy) with AEAD ciphers only, as
// in Mozilla's "intermediate" profile. TLS 1.3's suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
    "TLS_CHACHA20_POLY1305_SHA256";

// The reason OpenSSL gives for the last failure, if any, else |fallback|.
std::string OpenSslError(std::string_view fallback) {
  const unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int)
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Status::InvalidArgument("cannot read " + path + ": " +
                                   std::system_category().message(err));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument("cannot read " + path);
  return bytes.str();
}

std::chrono::system_clock::time_point ToTimePoint(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  const std::chrono::year_month_day day{
      std::chrono::year{tm.tm_year + 1900},
      std::chrono::month{static_cast<unsigned>(tm.tm_mon + 1)},
      std::chrono::day{static_cast<unsigned>(tm.tm_mday)}};
  return std::chrono::sys_days{day} + std::chrono::hours{tm.tm_hour} +
         std::chrono::minutes{tm.tm_min} + std::chrono::seconds{tm.tm_sec};
}

TlsCertificateInfo DescribeLeaf(X509* leaf) {
  TlsCertificateInfo info;
  if (leaf == nullptr) return info;
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
  info.subject = subject;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(leaf), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      info.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  info.not_after = ToTimePoint(X509_get0_notAfter(leaf));
  return info;
}

// Names the CAs in the CertificateRequest, so a client holding several
// certificates can pick the right one.
bool AddClientCaNames(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  bool any = false;
  while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    any = SSL_CTX_add_client_CA(ctx, ca) == 1 || any;
    X509_free(ca);
  }
  BIO_free(bio);
  ERR_clear_error();  // the read that ended the loop
  return any;
}

}  // namespace

Result<std::unique_ptr<TlsContextProvider>> TlsContextProvider::Create(
    TlsFiles files) {
  std::unique_ptr<TlsContextProvider> provider(
      new TlsContextProvider(std::move(files)));
  Result<Contents> contents = provider->ReadFiles();
  if (!contents) return contents.error();
  Result<Loaded> loaded = provider->Build(*contents);
  if (!loaded) return loaded.error();
  provider->attempted_ = std::move(*contents);
  provider->current_ = std::move(*loaded);
  return provider;
}

std::shared_ptr<ssl::context> TlsContextProvider::Current() const {
  std::lock_guard lock(mu_);
  return current_.context;
}

TlsCertificateInfo TlsContextProvider::CurrentInfo() const {
  std::lock_guard lock(mu_);
  return current_.info;
}

TlsContextProvider::Reload TlsContextProvider::ReloadIfChanged(Status* error) {
  Result<Contents> contents = ReadFiles();
  Contents seen;
  if (contents) {
    seen = std::move(*contents);
  } else {
    // Remembered like bytes, so a file that stays unreadable is reported
    // once, not every poll.
    seen.read_error = contents.error().message();
  }
  if (seen == attempted_) return Reload::kUnchanged;
  // Load only what has stayed the same for one poll: a certificate written
  // in place before its key is a pair that does not match for a moment.
  if (!(seen == settling_)) {
    settling_ = std::move(seen);
    return Reload::kUnchanged;
  }
  attempted_ = seen;
  if (!seen.read_error.empty()) {
    *error = Status::InvalidArgument(seen.read_error);
    return Reload::kFailed;
  }
  Result<Loaded> loaded = Build(seen);
  if (!loaded) {
    *error = loaded.error();
    return Reload::kFailed;
  }
  std::lock_guard lock(mu_);
  current_ = std::move(*loaded);
  return Reload::kReloaded;
}

Result<TlsContextProvider::Contents> TlsContextProvider::ReadFiles() const {
  Contents c;
  Result<std::string> cert = ReadFile(files_.cert_file);
  if (!cert) return cert.error();
  c.cert = std::move(*cert);
  Result<std::string> key = ReadFile(files_.key_file);
  if (!key) return key.error();
  c.key = std::move(*key);
  if (!files_.client_ca_file.empty()) {
    Result<std::string> ca = ReadFile(files_.client_ca_file);
    if (!ca) return ca.error();
    c.client_ca = std::move(*ca);
  }
  return c;
}

Result<TlsContextProvider::Loaded> TlsContextProvider::Build(
    const Contents& c) const {
  Loaded loaded;
  try {
    loaded.context = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const boost::system::system_error& e) {
    return Status::Internal(std::string("creating a TLS context: ") + e.what());
  }
  ssl::context& ctx = *loaded.context;
  SSL_CTX* native = ctx.native_handle();
  const auto fail = [](const std::string& what, std::string_view why) {
    return Status::InvalidArgument(what + ": " + std::string(why));
  };

  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1) {
    return Status::Internal("TLS policy: " + OpenSslError("rejected"));
  }
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Needed for session resumption once client certificates are verified;
  // harmless without.
  static constexpr unsigned char kSessionContext[] = "counterd";
  SSL_CTX_set_session_id_context(native, kSessionContext,
                                 sizeof(kSessionContext) - 1);

  boost::system::error_code ec;
  ctx.use_certificate_chain(boost::asio::buffer(c.cert), ec);
  if (ec) return fail(files_.cert_file, OpenSslError(ec.message()));
  const std::string mismatch =
      "the private key does not match the certificate in " + files_.cert_file;
  ctx.use_private_key(boost::asio::buffer(c.key), ssl::context::pem, ec);
  if (ec) {
    // Asio's SSL errors carry OpenSSL's error code.
    const auto code = static_cast<unsigned long>(ec.value());  // NOLINT
    if (ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return fail(files_.key_file, mismatch);
    }
    return fail(files_.key_file, OpenSslError(ec.message()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return fail(files_.key_file, mismatch);
  }
  if (!files_.client_ca_file.empty()) {
    ctx.add_certificate_authority(boost::asio::buffer(c.client_ca), ec);
    if (ec || !AddClientCaNames(native, c.client_ca)) {
      return fail(files_.client_ca_file,
                  OpenSslError(ec ? ec.message() : "no certificate"));
    }
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert,
                        ec);
    if (ec) return fail(files_.client_ca_file, ec.message());
  }
  loaded.info = DescribeLeaf(SSL_CTX_get0_certificate(native));
  ERR_clear_error();
  return loaded;
}

}  // namespace counterd::http
