#include "durable_counter_store.h"

#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "record_format.h"
#include "recovery.h"
#include "snapshot_file.h"

namespace counterd::storage {

namespace {
constexpr std::string_view kLockFileName = "LOCK";

domain::MutationOutcome Refused(Status status) {
  domain::MutationOutcome outcome;
  outcome.status = std::move(status);
  return outcome;
}
}  // namespace

Result<std::unique_ptr<CounterStore>> CounterStore::Open(
    platform::FileSystem& fs, const Clock& clock, StoreOptions options) {
  const auto started = std::chrono::steady_clock::now();
  const std::string& dir = options.data_dir;
  COUNTERD_RETURN_IF_ERROR(fs.CreateDir(dir));
  // One owner per data dir: two writers would interleave journal records.
  auto lock = fs.LockFile(dir + "/" + std::string(kLockFileName));
  if (!lock) return lock.error().WithContext("data dir " + dir);

  auto recovered = Recover(fs, dir, options.idempotency_retention, clock.Now());
  if (!recovered) return recovered.error();
  if (!recovered->torn_file.empty()) {
    spdlog::warn(
        "recovery: cut a torn record of {} bytes at the end of {} (a crash "
        "interrupted an append that was never acknowledged)",
        recovered->info.torn_bytes_truncated, recovered->torn_file);
  }

  Result<std::unique_ptr<platform::WritableFile>> file =
      recovered->journal_exists ? fs.NewAppendableFile(recovered->journal_path)
                                : fs.NewWritableFile(recovered->journal_path);
  if (!file) return file.error();
  if (!recovered->journal_exists) {
    // The new journal's directory entry must be durable before any record
    // in it is acknowledged, or a crash could lose the whole file.
    COUNTERD_RETURN_IF_ERROR(fs.SyncDir(dir));
  }
  auto journal = std::make_unique<JournalWriter>(recovered->journal_path,
                                                 std::move(*file));
  recovered->info.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
  return std::unique_ptr<CounterStore>(std::make_unique<DurableCounterStore>(
      fs, clock, std::move(options), std::move(*lock),
      std::move(recovered->state), recovered->last_seq, std::move(journal),
      recovered->info, recovered->snapshot_bytes));
}

Result<RecoveryInfo> CounterStore::Verify(platform::FileSystem& fs,
                                          const std::string& data_dir) {
  return VerifyDataDir(fs, data_dir);
}

DurableCounterStore::DurableCounterStore(
    platform::FileSystem& fs, const Clock& clock, StoreOptions options,
    std::unique_ptr<platform::FileLock> lock, StoreState state,
    std::uint64_t last_seq, std::unique_ptr<JournalWriter> journal,
    RecoveryInfo recovery, std::uint64_t snapshot_bytes)
    : fs_(fs),
      clock_(clock),
      options_(std::move(options)),
      lock_(std::move(lock)),
      recovery_(recovery),
      state_(std::move(state)),
      journal_(std::move(journal)),
      last_seq_(last_seq) {
  journal_bytes_ = journal_->Size();
  last_seq_stat_ = last_seq_;
  counters_ = state_.counter_count();
  idempotency_keys_ = state_.idempotency_count();
  snapshot_bytes_ = snapshot_bytes;
  if (options_.start_committer) {
    committer_ = std::jthread(
        [this](const std::stop_token& stop) { CommitterLoop(stop); });
  }
}

DurableCounterStore::~DurableCounterStore() { (void)Close(); }

std::optional<domain::Counter> DurableCounterStore::Get(
    std::string_view name) const {
  std::shared_lock lock(state_mu_);
  return state_.FindCounter(name);
}

std::vector<domain::Counter> DurableCounterStore::List(
    std::string_view prefix, std::string_view after, std::size_t limit) const {
  std::shared_lock lock(state_mu_);
  return state_.List(prefix, after, limit);
}

std::optional<IdempotencyRecord> DurableCounterStore::FindIdempotency(
    std::string_view key) const {
  std::shared_lock lock(state_mu_);
  const IdempotencyRecord* r = state_.FindIdempotency(key, clock_.Now());
  if (r == nullptr) return std::nullopt;
  return *r;
}

void DurableCounterStore::Submit(Planner planner, Completion done) {
  if (failed_.load()) {
    done(Refused(RefuseMutation()));
    return;
  }
  std::vector<Pending> batch;
  bool closing = false;
  {
    std::lock_guard lock(queue_mu_);
    closing = closing_;
    if (!closing) {
      queue_.push_back({std::move(planner), std::move(done)});
      if (committing_) return;  // the holder takes it with the next batch
      // A compaction is due only on the committer thread: hand it the role
      // now, or a steady stream of inline commits could put it off forever.
      if (compaction_due_ || !InlineCommitPays()) {
        queue_cv_.notify_all();
        return;
      }
      // Inline commit: nobody is committing, so this thread takes the
      // committer's role for one batch (LevelDB's writer-does-the-write).
      // On a fast disk the two thread hand-offs it saves cost as much as
      // the fdatasync itself.
      committing_ = true;
      batch = TakeBatchLocked();
    }
  }
  if (closing) {
    done(Refused(Status::Unavailable("store is closing")));
    return;
  }
  CommitBatch(batch);
  ReleaseCommitRole();
}

bool DurableCounterStore::InlineCommitPays() const {
  if (!options_.start_committer) return false;  // tests commit by hand
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(
      options_.inline_commit_max_fsync);
  // A batch of more than one says writers are arriving concurrently: then
  // group commit amortises the hand-offs anyway, and an I/O thread blocked
  // in fdatasync would hold up every other connection it serves.
  return last_batch_size_.load(std::memory_order_relaxed) <= 1 &&
         fsync_ewma_ns_.load(std::memory_order_relaxed) <
             static_cast<std::uint64_t>(limit.count());
}

void DurableCounterStore::ReleaseCommitRole() {
  const bool compact = journal_->Size() >= options_.compaction_threshold_bytes;
  std::lock_guard lock(queue_mu_);
  committing_ = false;
  // Compaction copies the whole state: left to the committer thread so a
  // submitter's thread is never held up by it.
  if (compact) compaction_due_ = true;
  if (!queue_.empty() || compaction_due_ || closing_) queue_cv_.notify_all();
}

std::vector<DurableCounterStore::Pending>
DurableCounterStore::TakeBatchLocked() {
  std::vector<Pending> batch;
  const std::size_t n = std::min(queue_.size(), options_.max_batch_mutations);
  batch.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void DurableCounterStore::CommitterLoop(const std::stop_token& stop) {
  while (true) {
    std::vector<Pending> batch;
    bool compact = false;
    {
      std::unique_lock lock(queue_mu_);
      // No linger timer: a batch is whatever queued up during the previous
      // fsync (leveldb's group commit). An inline committer holds the role
      // until it is done; then the queue is ours.
      queue_cv_.wait(lock, [&] {
        return !committing_ && (!queue_.empty() || compaction_due_ || closing_);
      });
      if (queue_.empty() && (closing_ || stop.stop_requested())) return;
      committing_ = true;
      batch = TakeBatchLocked();
      compact = compaction_due_;
      compaction_due_ = false;
    }
    if (!batch.empty()) CommitBatch(batch);
    if (compact || !batch.empty()) (void)MaybeCompact(false, false);
    std::lock_guard lock(queue_mu_);
    committing_ = false;
  }
}

std::size_t DurableCounterStore::CommitPendingBatch() {
  std::vector<Pending> batch;
  {
    std::lock_guard lock(queue_mu_);
    batch = TakeBatchLocked();
  }
  if (!batch.empty()) CommitBatch(batch);
  return batch.size();
}

void DurableCounterStore::CommitBatch(std::vector<Pending>& batch) {
  if (failed_.load()) {
    const Status refusal = RefuseMutation();
    for (Pending& p : batch) p.done(Refused(refusal));
    return;
  }
  // Plan every mutation in order against the committed state plus the
  // batch's earlier effects. Committed state == durable state here: only
  // the holder of the committer's role writes, and every earlier batch is
  // synced.
  std::vector<Effect> effects;
  std::vector<domain::MutationOutcome> outcomes;
  outcomes.reserve(batch.size());
  std::uint64_t changed = 0;
  {
    std::shared_lock lock(state_mu_);
    BatchView view(state_, clock_.Now());
    for (Pending& p : batch) {
      Plan plan = p.planner(view);
      for (Effect& e : plan.effects) {
        view.Apply(e);
        effects.push_back(std::move(e));
      }
      if (!plan.effects.empty()) ++changed;
      outcomes.push_back(std::move(plan.outcome));
    }
  }

  if (!effects.empty()) {
    std::string record;
    EncodeRecord(last_seq_ + 1, effects, record);
    const std::uint64_t size_before = journal_->Size();
    Status s = journal_->Append(record);
    if (s.ok()) {
      const auto t0 = std::chrono::steady_clock::now();
      s = journal_->Sync();  // Invariant 1: the acknowledgement point.
      const auto took = std::chrono::steady_clock::now() - t0;
      fsyncs_.fetch_add(1);
      fsync_seconds_.Observe(std::chrono::duration<double>(took).count());
      // A moving average (weight 1/8) decides whether inline commits pay.
      const auto ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
      const std::uint64_t avg = fsync_ewma_ns_.load(std::memory_order_relaxed);
      fsync_ewma_ns_.store(avg - avg / 8 + ns / 8, std::memory_order_relaxed);
    }
    if (!s.ok()) {
      // Invariant 7. Take back the unacknowledged bytes so that a restart
      // without power loss recovers exactly the acknowledged state; the
      // failed fsync itself is never retried.
      Fail(s, /*answered=*/true);  // this batch gets |s| itself, below
      if (Status t = fs_.TruncateFile(journal_->path(), size_before); !t.ok()) {
        spdlog::error("could not cut the failed record from {}: {}",
                      journal_->path(), t.ToString());
      }
      for (Pending& p : batch) p.done(Refused(s));
      return;
    }
    ++last_seq_;
    {
      // Invariant 2: readers see the batch only now that it is durable.
      std::unique_lock lock(state_mu_);
      for (const Effect& e : effects) state_.Apply(e);
      state_.PruneExpired(clock_.Now());
      counters_ = state_.counter_count();
      idempotency_keys_ = state_.idempotency_count();
    }
    last_seq_stat_ = last_seq_;
    journal_bytes_ = journal_->Size();
    commits_.fetch_add(1);
    mutations_.fetch_add(changed);
  }
  batch_sizes_.Observe(static_cast<double>(batch.size()));
  last_batch_size_.store(batch.size(), std::memory_order_relaxed);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(std::move(outcomes[i]));
  }
}

Status DurableCounterStore::RotateJournal() {
  const std::string path =
      options_.data_dir + "/" + JournalFileName(last_seq_ + 1);
  if (path == journal_->path()) return Status::Ok();  // already fresh
  auto file = fs_.NewWritableFile(path);
  if (!file) return file.error();
  // Records in the new file are acknowledged only once its directory entry
  // is durable. A crash before this leaves an empty file or none: either
  // recovers, since the old journal holds everything so far.
  COUNTERD_RETURN_IF_ERROR(fs_.SyncDir(options_.data_dir));
  std::unique_ptr<JournalWriter> old = std::move(journal_);
  journal_ = std::make_unique<JournalWriter>(path, std::move(*file));
  journal_bytes_ = 0;
  // Every record in the old journal was synced before it was acknowledged.
  return old->Close();
}

Status DurableCounterStore::MaybeCompact(bool force, bool synchronous) {
  if (failed_.load()) return Refusal();
  if (!force && journal_->Size() < options_.compaction_threshold_bytes) {
    return Status::Ok();
  }
  if (compaction_running_.load()) return Status::Ok();  // next commit retries
  if (compactor_.joinable()) compactor_.join();
  if (Status s = RotateJournal(); !s.ok()) {
    Fail(s, /*answered=*/false);
    return s;
  }
  // The copy is the only part that holds up commits; serialising and
  // writing it happens while writers go on into the new journal.
  SnapshotData snapshot;
  {
    std::shared_lock lock(state_mu_);
    snapshot = state_.ToSnapshot(last_seq_, clock_.Now());
  }
  compaction_running_ = true;
  if (synchronous && options_.split_compaction_for_test) {
    deferred_snapshot_ = std::move(snapshot);
    return Status::Ok();
  }
  if (synchronous) {
    WriteSnapshot(snapshot);
    return Health();
  }
  compactor_ = std::jthread(
      [this, snapshot = std::move(snapshot)] { WriteSnapshot(snapshot); });
  return Status::Ok();
}

void DurableCounterStore::WriteSnapshot(const SnapshotData& snapshot) {
  const auto started = std::chrono::steady_clock::now();
  const std::string encoded = EncodeSnapshot(snapshot);
  Status s = ReplaceSnapshotAtomically(fs_, options_.data_dir, encoded);
  if (s.ok()) {
    // Invariant 5: the snapshot covering seq <= last_seq is durable, so the
    // journal files holding only such records may go. A crash part-way
    // leaves files whose records recovery skips by seq (Invariant 4).
    auto names = fs_.ListDir(options_.data_dir);
    s = names.status();
    bool removed = false;
    for (const std::string& name :
         names ? *names : std::vector<std::string>{}) {
      std::uint64_t first_seq = 0;
      if (!s.ok() || !ParseJournalFileName(name, first_seq) ||
          first_seq > snapshot.last_seq) {
        continue;
      }
      s = fs_.RemoveFile(options_.data_dir + "/" + name);
      removed = true;
    }
    if (s.ok() && removed) s = fs_.SyncDir(options_.data_dir);
  }
  if (s.ok()) {
    compactions_.fetch_add(1);
    snapshot_bytes_ = encoded.size();
    spdlog::info(
        "compaction: snapshot at seq {} with {} counters, {} bytes, "
        "took_ms={}",
        snapshot.last_seq, snapshot.counters.size(), encoded.size(),
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started)
            .count());
  } else {
    Fail(s.WithContext("compaction"), /*answered=*/false);
  }
  compaction_running_ = false;
}

