// Helpers for storage tests: transactions built in one line, completions
// that keep their result, and a synchronous way to commit through a
// FileRepository whose committer is stepped by hand (start_committer=false,
// CommitPendingBatch).
#ifndef COUNTERD_TESTS_UNIT_STORAGE_STORE_TEST_UTIL_H_
#define COUNTERD_TESTS_UNIT_STORAGE_STORE_TEST_UTIL_H_

#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "counterd/core/clock.h"
#include "counterd/domain/transaction.h"
#include "counterd/storage/file_repository.h"

namespace counterd::domain {
// For readable gtest failure messages.
inline void PrintTo(const Counter& c, std::ostream* os) {
  *os << c.name << "=" << c.value << "@v" << c.version;
  if (c.expires_at_ms != 0) *os << " expires " << c.expires_at_ms;
}
inline void PrintTo(const TransactionOutcome& o, std::ostream* os) {
  *os << o.status.ToString();
  if (o.failed_op) *os << " failed_op=" << *o.failed_op;
  for (const OpResult& r : o.results) {
    *os << " [";
    if (r.counter) PrintTo(*r.counter, os);
    if (r.created) *os << " created";
    *os << "]";
  }
  if (o.current) {
    *os << " current=";
    PrintTo(*o.current, os);
  }
  if (o.replayed) *os << " replayed";
}
}  // namespace counterd::domain

namespace counterd::storage::testing {

// -- transactions ----------------------------------------------------------

inline domain::CounterName Name(std::string_view name) {
  auto parsed = domain::CounterName::Parse(name);
  EXPECT_TRUE(parsed) << "bad counter name in a test: " << name;
  return parsed ? std::move(*parsed) : domain::CounterName::Default();
}

inline domain::Operation Op(domain::OpKind kind, std::string_view name,
                            std::int64_t operand = 0) {
  domain::Operation op;
  op.kind = kind;
  op.name = Name(name);
  op.operand = operand;
  return op;
}
inline domain::Operation AddOp(std::string_view name, std::int64_t by) {
  return Op(domain::OpKind::kAdd, name, by);
}
inline domain::Operation SubOp(std::string_view name, std::int64_t by) {
  return Op(domain::OpKind::kSubtract, name, by);
}
inline domain::Operation SetOp(std::string_view name, std::int64_t value) {
  return Op(domain::OpKind::kSet, name, value);
}
inline domain::Operation DeleteOp(std::string_view name) {
  return Op(domain::OpKind::kDelete, name);
}
inline domain::Operation GetOp(std::string_view name) {
  return Op(domain::OpKind::kGet, name);
}

inline domain::Transaction Add(std::string_view name, std::int64_t by) {
  return domain::SingleOperation(AddOp(name, by));
}
inline domain::Transaction Delete(std::string_view name) {
  return domain::SingleOperation(DeleteOp(name));
}
inline domain::Transaction Batch(std::vector<domain::Operation> ops) {
  domain::Transaction tx;
  tx.ops = std::move(ops);
  tx.batch = true;
  return tx;
}
// |tx| sent with Idempotency-Key |key| by |scope| ("" without auth).
inline domain::Transaction WithKey(domain::Transaction tx, std::string_view key,
                                   std::string scope = "") {
  auto parsed = domain::IdempotencyKey::Parse(key);
  EXPECT_TRUE(parsed) << "bad idempotency key in a test: " << key;
  if (parsed) {
    tx.idempotency =
        domain::IdempotencyIntent{std::move(scope), std::move(*parsed)};
  }
  return tx;
}

// -- completions -----------------------------------------------------------

// Keeps the result of one call; for callers on one thread.
template <typename T>
class Capture final : public Completion<T> {
 public:
  void Complete(T result) override {
    EXPECT_FALSE(result_.has_value()) << "completed twice";
    result_ = std::move(result);
  }
  bool done() const { return result_.has_value(); }
  const T& result() const { return *result_; }
  T Take() { return std::move(*result_); }

