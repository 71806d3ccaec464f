// bench/watch_fanout: N Server-Sent-Events watchers of one counter, for
// bench/run's watch fan-out row (issue 12). Built by bench/run with plain
// g++ like the other bench tools; Linux only (epoll).
//
//   watch_fanout --port P [--host 127.0.0.1] [--connections 1000]
//                [--path /counters/x/watch] [--ready-timeout-s 60]
//
// It opens every connection, sends one GET per connection and waits until
// each stream has delivered its first event (the counter's current state),
// then prints
//   ready connected=N refused=R
// and from then on counts the `event: counter` events it reads until
// SIGTERM or SIGINT, when it prints
//   watch events=E bytes=B open=O refused=R closed=C elapsed_ms=T
// (events and bytes since "ready"; closed = streams the server ended). A
// watcher that is answered anything but 200 counts as refused. An event
// is counted by its "event: counter\n" line, which may straddle reads.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

constexpr std::string_view kEventLine = "event: counter\n";

struct Watcher {
  int fd = -1;
  std::string head;  // bytes before the end of the response head
  bool header_done = false;
  bool refused = false;
  bool closed = false;
  std::string carry;  // the last bytes of the previous read (split lines)
  uint64_t events = 0;
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "watch_fanout: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Counts kEventLine in carry + data, keeping the tail that could start one.
uint64_t CountEvents(Watcher& w, std::string_view data) {
  std::string buf = w.carry;
  buf.append(data);
  uint64_t n = 0;
  for (size_t pos = 0; (pos = buf.find(kEventLine, pos)) != std::string::npos;
       pos += kEventLine.size()) {
    ++n;
  }
  const size_t keep = kEventLine.size() - 1;
  w.carry = buf.size() > keep ? buf.substr(buf.size() - keep) : buf;
  return n;
}

// Feeds one read's bytes to the watcher's parser; returns events found.
uint64_t Feed(Watcher& w, std::string_view data) {
  if (!w.header_done) {
    w.head.append(data);
    const size_t end = w.head.find("\r\n\r\n");
    if (end == std::string::npos) return 0;
    w.header_done = true;
    if (w.head.rfind("HTTP/1.1 200", 0) != 0) {
      w.refused = true;
      return 0;
    }
    const std::string body = w.head.substr(end + 4);
    w.head.clear();
    return CountEvents(w, body);
  }
  return CountEvents(w, data);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  std::string path = "/counters/x/watch";
  int port = 0;
  int connections = 1000;
  int ready_timeout_s = 60;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--host")
      host = value;
    else if (flag == "--port")
      port = std::atoi(value);
    else if (flag == "--connections")
      connections = std::atoi(value);
    else if (flag == "--path")
      path = value;
    else if (flag == "--ready-timeout-s")
      ready_timeout_s = std::atoi(value);
    else {
      std::fprintf(stderr, "watch_fanout: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0 || connections <= 0) {
    std::fprintf(stderr, "watch_fanout: --port and --connections > 0 needed\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  const std::string request = "GET " + path +
                              " HTTP/1.1\r\nHost: bench\r\n"
                              "Accept: text/event-stream\r\n\r\n";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "watch_fanout: bad --host %s\n", host.c_str());
    return 2;
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  std::vector<Watcher> watchers(static_cast<size_t>(connections));
  for (size_t i = 0; i < watchers.size(); ++i) {
    Watcher& w = watchers[i];
    w.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (w.fd < 0) Die("socket");
    if (connect(w.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      Die("connect");
    }
    // One small write on a fresh loopback socket: it does not block.
    if (write(w.fd, request.data(), request.size()) !=
        static_cast<ssize_t>(request.size())) {
      Die("write");
    }
    fcntl(w.fd, F_SETFL, fcntl(w.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, w.fd, &ev) != 0) Die("epoll_ctl");
  }

  using Clock = std::chrono::steady_clock;
  std::vector<char> buf(64 * 1024);
  std::vector<epoll_event> events(256);
  uint64_t total_events = 0;
  uint64_t total_bytes = 0;
  bool ready = false;
  uint64_t events_at_ready = 0;
  uint64_t bytes_at_ready = 0;
  auto ready_at = Clock::now();
  const auto deadline = Clock::now() + std::chrono::seconds(ready_timeout_s);
  auto count = [&](auto pred) {
    int n = 0;
    for (const Watcher& w : watchers) n += pred(w) ? 1 : 0;
    return n;
  };
  while (!g_stop) {
    const int n =
        epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    for (int k = 0; k < n; ++k) {
      Watcher& w = watchers[events[k].data.u64];
      for (;;) {
        const ssize_t got = read(w.fd, buf.data(), buf.size());
        if (got > 0) {
          total_bytes += static_cast<uint64_t>(got);
          const uint64_t e =
              Feed(w, std::string_view(buf.data(), static_cast<size_t>(got)));
          w.events += e;
          total_events += e;
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
        // EOF or an error: the server ended this stream.
        w.closed = true;
        epoll_ctl(ep, EPOLL_CTL_DEL, w.fd, nullptr);
        close(w.fd);
        w.fd = -1;
        break;
      }
      if (w.refused && w.fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, w.fd, nullptr);
        close(w.fd);
        w.fd = -1;
      }
    }
    if (!ready) {
      const int waiting = count([](const Watcher& w) {
        return !w.refused && !w.closed && w.events == 0;
      });
      if (waiting == 0 || Clock::now() > deadline) {
        ready = true;
        ready_at = Clock::now();
        events_at_ready = total_events;
        bytes_at_ready = total_bytes;
        std::printf("ready connected=%d refused=%d\n",
                    count([](const Watcher& w) { return w.events > 0; }),
                    count([](const Watcher& w) { return w.refused; }));
        std::fflush(stdout);
      }
    }
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - ready_at);
  std::printf(
      "watch events=%llu bytes=%llu open=%d refused=%d closed=%d "
      "elapsed_ms=%lld\n",
      static_cast<unsigned long long>(total_events - events_at_ready),
      static_cast<unsigned long long>(total_bytes - bytes_at_ready),
      count([](const Watcher& w) { return w.fd >= 0; }),
      count([](const Watcher& w) { return w.refused; }),
      count([](const Watcher& w) { return w.closed && !w.refused; }),
      static_cast<long long>(elapsed.count()));
  return 0;
}
