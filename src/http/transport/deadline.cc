#include "transport/deadline.h"

#include <algorithm>

namespace counterd::http {

Deadline::Deadline(const boost::asio::io_context::executor_type& executor,
                   Clock::duration floor)
    : timer_(executor),
      floor_(std::max<Clock::duration>(floor, std::chrono::milliseconds(1))) {}

bool Deadline::Set(Clock::time_point at) {
  deadline_ = at;
  if (stopped_) return false;
  return !pending_ || at < expiry_;
}

Deadline::Outcome Deadline::OnWaitComplete(
    const boost::system::error_code& ec) {
  // Cancelled: by Stop, or by AsyncWait for a newer wait that is still
  // pending, so pending_ stays as it is.
  if (ec) return Outcome::kIdle;
  pending_ = false;
  if (stopped_ || deadline_ == Clock::time_point::max()) return Outcome::kIdle;
  if (Clock::now() >= deadline_) return Outcome::kExpired;
  return Outcome::kWaitAgain;
}

void Deadline::Stop() {
  stopped_ = true;
  deadline_ = Clock::time_point::max();
  timer_.cancel();
}

Deadline::Clock::time_point Deadline::NextExpiry() const {
  const Clock::time_point now = Clock::now();
  if (deadline_ - now <= floor_) return deadline_;
  return now + floor_;
}

}  // namespace counterd::http
