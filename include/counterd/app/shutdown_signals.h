// ShutdownSignals: SIGTERM and SIGINT as something the main thread waits
// for. Construct it before any thread starts: it blocks both signals in the
// calling thread, every later thread inherits that mask, and Wait() takes
// them with sigwait(). This also works as PID 1 in a container, where the
// kernel drops signals that have no handler but never drops blocked ones.
// The signals stay blocked for the rest of the process: a second SIGTERM
// during the drain is ignored rather than killing the process in the
// middle of the final journal sync (the drain is bounded by
// --drain-timeout-ms; SIGKILL still works). Not thread-safe: one owner.
#ifndef COUNTERD_APP_SHUTDOWN_SIGNALS_H_
#define COUNTERD_APP_SHUTDOWN_SIGNALS_H_

#include <string_view>

namespace counterd::app {

class ShutdownSignals {
 public:
  ShutdownSignals();  // blocks SIGTERM and SIGINT; ignores SIGPIPE
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // Blocks until SIGTERM or SIGINT arrives; returns "SIGTERM" or "SIGINT".
  std::string_view Wait();
};

}  // namespace counterd::app

#endif  // COUNTERD_APP_SHUTDOWN_SIGNALS_H_
