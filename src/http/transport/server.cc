// The Server implementation: one io_context per I/O thread, each run by
// exactly one thread, so a connection's handlers are serialized without a
// strand. The acceptor lives on context 0 and hands accepted sockets to the
// contexts round-robin.
#include "counterd/http/server.h"

#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "counterd/core/log.h"
#include "transport/server_state.h"
#include "transport/session.h"
#include "transport/tls_context.h"

namespace counterd::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Executor = net::io_context::executor_type;

// After a failed accept (EMFILE, ENFILE, ENOBUFS) wait before retrying,
// so running out of descriptors does not become a busy loop.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};

std::int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch())
      .count();
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  char buf[32];
  (void)std::snprintf(
      buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string HostName(const std::string& configured) {
  if (!configured.empty()) return configured;
  // Under Kubernetes HOSTNAME is the pod name. Read once, at start-up,
  // before any thread that could change the environment exists.
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* env = std::getenv("HOSTNAME"); env != nullptr && *env) {
    return env;
  }
  boost::system::error_code ec;
  std::string name = net::ip::host_name(ec);
  return ec ? "unknown" : name;
}

class AsioServer final : public Server {
 public:
  AsioServer(ServerOptions options, service::CounterService& service)
      : contexts_(MakeContexts(options.threads)),
        acceptor_(contexts_.front()->get_executor()),
        accept_retry_(contexts_.front()->get_executor()),
        tls_reload_(contexts_.front()->get_executor()) {
    options.hostname = HostName(options.hostname);
    state_ = std::make_shared<ServerState>(std::move(options), service);
    work_.reserve(contexts_.size());
    for (const auto& ioc : contexts_) {
      work_.push_back(net::make_work_guard(ioc->get_executor()));
    }
  }

  ~AsioServer() override { Stop(); }

  // Loads the certificate and key, if TLS is configured.
  Status LoadTls() {
    const ServerOptions& options = state_->options;
    if (options.tls_cert_file.empty()) return Status::Ok();
    Result<std::unique_ptr<TlsContextProvider>> tls =
        TlsContextProvider::Create({options.tls_cert_file, options.tls_key_file,
                                    options.tls_client_ca_file});
    if (!tls) return tls.error();
    tls_ = std::move(*tls);
    TlsMetrics& metrics = state_->status.metrics.tls();
    metrics.enabled.store(true);
    const TlsCertificateInfo info = tls_->CurrentInfo();
    metrics.certificate_expiry_seconds.store(UnixSeconds(info.not_after));
    log::Info("serving HTTPS only (TLS 1.2, 1.3)",
              {{"subject", info.subject},
               {"serial", info.serial},
               {"not_after", Rfc3339(info.not_after)},
               {"client_certificates",
                options.tls_client_ca_file.empty() ? "off" : "required"}});
    return Status::Ok();
  }

  Status Listen() {
    boost::system::error_code ec;
    const ListenAddress& listen = state_->options.listen;
    const tcp::endpoint endpoint(net::ip::make_address(listen.host, ec),
                                 listen.port);
    if (ec) {
      return Status::InvalidArgument("listen address " + listen.ToString() +
                                     ": " + ec.message());
    }
    const auto fail = [&](std::string_view step) {
      return Status::Unavailable(std::string(step) + " " + listen.ToString() +
                                 ": " + ec.message());
    };
    if (acceptor_.open(endpoint.protocol(), ec)) return fail("open");
    // Allows a restart to bind while old connections sit in TIME_WAIT.
    if (acceptor_.set_option(net::socket_base::reuse_address(true), ec)) {
      return fail("setsockopt");
    }
    if (acceptor_.bind(endpoint, ec)) return fail("bind");
    if (acceptor_.listen(net::socket_base::max_listen_connections, ec)) {
      return fail("listen");
    }
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    if (ec) return fail("getsockname");
    local_ = ListenAddress{bound.address().to_string(), bound.port()};
    return Status::Ok();
  }

  // Feeds the watch streams from |changes| from now on (before the first
  // connection is accepted) until Stop.
  void WatchChanges(storage::CounterRepository* changes) {
    changes_ = changes;
    if (changes_ != nullptr) changes_->SetChangeSink(&state_->watch.hub());
  }

  void StartThreads() {
    Accept();
    if (tls_) WaitToReloadTls();
    threads_.reserve(contexts_.size());
    for (const auto& ioc : contexts_) {
      threads_.emplace_back([ioc = ioc.get()] { ioc->run(); });
    }
  }

  ListenAddress local_address() const override { return local_; }

