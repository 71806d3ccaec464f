// The Server implementation: one io_context per I/O thread, each run by
// exactly one thread, so a connection's handlers are serialized without a
// strand. The acceptor lives on context 0 and hands accepted sockets to the
// contexts round-robin.
#include "counterd/http/server.h"

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
#include <spdlog/spdlog.h>

#include "transport/server_state.h"
#include "transport/session.h"

namespace counterd::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Executor = net::io_context::executor_type;

// After a failed accept (EMFILE, ENFILE, ENOBUFS) wait before retrying,
// so running out of descriptors does not become a busy loop.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};

std::string HostName(const std::string& configured) {
  if (!configured.empty()) return configured;
  // Under Kubernetes HOSTNAME is the pod name.
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
        accept_retry_(contexts_.front()->get_executor()) {
    options.hostname = HostName(options.hostname);
    state_ = std::make_shared<ServerState>(std::move(options), service);
    work_.reserve(contexts_.size());
    for (const auto& ioc : contexts_) {
      work_.push_back(net::make_work_guard(ioc->get_executor()));
    }
  }

  ~AsioServer() override { Stop(); }

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

  void StartThreads() {
    Accept();
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
      closed.set_value();
    });
    closed.get_future().wait();
    const std::vector<std::weak_ptr<Session>> sessions =
        state_->connections.Sessions();
    report.connections_open = sessions.size();
    for (const std::weak_ptr<Session>& weak : sessions) {
      if (const std::shared_ptr<Session> session = weak.lock()) {
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
        ioc, peer_,
        [this](boost::system::error_code ec, Session::Socket socket) {
          OnAccept(ec, std::move(socket));
        });
  }

  void OnAccept(boost::system::error_code ec, Session::Socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      spdlog::warn("accept failed: {}; retrying in {} ms", ec.message(),
                   kAcceptRetryDelay.count());
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec && acceptor_.is_open()) Accept();
      });
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), peer_, state_);
    if (const auto id = state_->connections.Add(session)) {
      session->Run(*id);
    } else {
      session->Reject();
    }
    Accept();
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
  tcp::endpoint peer_;            // of the connection being accepted
  std::size_t next_context_ = 0;  // for the next accepted socket
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(
    ServerOptions options, service::CounterService& service) {
  if (options.threads == 0) options.threads = 1;
  auto server = std::make_unique<AsioServer>(std::move(options), service);
  if (Status s = server->Listen(); !s.ok()) return s;
  server->StartThreads();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace counterd::http
