// TlsContextProvider: the server's TLS configuration (OpenSSL through
// Boost.Asio SSL), built from PEM files and rebuilt when they change, so a
// certificate that cert-manager rotates in place, or that Kubernetes swaps
// in with its "..data" symlink, is served without a restart.
//
// Each new connection takes the current context (a shared_ptr it keeps for
// its lifetime), so a reload never touches open connections. A pair that
// does not load (unreadable, not PEM, key not matching the certificate) is
// refused and the previous context stays.
//
// Policy: TLS 1.2 and 1.3 only; for 1.2 only ECDHE key exchange with AEAD
// ciphers (AES-GCM, ChaCha20-Poly1305); no compression, no renegotiation.
// With a client CA, every client must present a certificate it signed.
//
// Thread-safety: Current() from any thread; ReloadIfChanged from one
// thread at a time (the server's acceptor thread).
#ifndef COUNTERD_HTTP_TRANSPORT_TLS_CONTEXT_H_
#define COUNTERD_HTTP_TRANSPORT_TLS_CONTEXT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "counterd/core/result.h"
#include "counterd/core/status.h"

namespace counterd::http {

struct TlsFiles {
  std::string cert_file;       // PEM: the certificate chain, leaf first
  std::string key_file;        // PEM: its private key
  std::string client_ca_file;  // PEM, optional: require client certificates
};

// What a loaded certificate is, for logs and metrics.
struct TlsCertificateInfo {
  std::string subject;
  std::string serial;  // hex
  std::chrono::system_clock::time_point not_after;
};

class TlsContextProvider {
 public:
  enum class Reload { kUnchanged, kReloaded, kFailed };

  // Loads |files|. Returns kInvalidArgument naming the file and the reason
  // if they do not make a usable context.
  static Result<std::unique_ptr<TlsContextProvider>> Create(TlsFiles files);

  TlsContextProvider(const TlsContextProvider&) = delete;
  TlsContextProvider& operator=(const TlsContextProvider&) = delete;

  // The context new connections use.
  std::shared_ptr<boost::asio::ssl::context> Current() const;
  TlsCertificateInfo CurrentInfo() const;

  // Reads the files again; if their bytes differ from the last attempt
  // and are the same as at the previous call (settled: a file written in
  // place may be caught half-way, or a certificate before its key), builds
  // a new context from them and, if that works, makes it current. A failed
  // attempt is not retried until the bytes change again; its reason is in
  // *error. So a change is picked up by the second call after it.
  Reload ReloadIfChanged(Status* error);

 private:
  struct Loaded {
    std::shared_ptr<boost::asio::ssl::context> context;
    TlsCertificateInfo info;
  };
  struct Contents {
    std::string cert, key, client_ca;
    std::string read_error;  // set instead when a file could not be read
    friend bool operator==(const Contents&, const Contents&) = default;
  };

  explicit TlsContextProvider(TlsFiles files) : files_(std::move(files)) {}
  Result<Contents> ReadFiles() const;
  Result<Loaded> Build(const Contents& contents) const;

  const TlsFiles files_;
  // Used by the reloading thread only: the bytes last tried, and those
  // seen at the last call.
  Contents attempted_;
  Contents settling_;
  mutable std::mutex mu_;
  Loaded current_;  // GUARDED_BY(mu_)
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_TLS_CONTEXT_H_
