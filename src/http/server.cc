// The Server implementation: an io_context run by N threads, an acceptor on
// its own strand, and one Session per connection on its own strand.
#include "counterd/http/server.h"

#include <cstdlib>
#include <future>
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
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

#include "server_state.h"
#include "session.h"

namespace counterd::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

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
      : ioc_(static_cast<int>(options.threads)),
        work_(net::make_work_guard(ioc_)),
        acceptor_(net::make_strand(ioc_)),
        accept_retry_(acceptor_.get_executor()) {
    options.hostname = HostName(options.hostname);
    state_ = std::make_shared<ServerState>(std::move(options), service);
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
    threads_.reserve(state_->options.threads);
    for (unsigned i = 0; i < state_->options.threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  ListenAddress local_address() const override { return local_; }

  DrainReport Drain(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    DrainReport report;
    state_->draining.store(true);
    // Close the listener on its strand and wait for that, so no connection
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

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    work_.reset();
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Accept() {
    acceptor_.async_accept(
        net::make_strand(ioc_),
        [this](boost::system::error_code ec, tcp::socket socket) {
          OnAccept(ec, std::move(socket));
        });
  }

  void OnAccept(boost::system::error_code ec, tcp::socket socket) {
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
    auto session = std::make_shared<Session>(std::move(socket), state_);
    if (const auto id = state_->connections.Add(session)) {
      session->Run(*id);
    } else {
      session->Reject();
    }
    Accept();
  }

  // Declaration order matters for destruction: the acceptor and timer go
  // before the io_context they belong to; the io_context's destructor then
  // destroys the queued handlers and with them the sessions, which share
  // state_ and so never see it dangle.
  std::shared_ptr<ServerState> state_;
  std::vector<std::thread> threads_;
  ListenAddress local_;
  bool stopped_ = false;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  tcp::acceptor acceptor_;
  net::steady_timer accept_retry_;
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
