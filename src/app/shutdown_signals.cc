#include "counterd/app/shutdown_signals.h"

#include <signal.h>

namespace counterd::app {
namespace {

sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

ShutdownSignals::ShutdownSignals() {
  const sigset_t set = ShutdownSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer that goes away mid-write must cost a connection, not the
  // process (Asio already sends with MSG_NOSIGNAL; this covers the rest).
  struct sigaction ignore {};
  ignore.sa_handler =
      SIG_IGN;  // NOLINT(cppcoreguidelines-pro-type-union-access)
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

std::string_view ShutdownSignals::Wait() {
  const sigset_t set = ShutdownSet();
  int signal = 0;
  while (sigwait(&set, &signal) != 0) {
  }
  return signal == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace counterd::app
