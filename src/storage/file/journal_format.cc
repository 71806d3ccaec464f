#include "journal_format.h"

#include <cstring>
#include <utility>

#include "binary_io.h"
#include "counterd/core/crc32c.h"
#include "status_table.h"

namespace counterd::storage {
namespace {

using domain::Counter;
using domain::Fingerprint;
using domain::Operation;
using domain::TransactionOutcome;

enum EffectTag : std::uint8_t {
  // 1 and 3 are version 1's put counter and put idempotency.
  kDeleteCounterTag = 2,
  kPutCounterTag = 4,
  kPutIdempotencyTag = 5,
};
enum OpFlags : std::uint8_t {
  kMustExist = 1,
  kMustBeAbsent = 2,
  kHasMin = 4,
  kHasMax = 8,
  kHasTtl = 16,
};
enum OutcomeFlags : std::uint8_t { kHasFailedOp = 1, kHasCurrent = 2 };
enum ResultFlags : std::uint8_t { kHasCounter = 1, kCreated = 2 };
enum FingerprintFlags : std::uint8_t { kBatch = 1 };

// -- encoding -----------------------------------------------------------------

void PutCounterFields(std::string& out, const Counter& c) {
  PutString(out, c.name);
  PutFixed<std::int64_t>(out, c.value);
  PutFixed<std::uint64_t>(out, c.version);
  PutFixed<std::int64_t>(out, c.expires_at_ms);
}

void PutOperation(std::string& out, const Operation& op) {
  PutFixed<std::uint8_t>(out, PersistedOpKind(op.kind));
  PutString(out, op.name.str());
  PutFixed<std::int64_t>(out, op.operand);
  std::uint8_t flags = 0;
  if (op.precondition.must_exist) flags |= kMustExist;
  if (op.precondition.must_be_absent) flags |= kMustBeAbsent;
  if (op.min) flags |= kHasMin;
  if (op.max) flags |= kHasMax;
  if (op.ttl_seconds) flags |= kHasTtl;
  PutFixed<std::uint8_t>(out, flags);
  PutFixed<std::uint16_t>(
      out, static_cast<std::uint16_t>(op.precondition.version_in.size()));
  for (const std::uint64_t v : op.precondition.version_in) {
    PutFixed<std::uint64_t>(out, v);
  }
  if (op.min) PutFixed<std::int64_t>(out, *op.min);
  if (op.max) PutFixed<std::int64_t>(out, *op.max);
  if (op.ttl_seconds) PutFixed<std::uint32_t>(out, *op.ttl_seconds);
}

void PutFingerprint(std::string& out, const Fingerprint& f) {
  PutFixed<std::uint8_t>(out, f.batch ? kBatch : 0);
  PutFixed<std::uint16_t>(out, static_cast<std::uint16_t>(f.ops.size()));
  for (const Operation& op : f.ops) PutOperation(out, op);
}

void PutOutcome(std::string& out, const TransactionOutcome& o) {
  PutFixed<std::uint8_t>(out, PersistedStatus(o.status.code()));
  PutString(out, o.status.message());
  std::uint8_t flags = 0;
  if (o.failed_op) flags |= kHasFailedOp;
  if (o.current) flags |= kHasCurrent;
  PutFixed<std::uint8_t>(out, flags);
  if (o.failed_op) PutFixed<std::uint32_t>(out, *o.failed_op);
  PutFixed<std::uint16_t>(out, static_cast<std::uint16_t>(o.results.size()));
  for (const domain::OpResult& r : o.results) {
    std::uint8_t rf = 0;
    if (r.counter) rf |= kHasCounter;
    if (r.created) rf |= kCreated;
    PutFixed<std::uint8_t>(out, rf);
    if (r.counter) PutCounterFields(out, *r.counter);
  }
  if (o.current) PutCounterFields(out, *o.current);
}

void EncodeEffect(const Effect& effect, std::string& out) {
  if (const auto* put = std::get_if<PutCounter>(&effect)) {
    out.push_back(static_cast<char>(kPutCounterTag));
    PutCounterFields(out, put->counter);
  } else if (const auto* del = std::get_if<DeleteCounter>(&effect)) {
    out.push_back(static_cast<char>(kDeleteCounterTag));
    PutString(out, del->name);
  } else {
    const domain::IdempotencyRecord& r =
        std::get<PutIdempotency>(effect).record;
    out.push_back(static_cast<char>(kPutIdempotencyTag));
    PutString(out, r.scope);
    PutString(out, r.key);
    PutFixed<std::int64_t>(out, r.created_at_ms);
    PutFingerprint(out, r.request);
    PutOutcome(out, r.outcome);
  }
}

// -- decoding -----------------------------------------------------------------

// Names and keys are checked as the API checks them, strings the snapshot
// keeps as JSON must be UTF-8, and flag bytes may only hold the bits the
// format defines: a payload that decodes re-encodes to the same bytes and
// survives a compaction (tests/fuzz/journal_fuzz and recovery_fuzz check
// this).
std::string GetName(Cursor& in) {
  std::string name = in.String();
  if (in.ok() && !domain::CounterName::Parse(name)) in.Fail();
  return name;
}

std::uint8_t GetFlags(Cursor& in, std::uint8_t defined) {
  const auto flags = in.Fixed<std::uint8_t>();
  if ((flags & ~defined) != 0) in.Fail();
  return flags;
}

Counter GetCounter(Cursor& in) {
  Counter c;
  c.name = GetName(in);
  c.value = in.Fixed<std::int64_t>();
  c.version = in.Fixed<std::uint64_t>();
  c.expires_at_ms = in.Fixed<std::int64_t>();
  return c;
}

Operation GetOperation(Cursor& in) {
  Operation op;
  const std::optional<domain::OpKind> kind =
      OpKindFromPersisted(in.Fixed<std::uint8_t>());
  Result<domain::CounterName> name = domain::CounterName::Parse(in.String());
  if (!kind || !name) {
    in.Fail();
    return op;
  }
  op.kind = *kind;
  op.name = std::move(*name);
  op.operand = in.Fixed<std::int64_t>();
  // Only set, increment and decrement have an operand (the snapshot has
  // no field for one on get or delete).
  if (op.operand != 0 &&
      (op.kind == domain::OpKind::kGet || op.kind == domain::OpKind::kDelete)) {
    in.Fail();
  }
  const auto flags =
      GetFlags(in, kMustExist | kMustBeAbsent | kHasMin | kHasMax | kHasTtl);
  op.precondition.must_exist = (flags & kMustExist) != 0;
  op.precondition.must_be_absent = (flags & kMustBeAbsent) != 0;
  const auto versions = in.Fixed<std::uint16_t>();
  for (std::uint16_t i = 0; i < versions && in.ok(); ++i) {
    op.precondition.version_in.push_back(in.Fixed<std::uint64_t>());
  }
  if ((flags & kHasMin) != 0) op.min = in.Fixed<std::int64_t>();
  if ((flags & kHasMax) != 0) op.max = in.Fixed<std::int64_t>();
  if ((flags & kHasTtl) != 0) op.ttl_seconds = in.Fixed<std::uint32_t>();
  return op;
}

Fingerprint GetFingerprint(Cursor& in) {
  Fingerprint f;
  f.batch = (GetFlags(in, kBatch) & kBatch) != 0;
  const auto n = in.Fixed<std::uint16_t>();
  for (std::uint16_t i = 0; i < n && in.ok(); ++i) {
    f.ops.push_back(GetOperation(in));
  }
  return f;
}

TransactionOutcome GetOutcome(Cursor& in) {
  TransactionOutcome o;
  const std::optional<StatusCode> code =
      StatusFromPersisted(in.Fixed<std::uint8_t>());
  std::string message = in.String();
  if (!code || (*code == StatusCode::kOk && !message.empty()) ||
      !IsUtf8(message)) {
    in.Fail();
    return o;
  }
  o.status = *code == StatusCode::kOk ? Status::Ok()
                                      : Status(*code, std::move(message));
  const auto flags = GetFlags(in, kHasFailedOp | kHasCurrent);
  if ((flags & kHasFailedOp) != 0) o.failed_op = in.Fixed<std::uint32_t>();
  const auto n = in.Fixed<std::uint16_t>();
  for (std::uint16_t i = 0; i < n && in.ok(); ++i) {
    domain::OpResult r;
    const auto rf = GetFlags(in, kHasCounter | kCreated);
    if ((rf & kHasCounter) != 0) r.counter = GetCounter(in);
    r.created = (rf & kCreated) != 0;
    o.results.push_back(std::move(r));
  }
  if ((flags & kHasCurrent) != 0) o.current = GetCounter(in);
  return o;
}

}  // namespace

std::string EncodeJournalHeader(std::uint64_t first_seq) {
  std::string out(kJournalMagic);
  PutFixed<std::uint32_t>(out, kJournalFormat);
  PutFixed<std::uint64_t>(out, first_seq);
  PutFixed<std::uint32_t>(out, crc32c::Value(out));
  return out;
}

Result<JournalHeader> DecodeJournalHeader(std::string_view bytes) {
  const std::string_view covered = bytes.substr(0, kJournalHeaderSize - 4);
  if (crc32c::Value(covered) !=
      LoadFixed<std::uint32_t>(bytes.data() + kJournalHeaderSize - 4)) {
    return Status::DataLoss("journal file header checksum mismatch");
  }
  JournalHeader h;
  h.version = LoadFixed<std::uint32_t>(bytes.data() + kJournalMagic.size());
  h.first_seq =
      LoadFixed<std::uint64_t>(bytes.data() + kJournalMagic.size() + 4);
  return h;
}

void EncodeRecord(std::uint64_t seq, const std::vector<Effect>& effects,
                  std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + kRecordHeaderSize);  // filled in below
  PutFixed<std::uint32_t>(out, static_cast<std::uint32_t>(effects.size()));
  for (const Effect& effect : effects) EncodeEffect(effect, out);