Status DurableCounterStore::CompactNow() {
  if (deferred_snapshot_) {
    WriteSnapshot(*deferred_snapshot_);
    deferred_snapshot_.reset();
    return Health();
  }
  return MaybeCompact(true, true);
}

void DurableCounterStore::Fail(const Status& cause, bool answered) {
  std::lock_guard lock(fail_mu_);
  if (failed_.load()) return;
  failure_ = cause;
  failure_answered_ = answered;
  failed_ = true;
  spdlog::error(
      "store failed closed: {}; refusing writes until restart (reads go on)",
      cause.ToString());
}

Status DurableCounterStore::Refusal() const {
  std::lock_guard lock(fail_mu_);
  return Status::Unavailable(
      "store failed closed after: " + failure_.message() +
      "; writes are refused until restart");
}

Status DurableCounterStore::RefuseMutation() {
  Status refusal = Refusal();
  std::lock_guard lock(fail_mu_);
  if (failure_answered_) return refusal;
  // The first write to meet a failure that no request has been told about
  // (one in the background: journal rotation, snapshot) is answered with
  // its cause, as the write that meets it in the journal is: 507 for a
  // full disk. Later writes get 503: the store is closed until restart,
  // and freeing space alone would not reopen it.
  failure_answered_ = true;
  if (failure_.code() != StatusCode::kResourceExhausted) return refusal;
  return Status::ResourceExhausted(refusal.message());
}

