#include "failure_latch.h"

#include "counterd/core/log.h"

namespace counterd::storage {

void FailureLatch::Fail(const Status& cause, bool answered) {
  MutexLock lock(mu_);
  if (failed_.load(std::memory_order_relaxed)) return;
  cause_ = cause;
  answered_ = answered;
  failed_.store(true, std::memory_order_release);
  log::Error("store failed closed; refusing writes until restart (reads go on)",
             {{"cause", cause.ToString()}});
}

Status FailureLatch::Refusal() const {
  MutexLock lock(mu_);
  return Status::Unavailable("store failed closed after: " + cause_.message() +
                             "; writes are refused until restart");
}

Status FailureLatch::RefuseWrite() {
  Status refusal = Refusal();
  MutexLock lock(mu_);
  if (answered_) return refusal;
  answered_ = true;
  if (cause_.code() != StatusCode::kResourceExhausted) return refusal;
  return Status::ResourceExhausted(refusal.message());
}

}  // namespace counterd::storage