  std::string header;
  PutFixed<std::uint32_t>(header, 0);  // crc placeholder
  PutFixed<std::uint32_t>(header, static_cast<std::uint32_t>(
                                      out.size() - start - kRecordHeaderSize));
  PutFixed<std::uint64_t>(header, seq);
  std::memcpy(out.data() + start, header.data(), kRecordHeaderSize);
  const std::uint32_t crc = RecordChecksum(std::string_view(out).substr(start));
  std::string crc_bytes;
  PutFixed<std::uint32_t>(crc_bytes, crc);
  std::memcpy(out.data() + start, crc_bytes.data(), 4);
}

RecordHeader DecodeHeader(std::string_view bytes) {
  RecordHeader h;
  h.crc = LoadFixed<std::uint32_t>(bytes.data());
  h.length = LoadFixed<std::uint32_t>(bytes.data() + 4);
  h.seq = LoadFixed<std::uint64_t>(bytes.data() + 8);
  return h;
}

std::uint32_t RecordChecksum(std::string_view header_and_payload) {
  return crc32c::Value(header_and_payload.substr(4));
}

Result<std::vector<Effect>> DecodePayload(std::string_view payload) {
  Cursor in(payload);
  const auto count = in.Fixed<std::uint32_t>();
  std::vector<Effect> effects;
  effects.reserve(std::min<std::size_t>(count, payload.size()));
  for (std::uint32_t i = 0; i < count && in.ok(); ++i) {
    switch (in.Fixed<std::uint8_t>()) {
      case kPutCounterTag:
        effects.emplace_back(PutCounter{GetCounter(in)});
        break;
      case kDeleteCounterTag:
        effects.emplace_back(DeleteCounter{GetName(in)});
        break;
      case kPutIdempotencyTag: {
        domain::IdempotencyRecord r;
        r.scope = in.String();
        if (in.ok() && !IsUtf8(r.scope)) in.Fail();
        r.key = in.String();
        if (in.ok() && !domain::IdempotencyKey::Parse(r.key)) in.Fail();
        r.created_at_ms = in.Fixed<std::int64_t>();
        r.request = GetFingerprint(in);
        r.outcome = GetOutcome(in);
        effects.emplace_back(PutIdempotency{std::move(r)});
        break;
      }
      default:
        in.Fail();
    }
  }
  if (!in.ok() || !in.done()) {
    return Status::DataLoss("undecodable record payload near payload byte " +
                            std::to_string(in.pos()));
  }
  return effects;
}

}  // namespace counterd::storage
