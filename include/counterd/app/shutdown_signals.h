// ShutdownSignals: SIGTERM, SIGINT and SIGHUP as something the main thread
// waits for. Construct it before any thread starts: it blocks the three
// signals in the calling thread, every later thread inherits that mask, and
// Wait() takes them with sigtimedwait(). This also works as PID 1 in a
// container, where the kernel drops signals that have no handler but never
// drops blocked ones. SIGTERM and SIGINT shut down; SIGHUP asks for a
// reload (of the tokens file) and never stops the process. The signals stay
// blocked for the rest of the process: a second SIGTERM during the drain is
// ignored rather than killing the process in the middle of the final
// journal sync (the drain is bounded by --drain-timeout-ms; SIGKILL still
// works). Not thread-safe: one owner.
#ifndef COUNTERD_APP_SHUTDOWN_SIGNALS_H_
#define COUNTERD_APP_SHUTDOWN_SIGNALS_H_

#include <chrono>
#include <optional>
#include <string_view>

namespace counterd::app {

enum class Signal { kTerminate, kInterrupt, kHangup };

// "SIGTERM", "SIGINT", "SIGHUP".
std::string_view SignalName(Signal signal);

class ShutdownSignals {
 public:
  ShutdownSignals();  // blocks SIGTERM, SIGINT and SIGHUP; ignores SIGPIPE
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;
  ~ShutdownSignals() = default;  // the signals stay blocked (see above)

  // Blocks until SIGTERM, SIGINT or SIGHUP arrives and returns which, or
  // until |timeout| passes (nullopt: without a timeout it never returns
  // nullopt).
  std::optional<Signal> Wait(
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
};

}  // namespace counterd::app

#endif  // COUNTERD_APP_SHUTDOWN_SIGNALS_H_
