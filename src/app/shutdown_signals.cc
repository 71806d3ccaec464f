#include "counterd/app/shutdown_signals.h"

#include <cerrno>
#include <csignal>
#include <ctime>

namespace counterd::app {
namespace {

sigset_t WaitedSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

Signal FromNumber(int signal) {
  if (signal == SIGINT) return Signal::kInterrupt;
  if (signal == SIGHUP) return Signal::kHangup;
  return Signal::kTerminate;
}

}  // namespace

std::string_view SignalName(Signal signal) {
  switch (signal) {
    case Signal::kTerminate:
      return "SIGTERM";
    case Signal::kInterrupt:
      return "SIGINT";
    case Signal::kHangup:
      return "SIGHUP";
  }
  return "SIGTERM";
}

ShutdownSignals::ShutdownSignals() {
  const sigset_t set = WaitedSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer that goes away mid-write must cost a connection, not the
  // process (Asio already sends with MSG_NOSIGNAL; this covers the rest).
  struct sigaction ignore {};
  ignore.sa_handler =
      SIG_IGN;  // NOLINT(cppcoreguidelines-pro-type-union-access)
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

// Not static although it reads no member: it is only correct after the
// constructor blocked the signals, which an instance proves.
// NOLINTNEXTLINE(readability-convert-member-functions-to-static)
std::optional<Signal> ShutdownSignals::Wait(
    std::optional<std::chrono::milliseconds> timeout) {
  const sigset_t set = WaitedSet();
  if (!timeout) {
    int signal = 0;
    while (sigwait(&set, &signal) != 0) {
    }
    return FromNumber(signal);
  }
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*timeout);
  timespec ts{};
  ts.tv_sec = static_cast<std::time_t>(secs.count());
  ts.tv_nsec = static_cast<long>(  // NOLINT(google-runtime-int): timespec's
      std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout - secs)
          .count());
  for (;;) {
    const int signal = sigtimedwait(&set, nullptr, &ts);
    if (signal > 0) return FromNumber(signal);
    // EINTR: another signal's handler ran; a shorter wait is harmless.
    if (errno != EINTR) return std::nullopt;  // EAGAIN: the timeout passed
  }
}

}  // namespace counterd::app
