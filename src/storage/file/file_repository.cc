#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "counterd/core/log.h"
#include "counterd/service/mutation_rules.h"
#include "counterd/storage/snapshot_document.h"
#include "file_repository_impl.h"
#include "journal_format.h"
#include "recovery.h"

namespace counterd::storage {

namespace {

constexpr std::string_view kLockFileName = "LOCK";

using domain::TransactionOutcome;

// The effects of a batch's writes, in the order of |ws|, for its journal
// record; the same writes as |changes| for the watchers. |earliest_expiry|
// becomes the soonest expires_at_ms among the counters written (0: none
// expires).
std::vector<Effect> CollectEffects(service::WorkingSet& ws,
                                   ChangeBatch& changes,
                                   std::int64_t& earliest_expiry) {
  std::vector<Effect> effects;
  for (service::WorkingSet::CounterWrite& w : ws.CounterWrites()) {
    changes.changes.push_back(CounterChange{w.name, w.row});
    if (w.row) {
      if (w.row->expires_at_ms != 0 &&
          (earliest_expiry == 0 || w.row->expires_at_ms < earliest_expiry)) {
        earliest_expiry = w.row->expires_at_ms;
      }
      effects.emplace_back(PutCounter{std::move(*w.row)});
    } else {
      effects.emplace_back(DeleteCounter{std::move(w.name)});
    }
  }
  for (const domain::IdempotencyRecord& r : ws.IdempotencyWrites()) {
    effects.emplace_back(PutIdempotency{r});
  }
  return effects;
}

}  // namespace

Result<std::unique_ptr<FileRepository>> FileRepository::Open(
    platform::FileSystem& fs, const Clock& clock,
    FileRepositoryOptions options) {
  const auto started = std::chrono::steady_clock::now();
  const std::string& dir = options.data_dir;
  COUNTERD_RETURN_IF_ERROR(fs.CreateDir(dir));
  // One owner per data dir: two writers would interleave journal records.
  auto lock = fs.LockFile(dir + "/" + std::string(kLockFileName));
  if (!lock) return lock.error().WithContext("data dir " + dir);

  auto recovered = Recover(fs, dir, options.idempotency_retention, clock.Now());
  if (!recovered) return recovered.error();
  if (!recovered->torn_file.empty()) {
    log::Warn(
        "recovery: cut an unacknowledged tail from the journal (a record "
        "a crash interrupted, or zeros written ahead of the records)",
        {{"file", recovered->torn_file},
         {"bytes", recovered->info.torn_bytes_truncated}});
  }
  if (recovered->info.snapshot_format == 1 ||
      recovered->info.journal_format == 1) {
    log::Info(
        "recovery: data dir in storage format 1; new records go to a "
        "format-2 journal and the next compaction rewrites the snapshot",
        {{"data_dir", dir}});
  }

  // Invariant 8: a new journal's header and directory entry are durable
  // before anything is appended to it.
  Result<std::unique_ptr<Journal>> journal =
      recovered->journal_exists
          ? Journal::OpenForAppend(fs, recovered->journal_path,
                                   options.slow_fsync_warning)
          : Journal::Create(fs, dir, recovered->last_seq + 1,
                            options.slow_fsync_warning);
  if (!journal) return journal.error();
  recovered->info.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
  return std::unique_ptr<FileRepository>(std::make_unique<FileRepositoryImpl>(
      fs, clock, std::move(options), std::move(*lock),
      std::move(recovered->state), recovered->last_seq, std::move(*journal),
      recovered->info, recovered->snapshot_bytes));
}

Result<RecoveryInfo> FileRepository::Verify(platform::FileSystem& fs,
                                            const std::string& data_dir) {
  return VerifyDataDir(fs, data_dir);
}

FileRepositoryImpl::FileRepositoryImpl(
    platform::FileSystem& fs, const Clock& clock, FileRepositoryOptions options,
    std::unique_ptr<platform::FileLock> lock, StoreState state,
    std::uint64_t last_seq, std::unique_ptr<Journal> journal,
    RecoveryInfo recovery, std::uint64_t snapshot_bytes)
    : fs_(fs),
      clock_(clock),
      options_(std::move(options)),
      lock_(std::move(lock)),
      recovery_(recovery),
      state_(std::move(state)),
      applied_seq_(last_seq),
      journal_(std::move(journal)),
      last_seq_(last_seq),
      compactor_(fs, options_.data_dir, latch_, snapshot_bytes),
      disk_(fs, options_.data_dir, options_.min_free_bytes,
            options_.disk_check_interval),
      queue_(*this,
             CommitQueue::Options{options_.max_batch, options_.start_committer,
                                  options_.inline_commit_max_fsync}) {
  journal_bytes_ = journal_->Size();
  last_seq_stat_ = last_seq_;
  ReaderLock lock_state(state_mu_);
  counters_ = state_.counter_count();
  idempotency_keys_ = state_.idempotency_count();
  // Counters that expired while the process was down, or soon will.
  if (const auto next = state_.NextExpiry()) {
    queue_.ScheduleDuties(SteadyAt(*next));
  }
}

FileRepositoryImpl::~FileRepositoryImpl() { (void)Close(); }

std::int64_t FileRepositoryImpl::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock_.Now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::time_point FileRepositoryImpl::SteadyAt(
    std::int64_t wall_ms) const {
  // At most a day ahead: an expiry further away is simply looked at again
  // then. This also keeps the arithmetic in range for any stored
  // expires_at_ms (a ttl is at most a year, but a file may hold anything
  // from INT64_MIN to INT64_MAX; found by tests/fuzz/recovery_fuzz).
  constexpr std::int64_t kMaxWaitMs = std::int64_t{24} * 3600 * 1000;
  const std::int64_t now_ms = NowMs();
  std::int64_t wait_ms = 0;
  if (wall_ms > now_ms) {
    wait_ms = now_ms < 0 || wall_ms - now_ms > kMaxWaitMs ? kMaxWaitMs
                                                          : wall_ms - now_ms;
  }
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
}

// -- reads
// ----------------------------------------------------------------------

void FileRepositoryImpl::Get(
    const domain::CounterName& name,
    Completion<Result<std::optional<domain::Counter>>>& done) {
  std::optional<domain::Counter> counter;
  {
    ReaderLock lock(state_mu_);
    counter = state_.FindCounter(name.str());
  }
  if (counter && counter->ExpiredAt(NowMs())) counter.reset();
  done.Complete(std::move(counter));
}

void FileRepositoryImpl::List(const ListRequest& request,
                              Completion<Result<CounterList>>& done) {
  CounterList list;
  {
    ReaderLock lock(state_mu_);
    list.counters =
        state_.List(request.prefix, request.after, request.limit, NowMs());
    list.seq = applied_seq_;
  }
  done.Complete(std::move(list));
}

// A snapshot document's pages, read from a cursor of state_ (see
// store_state.h): each page under the exclusive lock — the cursor is
// changed by the reads and by the commits alike — for as long as it takes
// to copy one page, never while its bytes are encoded or sent. REQUIRES:
// destroyed before the repository (the server's connections are gone
// before main destroys the store).
class FileRepositoryImpl::CursorPages final : public SnapshotPages {
 public:
  CursorPages(FileRepositoryImpl& repo, StoreState::CursorId id)
      : repo_(repo), id_(id) {}
  ~CursorPages() override {
    WriterLock lock(repo_.state_mu_);
    repo_.state_.CloseCursor(id_);
  }
  CursorPages(const CursorPages&) = delete;
  CursorPages& operator=(const CursorPages&) = delete;