  DrainReport Drain(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    DrainReport report;
    state_->status.draining.store(true);
    // Close the listener on its thread and wait for that, so no connection
    // is accepted once Drain has begun its wait.
    std::promise<void> closed;
    net::post(acceptor_.get_executor(), [this, &closed] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      accept_retry_.cancel();
      tls_reload_.cancel();
      closed.set_value();
    });
    closed.get_future().wait();
    const std::vector<std::weak_ptr<SessionBase>> sessions =
        state_->connections.Sessions();
    report.connections_open = sessions.size();
    for (const std::weak_ptr<SessionBase>& weak : sessions) {
      if (const std::shared_ptr<SessionBase> session = weak.lock()) {
        session->Drain();
      }
    }
    report.completed = state_->connections.WaitForNoRequests(deadline);
    report.requests_in_flight = state_->connections.requests_in_flight();
    return report;
  }

  void ReplaceTokens(std::shared_ptr<const TokenSet> tokens) override {
    if (!state_->authorizer.enabled() || !tokens) return;
    state_->authorizer.Replace(std::move(tokens));
    state_->status.auth.CountReload(true);
  }

  void CountFailedTokenReload() override {
    if (!state_->authorizer.enabled()) return;
    state_->status.auth.CountReload(false);
  }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    work_.clear();
    for (const auto& ioc : contexts_) ioc->stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    // The hub lives on in state_ while sessions hold it, but the
    // repository stops publishing to it here.
    if (changes_ != nullptr) changes_->SetChangeSink(nullptr);
  }

 private:
  // Each context has one thread: concurrency hint 1.
  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(
      unsigned threads) {
    std::vector<std::unique_ptr<net::io_context>> contexts;
    contexts.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) {
      contexts.push_back(std::make_unique<net::io_context>(1));
    }
    return contexts;
  }

  void Accept() {
    net::io_context& ioc = *contexts_[next_context_];
    next_context_ = (next_context_ + 1) % contexts_.size();
    acceptor_.async_accept(
        ioc, peer_, [this](boost::system::error_code ec, PlainStream socket) {
          OnAccept(ec, std::move(socket));
        });
  }

  void OnAccept(boost::system::error_code ec, PlainStream socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      log::Warn(
          "accept failed, retrying",
          {{"error", ec.message()}, {"retry_ms", kAcceptRetryDelay.count()}});
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec && acceptor_.is_open()) Accept();
      });
      return;
    }
    if (tls_) {
      // Each connection keeps the context current when it arrived: a
      // reload never touches open connections.
      Admit(std::make_shared<Session<TlsStream>>(std::move(socket), peer_,
                                                 state_, tls_->Current()));
    } else {
      Admit(std::make_shared<Session<PlainStream>>(std::move(socket), peer_,
                                                   state_));
    }
    Accept();
  }

  // Registers |session| and serves it, or answers 503 when it is over a
  // connection cap (TLS connections count like any other).
  template <class S>
  void Admit(std::shared_ptr<S> session) {
    ConnectionRefusal refusal{};
    if (const auto id =
            state_->connections.Add(session, peer_.address(), &refusal)) {
      session->Run(*id);
    } else {
      state_->status.metrics.RecordConnectionRefused(refusal);
      session->Reject(refusal);
    }
  }

  // Polls the certificate files on the acceptor's thread.
  void WaitToReloadTls() {
    tls_reload_.expires_after(state_->options.tls_reload_interval);
    tls_reload_.async_wait([this](boost::system::error_code ec) {
      if (ec || !acceptor_.is_open()) return;
      ReloadTls();
      WaitToReloadTls();
    });
  }

  void ReloadTls() {
    Status error;
    TlsMetrics& metrics = state_->status.metrics.tls();
    switch (tls_->ReloadIfChanged(&error)) {
      case TlsContextProvider::Reload::kUnchanged:
        return;
      case TlsContextProvider::Reload::kReloaded: {
        const TlsCertificateInfo info = tls_->CurrentInfo();
        metrics.reloads_ok.fetch_add(1);
        metrics.certificate_expiry_seconds.store(UnixSeconds(info.not_after));
        log::Info("TLS certificate reloaded",
                  {{"subject", info.subject},
                   {"serial", info.serial},
                   {"not_after", Rfc3339(info.not_after)}});
        return;
      }
      case TlsContextProvider::Reload::kFailed:
        metrics.reloads_error.fetch_add(1);
        log::Error("TLS certificate reload refused, keeping the previous one",
                   {{"error", error.message()}});
        return;
    }
  }

  // Declaration order matters for destruction: the acceptor and timer go
  // before the io_contexts they belong to; each io_context's destructor
  // then destroys its queued handlers and with them its sessions, which
  // share state_ and so never see it dangle.
  std::shared_ptr<ServerState> state_;
  std::vector<std::thread> threads_;
  ListenAddress local_;
  bool stopped_ = false;
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::vector<net::executor_work_guard<Executor>> work_;
  // Used only on context 0's thread.
  net::basic_socket_acceptor<tcp, Executor> acceptor_;
  net::basic_waitable_timer<std::chrono::steady_clock,
                            net::wait_traits<std::chrono::steady_clock>,
                            Executor>
      accept_retry_;
  net::basic_waitable_timer<std::chrono::steady_clock,
                            net::wait_traits<std::chrono::steady_clock>,
                            Executor>
      tls_reload_;
  tcp::endpoint peer_;            // of the connection being accepted
  std::size_t next_context_ = 0;  // for the next accepted socket
  // Null without TLS. Reloaded on context 0's thread; Current() anywhere.
  std::unique_ptr<TlsContextProvider> tls_;
  storage::CounterRepository* changes_ = nullptr;  // feeds the watch hub
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(
    ServerOptions options, service::CounterService& service,
    storage::CounterRepository* changes) {
  if (options.threads == 0) options.threads = 1;
  auto server = std::make_unique<AsioServer>(std::move(options), service);
  if (Status s = server->LoadTls(); !s.ok()) return s;
  if (Status s = server->Listen(); !s.ok()) return s;
  server->WatchChanges(changes);
  server->StartThreads();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace counterd::http