Status DurableCounterStore::Health() const {
  if (failed_.load()) return Refusal();
  if (closing_flag_.load()) return Status::Unavailable("store is closing");
  return Status::Ok();
}

Status DurableCounterStore::Close() {
  {
    std::lock_guard lock(queue_mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
    closing_ = true;
    closing_flag_ = true;
    queue_cv_.notify_all();
  }
  if (committer_.joinable()) {
    committer_.request_stop();
    committer_.join();  // it commits everything queued before it returns
  } else {
    while (CommitPendingBatch() > 0) {
    }
  }
  if (compactor_.joinable()) compactor_.join();
  // Every acknowledged record was synced at its commit; close reports any
  // late error from the descriptor.
  Status s = journal_->Close();
  lock_.reset();
  if (failed_.load()) return Refusal();
  return s;
}

StoreStats DurableCounterStore::Stats() const {
  StoreStats s;
  s.counters = counters_.load();
  s.idempotency_keys = idempotency_keys_.load();
  s.mutations = mutations_.load();
  s.commits = commits_.load();
  s.fsyncs = fsyncs_.load();
  s.journal_bytes = journal_bytes_.load();
  s.last_seq = last_seq_stat_.load();
  s.compactions = compactions_.load();
  s.snapshot_bytes = snapshot_bytes_.load();
  s.failed = failed_.load();
  return s;
}

}  // namespace counterd::storage