  // Each answers before it returns, outside the lock. |done| may destroy
  // this object (a reader closes its source at the end): nothing follows
  // it.
  void NextCounters(std::size_t max,
                    PageHandler<domain::Counter> done) override {
    SnapshotPage<domain::Counter> page;
    {
      WriterLock lock(repo_.state_mu_);
      page = repo_.state_.NextCounters(id_, max);
    }
    done(std::move(page));
  }
  void NextRecords(std::size_t max,
                   PageHandler<domain::IdempotencyRecord> done) override {
    SnapshotPage<domain::IdempotencyRecord> page;
    {
      WriterLock lock(repo_.state_mu_);
      page = repo_.state_.NextRecords(id_, max);
    }
    done(std::move(page));
  }

 private:
  FileRepositoryImpl& repo_;
  const StoreState::CursorId id_;
};

SnapshotImage FileRepositoryImpl::OpenSnapshot() {
  // No copy: a cursor of the state as of applied_seq_ (the two change
  // together under the exclusive lock), read a page at a time as the
  // document is read.
  SnapshotImage image;
  StoreState::CursorId cursor = 0;
  {
    WriterLock lock(state_mu_);
    cursor = state_.OpenCursor(NowMs());
    image.seq = applied_seq_;
  }
  image.document = NewSnapshotReader(
      image.seq, std::make_unique<CursorPages>(*this, cursor));
  return image;
}

void FileRepositoryImpl::TakeSnapshot(Completion<Result<SnapshotImage>>& done) {
  done.Complete(OpenSnapshot());
}

// -- commits
// --------------------------------------------------------------------

void FileRepositoryImpl::Commit(domain::Transaction tx,
                                Completion<TransactionOutcome>& done) {
  if (tx.ReadOnly() && !tx.idempotency) {
    // Reads in a batch need no commit: decided against committed state,
    // which includes every acknowledged write.
    service::WorkingSet ws;
    const std::int64_t now_ms = NowMs();
    TransactionOutcome outcome;
    {
      ReaderLock lock(state_mu_);
      for (const std::string& name : ws.MissingCounters(tx)) {
        ws.SeedCounter(name, state_.FindCounter(name));
      }
    }
    outcome = service::MutationRules::Apply(tx, ws, now_ms);
    done.Complete(std::move(outcome));
    return;
  }
  if (latch_.failed()) {
    done.Complete(domain::Refusal(latch_.RefuseWrite()));
    return;
  }
  // Low on disk: refused here, before the queue, so the journal never sees
  // it; the store stays open and the next look after space is freed lets
  // writes through again. (Between two looks a write may still meet ENOSPC:
  // then WriteRecord fails the store closed, Invariant 7.)
  if (Status low = CheckDiskSpace(); !low.ok()) {
    disk_.CountRefusal();
    done.Complete(domain::Refusal(std::move(low)));
    return;
  }
  if (!queue_.Submit(PendingCommit{std::move(tx), &done})) {
    done.Complete(domain::Refusal(Status::Unavailable("store is closing")));
  }
}

std::vector<TransactionOutcome> FileRepositoryImpl::Decide(
    const std::vector<PendingCommit>& batch, service::WorkingSet& ws,
    std::int64_t now_ms) {
  std::vector<TransactionOutcome> outcomes;
  outcomes.reserve(batch.size());
  // Committed state == durable state here: only the holder of the
  // committer's role writes it, and every earlier batch is synced. Each
  // transaction sees the effects of the earlier ones through |ws|.
  ReaderLock lock(state_mu_);
  for (const PendingCommit& p : batch) {
    for (const std::string& name : ws.MissingCounters(p.tx)) {
      ws.SeedCounter(name, state_.FindCounter(name));
    }
    if (ws.NeedsIdempotency(p.tx)) {
      const domain::IdempotencyIntent& intent = *p.tx.idempotency;
      const domain::IdempotencyRecord* record =
          state_.FindIdempotency(intent.scope, intent.key.str(), now_ms);
      ws.SeedIdempotency(intent,
                         record ? std::optional(*record) : std::nullopt);
    }
    TransactionOutcome outcome =
        service::MutationRules::Apply(p.tx, ws, now_ms);
    if (outcome.status.ok() && !outcome.replayed && !p.tx.ReadOnly()) {
      mutations_.fetch_add(1, std::memory_order_relaxed);
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

Status FileRepositoryImpl::WriteRecord(const std::vector<Effect>& effects,
                                       std::chrono::nanoseconds& took) {
  std::string record;
  EncodeRecord(last_seq_ + 1, effects, record);
  const std::uint64_t size_before = journal_->Size();
  Status s = journal_->Append(record);
  if (s.ok()) {
    s = journal_->Sync(took);  // Invariant 1: the acknowledgement point.
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    fsync_seconds_.Observe(std::chrono::duration<double>(took).count());
  }
  if (!s.ok()) {
    // Invariant 7. Take back the unacknowledged bytes so that a restart
    // without power loss recovers exactly the acknowledged state; the
    // failed fsync itself is never retried.
    latch_.Fail(s, /*answered=*/true);  // the batch gets |s| itself
    if (Status t = fs_.TruncateFile(journal_->path(), size_before); !t.ok()) {
      log::Error("could not cut the failed record from the journal",
                 {{"file", journal_->path()}, {"error", t.ToString()}});
    }
    return s;
  }
  return Status::Ok();
}

Status FileRepositoryImpl::WriteAndApply(service::WorkingSet& ws,
                                         std::int64_t now_ms,
                                         std::size_t batch_size,
                                         ChangeBatch& changes,
                                         std::chrono::nanoseconds& took) {
  std::int64_t earliest_expiry = 0;
  const std::vector<Effect> effects =
      CollectEffects(ws, changes, earliest_expiry);
  COUNTERD_RETURN_IF_ERROR(WriteRecord(effects, took));
  ++last_seq_;
  {
    // Invariant 2: readers see the batch only now that it is durable.
    WriterLock lock(state_mu_);
    for (const Effect& e : effects) state_.Apply(e);
    applied_seq_ = last_seq_;
    state_.PruneIdempotency(now_ms);
    counters_ = state_.counter_count();
    idempotency_keys_ = state_.idempotency_count();
  }
  last_seq_stat_ = last_seq_;
  journal_bytes_ = journal_->Size();
  commits_.fetch_add(1, std::memory_order_relaxed);
  // One journal record, one fdatasync: only batches that wrote count.
  batch_sizes_.Observe(static_cast<double>(batch_size));
  if (earliest_expiry != 0) queue_.ScheduleDuties(SteadyAt(earliest_expiry));
  // Compaction copies the whole state: left to the committer thread, so
  // an inline committer is never held up by it.
  if (journal_->Size() >= options_.compaction_threshold_bytes) {
    queue_.WakeForDuties();
  }
  return Status::Ok();
}

void FileRepositoryImpl::CommitBatch(std::vector<PendingCommit>& batch) {
  if (latch_.failed()) {
    const Status refusal = latch_.RefuseWrite();
    for (PendingCommit& p : batch) p.done->Complete(domain::Refusal(refusal));
    return;
  }
  const std::int64_t now_ms = NowMs();
  service::WorkingSet ws;
  std::vector<TransactionOutcome> outcomes = Decide(batch, ws, now_ms);

  ChangeBatch changes;
  std::chrono::nanoseconds took{0};
  if (!ws.empty()) {
    Status s = WriteAndApply(ws, now_ms, batch.size(), changes, took);
    if (!s.ok()) {
      for (PendingCommit& p : batch) p.done->Complete(domain::Refusal(s));
      return;
    }
  }
  queue_.Observe(batch.size(), took);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].done->Complete(std::move(outcomes[i]));
  }
  if (!changes.changes.empty()) {
    changes.seq = last_seq_;
    Publish(changes);
  }
}

void FileRepositoryImpl::Publish(const ChangeBatch& batch) {
  if (ChangeSink* sink = sink_.load()) sink->OnCommitted(batch);
}

// -- background duties
// ------------------------------------------------------------

std::chrono::steady_clock::time_point FileRepositoryImpl::RunDuties() {
  const std::chrono::steady_clock::time_point next = SweepExpired();
  (void)MaybeCompact(/*force=*/false, /*synchronous=*/false);
  return next;
}

std::chrono::steady_clock::time_point FileRepositoryImpl::SweepExpired() {
  const std::int64_t now_ms = NowMs();
  std::vector<std::string> removed;
  std::optional<std::int64_t> next;
  {
    // Bounded: at most expiry_sweep_batch counters per pass, so a burst of
    // expiries never holds readers up for long.
    WriterLock lock(state_mu_);
    removed = state_.SweepExpired(now_ms, options_.expiry_sweep_batch);
    next = state_.NextExpiry();
    counters_ = state_.counter_count();
  }
  if (!removed.empty()) {
    expired_.fetch_add(removed.size(), std::memory_order_relaxed);
    // No record: an expiry is a fact of the stored expires_at_ms, and
    // recovery treats a counter past it as absent.
    ChangeBatch changes;
    changes.seq = last_seq_;
    for (std::string& name : removed) {
      changes.changes.push_back(CounterChange{std::move(name), std::nullopt});
    }
    Publish(changes);
  }
  if (removed.size() == options_.expiry_sweep_batch) {
    return std::chrono::steady_clock::now();  // more are due: go on soon
  }
  if (!next) return std::chrono::steady_clock::time_point::max();
  return SteadyAt(*next);
}

Status FileRepositoryImpl::RotateJournal() {
  const std::string path =
      options_.data_dir + "/" + JournalFileName(last_seq_ + 1);
  if (path == journal_->path()) return Status::Ok();  // already fresh
  // The old journal stops being the newest: cut the zeros written ahead
  // of its end first (recovery reads only the newest file's zeros as an
  // unused tail). A crash before the cut is durable leaves the old journal
  // the newest, zeros and all.
  if (Status s = journal_->Finish(fs_); !s.ok()) return s;
  // Invariant 8. A crash before Create returns leaves an empty, zero-filled
  // or header-only file: recovery takes it for a creation cut short, and
  // the old journal holds every record so far.
  auto journal = Journal::Create(fs_, options_.data_dir, last_seq_ + 1,
                                 options_.slow_fsync_warning);
  if (!journal) return journal.error();
  std::unique_ptr<Journal> old = std::move(journal_);
  journal_ = std::move(*journal);
  journal_bytes_ = journal_->Size();
  // Every record in the old journal was synced before it was acknowledged.
  return old->Close();
}

Status FileRepositoryImpl::MaybeCompact(bool force, bool synchronous) {
  if (latch_.failed()) return latch_.Refusal();
  if (!force && journal_->Size() < options_.compaction_threshold_bytes) {
    return Status::Ok();
  }
  // While low on disk no snapshot is started: it might not fit, and an
  // ENOSPC halfway would fail the store closed. The journal holds every
  // record meanwhile; the first duties after space is back compact.
  if (!force && disk_.low()) return Status::Ok();
  if (compactor_.running()) return Status::Ok();  // the next duties retry
  if (Status s = RotateJournal(); !s.ok()) {
    latch_.Fail(s, /*answered=*/false);
    return latch_.Refusal();  // as Compactor::WriteNow answers
  }
  // No copy: a cursor of the state at last_seq_ (the committer's role is
  // held, so applied_seq_ is last_seq_), read a page at a time by the
  // compactor while writers go on into the new journal. Commits wait only
  // while a page is copied (see CursorPages).
  SnapshotImage snapshot = OpenSnapshot();
  if (synchronous && options_.split_compaction_for_test) {
    deferred_snapshot_ = std::move(snapshot);
    return Status::Ok();
  }
  if (synchronous) return compactor_.WriteNow(std::move(snapshot));
  compactor_.Start(std::move(snapshot));
  return Status::Ok();
}

Status FileRepositoryImpl::CompactNow() {
  if (deferred_snapshot_) {
    SnapshotImage snapshot = std::move(*deferred_snapshot_);
    deferred_snapshot_.reset();
    return compactor_.WriteNow(std::move(snapshot));
  }
  return MaybeCompact(/*force=*/true, /*synchronous=*/true);
}

// -- health, stats, close
// -------------------------------------------------------

Status FileRepositoryImpl::Health() const {
  if (latch_.failed()) return latch_.Refusal();
  if (closing_.load()) return Status::Unavailable("store is closing");
  // Low on disk: not ready (writes would be refused), until space is back.
  return CheckDiskSpace();
}

RepositoryStats FileRepositoryImpl::Stats() const {
  RepositoryStats s;
  s.backend = "file";
  s.counters = counters_.load();
  s.idempotency_keys = idempotency_keys_.load();
  s.mutations = mutations_.load();
  s.commits = commits_.load();
  s.fsyncs = fsyncs_.load();
  s.expired = expired_.load();
  s.last_seq = last_seq_stat_.load();
  s.failed = latch_.failed();
  s.up = !s.failed;
  s.journal_bytes = journal_bytes_.load();
  s.compactions = compactor_.compactions();
  s.snapshot_bytes = compactor_.snapshot_bytes();
  (void)CheckDiskSpace();  // a fresh look for /metrics, rate-limited
  s.data_dir_free_bytes = disk_.free_bytes();
  s.data_dir_size_bytes = s.journal_bytes + s.snapshot_bytes;
  s.min_free_bytes = disk_.threshold();
  s.low_disk = disk_.low();
  s.writes_refused_low_disk = disk_.refused();
  s.recovery_seconds =
      std::chrono::duration<double>(recovery_.duration).count();
  s.batch_sizes = batch_sizes_.Read();
  s.commit_seconds = fsync_seconds_.Read();
  return s;
}

Status FileRepositoryImpl::Close() {
  if (closing_.exchange(true)) return close_status_;
  // Commits what is queued and stops the committer thread.
  queue_.Close();
  compactor_.Wait();
  // Every acknowledged record was synced at its commit. A clean close
  // also cuts the zeros written ahead, so that the next start finds the
  // journal ending at its last record; close reports any late error from
  // the descriptor.
  Status s = latch_.failed() ? Status::Ok() : journal_->Finish(fs_);
  if (Status c = journal_->Close(); s.ok()) s = c;
  lock_.reset();
  close_status_ = latch_.failed() ? latch_.Refusal() : s;
  return close_status_;
}

}  // namespace counterd::storage
