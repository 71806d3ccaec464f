// Deadline: a connection's current time limit, kept on one steady_timer
// that is re-armed lazily, so moving the deadline usually costs no system
// call.
//
// beast::tcp_stream re-arms its timer (timerfd_settime) on every
// expires_after and every I/O operation; a keep-alive request paid two to
// four of those. Here Set() mostly just records the new deadline: a wait
// is started only when none is pending, and a wait that ends before the
// deadline simply waits again. Each wait is capped at |floor| from when it
// starts, |floor| being the shortest timeout the owner sets per request:
// then no such deadline, set later, can fall before the pending wait ends,
// and the timer is not touched per request. A connection wakes at most
// once per |floor|. A deadline earlier than the pending wait's end (a
// shorter, rarer limit) restarts the wait.
//
// Thread-safety: none; use it on its io_context's single thread.
#ifndef COUNTERD_HTTP_TRANSPORT_DEADLINE_H_
#define COUNTERD_HTTP_TRANSPORT_DEADLINE_H_

#include <chrono>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

namespace counterd::http {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  using Timer =
      boost::asio::basic_waitable_timer<Clock, boost::asio::wait_traits<Clock>,
                                        boost::asio::io_context::executor_type>;

  // What a completed wait means; see OnWaitComplete.
  enum class Outcome { kExpired, kWaitAgain, kIdle };

  // |floor|: see above. At least 1 ms is used, so that a zero timeout
  // cannot make the timer spin.
  Deadline(const boost::asio::io_context::executor_type& executor,
           Clock::duration floor);

  // Sets the deadline to |at|. Returns true if the caller must call
  // AsyncWait: no wait is pending, or the pending one ends after |at|.
  [[nodiscard]] bool Set(Clock::time_point at);
  // No deadline (until the next Set).
  void Clear() { deadline_ = Clock::time_point::max(); }

  // Starts a wait, cancelling the pending one if any (its handler then
  // sees operation_aborted, which OnWaitComplete treats as kIdle).
  template <class Handler>
  void AsyncWait(Handler&& handler) {
    pending_ = true;
    expiry_ = NextExpiry();
    timer_.expires_at(expiry_);
    timer_.async_wait(std::forward<Handler>(handler));
  }

  // Call first thing in the wait's handler. kExpired: the deadline has
  // passed (the owner cuts the connection off); kWaitAgain: call AsyncWait
  // again; kIdle: nothing to do (no deadline, a cancelled wait, or Stop).
  Outcome OnWaitComplete(const boost::system::error_code& ec);

  // Cancels any wait and disarms for good: Set returns false from now on.
  void Stop();

 private:
  Clock::time_point NextExpiry() const;

  Timer timer_;
  const Clock::duration floor_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point expiry_;  // of the pending wait
  bool pending_ = false;
  bool stopped_ = false;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_DEADLINE_H_