 private:
  std::optional<T> result_;
};

// Hands the result (and the thread that completed) to a waiting thread.
template <typename T>
class Promise final : public Completion<T> {
 public:
  struct Done {
    T result;
    std::thread::id thread;
  };
  void Complete(T result) override {
    promise_.set_value(Done{std::move(result), std::this_thread::get_id()});
  }
  Done Wait() { return future_.get(); }

 private:
  std::promise<Done> promise_;
  std::future<Done> future_ = promise_.get_future();
};

using OutcomeCapture = Capture<domain::TransactionOutcome>;

// One completion shared by many commits on many threads: counts outcomes
// and lets a thread wait until |n| have come. Thread-safe.
class Tally final : public Completion<domain::TransactionOutcome> {
 public:
  void Complete(domain::TransactionOutcome outcome) override {
    std::lock_guard lock(mu_);
    if (outcome.status.ok()) {
      ++ok_;
    } else {
      ++refused_;
    }
    cv_.notify_all();
  }
  // Waits until |n| outcomes have come in all.
  void WaitFor(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return ok_ + refused_ >= n; });
  }
  int ok() const {
    std::lock_guard lock(mu_);
    return ok_;
  }
  int refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int ok_ = 0;
  int refused_ = 0;
};

// -- synchronous calls -----------------------------------------------------

inline FileRepositoryOptions ManualOptions(std::string dir = "/data") {
  FileRepositoryOptions options;
  options.data_dir = std::move(dir);
  options.start_committer = false;
  return options;
}

// Commits |tx| through a repository stepped by hand and returns its
// outcome (a refusal if the repository completed it before the commit).
inline domain::TransactionOutcome Commit(FileRepository& repo,
                                         domain::Transaction tx) {
  OutcomeCapture done;
  repo.Commit(std::move(tx), done);
  if (!done.done()) repo.CommitPendingBatch();
  EXPECT_TRUE(done.done()) << "no outcome after CommitPendingBatch";
  if (!done.done()) return domain::Refusal(Status::Internal("no outcome"));
  return done.Take();
}

inline std::optional<domain::Counter> Get(CounterRepository& repo,
                                          std::string_view name) {
  Capture<Result<std::optional<domain::Counter>>> done;
  repo.Get(Name(name), done);
  EXPECT_TRUE(done.done() && done.result().has_value());
  if (!done.done() || !done.result()) return std::nullopt;
  return *done.result();
}

inline CounterList ListWithSeq(CounterRepository& repo, std::string prefix = "",
                               std::string after = "",
                               std::size_t limit = 1u << 30) {
  Capture<Result<CounterList>> done;
  repo.List(ListRequest{std::move(prefix), std::move(after), limit}, done);
  EXPECT_TRUE(done.done() && done.result().has_value());
  if (!done.done() || !done.result()) return {};
  return *done.result();
}

inline std::vector<domain::Counter> List(CounterRepository& repo,
                                         std::string prefix = "",
                                         std::string after = "",
                                         std::size_t limit = 1u << 30) {
  return ListWithSeq(repo, std::move(prefix), std::move(after), limit).counters;
}

// name -> value of every live counter.
inline std::map<std::string, std::int64_t> Dump(CounterRepository& repo) {
  std::map<std::string, std::int64_t> out;
  for (const domain::Counter& c : List(repo)) out[c.name] = c.value;
  return out;
}

// Tests that open thousands of stores would log thousands of torn-tail
// warnings and "store failed" errors; they keep quiet while one of these
// lives.
class QuietLogs {
 public:
  QuietLogs() : level_(spdlog::get_level()) {
    spdlog::set_level(spdlog::level::off);
  }
  ~QuietLogs() { spdlog::set_level(level_); }
  QuietLogs(const QuietLogs&) = delete;
  QuietLogs& operator=(const QuietLogs&) = delete;

 private:
  spdlog::level::level_enum level_;
};

}  // namespace counterd::storage::testing

#endif  // COUNTERD_TESTS_UNIT_STORAGE_STORE_TEST_UTIL_H_
