// FailureLatch: the file backend's fail-closed state (Invariant 7). Once a
// write, fsync, rename or directory fsync has failed, the latch stays shut
// until restart: every later write is refused, and a failed fsync is never
// retried. It also keeps the rule for what refused writes are told: the
// first write to meet a failure no request has been told about (one that
// happened in the background: journal rotation, snapshot) gets its cause —
// 507 for a full disk — and every later one 503, since freeing space alone
// would not reopen the store.
//
// Thread-safe.
#ifndef COUNTERD_STORAGE_FILE_FAILURE_LATCH_H_
#define COUNTERD_STORAGE_FILE_FAILURE_LATCH_H_

#include <atomic>

#include "counterd/core/mutex.h"
#include "counterd/core/status.h"

namespace counterd::storage {

class FailureLatch {
 public:
  FailureLatch() = default;
  FailureLatch(const FailureLatch&) = delete;
  FailureLatch& operator=(const FailureLatch&) = delete;
  ~FailureLatch() = default;

  // Shuts the latch with |cause| unless already shut (the first cause is
  // kept) and logs it once. |answered|: the requests that met the failure
  // are being told its cause by the caller.
  void Fail(const Status& cause, bool answered) EXCLUDES(mu_);

  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // kUnavailable naming the first cause. REQUIRES: failed().
  Status Refusal() const EXCLUDES(mu_);
  // What to answer a write refused now (the 507-then-503 rule above).
  // REQUIRES: failed().
  Status RefuseWrite() EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  Status cause_ GUARDED_BY(mu_);
  bool answered_ GUARDED_BY(mu_) = false;
  std::atomic<bool> failed_{false};
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_FAILURE_LATCH_H_
