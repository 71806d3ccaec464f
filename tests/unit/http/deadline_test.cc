// Deadline on a real io_context: it expires at the deadline last set, and
// a deadline moved earlier while a wait is pending is still honoured, with
// or without restarting the wait.
#include "transport/deadline.h"

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace counterd::http {
namespace {

using Clock = Deadline::Clock;
using std::chrono::milliseconds;

// Waits on |deadline| as a session does; records when it expired.
class Waiter {
 public:
  explicit Waiter(Deadline& deadline) : deadline_(deadline) {}

  void Set(Clock::time_point at) {
    if (deadline_.Set(at)) Wait();
  }
  void Wait() {
    ++waits_;
    deadline_.AsyncWait([this](const boost::system::error_code& ec) {
      switch (deadline_.OnWaitComplete(ec)) {
        case Deadline::Outcome::kWaitAgain:
          return Wait();
        case Deadline::Outcome::kExpired:
          expired_at_ = Clock::now();
          return;
        case Deadline::Outcome::kIdle:
          return;
      }
    });
  }

  Deadline& deadline_;
  int waits_ = 0;
  Clock::time_point expired_at_{};
};

TEST(DeadlineTest, ExpiresAtTheDeadline) {
  boost::asio::io_context ioc(1);
  Deadline deadline(ioc.get_executor(), milliseconds(10));
  Waiter waiter(deadline);
  const Clock::time_point start = Clock::now();
  waiter.Set(start + milliseconds(50));
  ioc.run();
  ASSERT_NE(waiter.expired_at_, Clock::time_point{});
  EXPECT_GE(waiter.expired_at_ - start, milliseconds(50));
  // Woken every floor on the way: a later deadline costs no re-arm when set.
  EXPECT_GE(waiter.waits_, 2);
}

TEST(DeadlineTest, MovingTheDeadlineDoesNotStartAnotherWait) {
  boost::asio::io_context ioc(1);
  Deadline deadline(ioc.get_executor(), milliseconds(20));
  Waiter waiter(deadline);
  const Clock::time_point start = Clock::now();
  waiter.Set(start + milliseconds(1000));
  // Earlier, but no earlier than the floor from now: the pending wait
  // (capped at the floor) still ends in time.
  EXPECT_FALSE(deadline.Set(start + milliseconds(30)));
  ioc.run();
  ASSERT_NE(waiter.expired_at_, Clock::time_point{});
  EXPECT_GE(waiter.expired_at_ - start, milliseconds(30));
  EXPECT_LT(waiter.expired_at_ - start, milliseconds(900));
}

TEST(DeadlineTest, DeadlineBeforeThePendingWaitEndsRestartsIt) {
  boost::asio::io_context ioc(1);
  Deadline deadline(ioc.get_executor(), milliseconds(5000));
  Waiter waiter(deadline);
  const Clock::time_point start = Clock::now();
  waiter.Set(start + milliseconds(10000));
  waiter.Set(start + milliseconds(30));  // the wait pending ends at 5 s
  EXPECT_EQ(waiter.waits_, 2);
  ioc.run();
  ASSERT_NE(waiter.expired_at_, Clock::time_point{});
  EXPECT_GE(waiter.expired_at_ - start, milliseconds(30));
  EXPECT_LT(waiter.expired_at_ - start, milliseconds(4000));
}

TEST(DeadlineTest, ClearedDeadlineNeverExpires) {
  boost::asio::io_context ioc(1);
  Deadline deadline(ioc.get_executor(), milliseconds(5));
  Waiter waiter(deadline);
  waiter.Set(Clock::now() + milliseconds(10));
  deadline.Clear();
  ioc.run();  // returns once the wait finds nothing to wait for
  EXPECT_EQ(waiter.expired_at_, Clock::time_point{});
}

TEST(DeadlineTest, StopCancelsAndDisarms) {
  boost::asio::io_context ioc(1);
  Deadline deadline(ioc.get_executor(), milliseconds(1000));
  Waiter waiter(deadline);
  waiter.Set(Clock::now() + milliseconds(1000));
  deadline.Stop();
  EXPECT_FALSE(deadline.Set(Clock::now() + milliseconds(1)));
  const Clock::time_point start = Clock::now();
  ioc.run();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_EQ(waiter.expired_at_, Clock::time_point{});
}

}  // namespace
}  // namespace counterd::http
