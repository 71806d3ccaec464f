#include "record_codec.h"

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

namespace counterd::storage::postgres {
namespace {

constexpr std::uint8_t kFormatVersion = 1;

// Stored codes: append only, never renumber.
constexpr std::array<std::pair<StatusCode, std::uint8_t>, 12> kCodes{{
    {StatusCode::kOk, 0},
    {StatusCode::kInvalidArgument, 1},
    {StatusCode::kNotFound, 2},
    {StatusCode::kFailedPrecondition, 3},
    {StatusCode::kOutOfRange, 4},
    {StatusCode::kAborted, 5},
    {StatusCode::kAlreadyExists, 6},
    {StatusCode::kResourceExhausted, 7},
    {StatusCode::kUnavailable, 8},
    {StatusCode::kDataLoss, 9},
    {StatusCode::kInternal, 10},
    {StatusCode::kLimitExceeded, 11},
}};
constexpr std::array<std::pair<domain::OpKind, std::uint8_t>, 5> kKinds{{
    {domain::OpKind::kGet, 0},
    {domain::OpKind::kSet, 1},
    {domain::OpKind::kAdd, 2},
    {domain::OpKind::kSubtract, 3},
    {domain::OpKind::kDelete, 4},
}};

template <typename Enum, std::size_t N>
std::uint8_t ToWire(const std::array<std::pair<Enum, std::uint8_t>, N>& table,
                    Enum e) {
  for (const auto& [value, wire] : table) {
    if (value == e) return wire;
  }
  return 0xff;  // unreachable for a complete table
}
template <typename Enum, std::size_t N>
std::optional<Enum> FromWire(
    const std::array<std::pair<Enum, std::uint8_t>, N>& table,
    std::uint8_t wire) {
  for (const auto& [value, w] : table) {
    if (w == wire) return value;
  }
  return std::nullopt;
}

class Writer {
 public:
  void U8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(std::uint32_t v) { Fixed(v, 4); }
  void U64(std::uint64_t v) { Fixed(v, 8); }
  void I64(std::int64_t v) { U64(static_cast<std::uint64_t>(v)); }
  void Str(std::string_view s) {
    U32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void Bool(bool b) { U8(b ? 1 : 0); }
  void Counter(const domain::Counter& c) {
    Str(c.name);
    I64(c.value);
    U64(c.version);
    I64(c.expires_at_ms);
  }
  std::string Take() { return std::move(out_); }

 private:
  void Fixed(std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
  }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == in_.size(); }

  std::uint8_t U8() { return static_cast<std::uint8_t>(Fixed(1)); }
  std::uint32_t U32() { return static_cast<std::uint32_t>(Fixed(4)); }
  std::uint64_t U64() { return Fixed(8); }
  std::int64_t I64() { return static_cast<std::int64_t>(U64()); }
  bool Bool() {
    const std::uint8_t b = U8();
    if (b > 1) ok_ = false;
    return b == 1;
  }
  std::string Str() {
    const std::uint32_t n = U32();
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  domain::Counter Counter() {
    domain::Counter c;
    c.name = Str();
    c.value = I64();
    c.version = U64();
    c.expires_at_ms = I64();
    return c;
  }
  // A count of items each at least |min_item_bytes| long: bounded by what
  // is left, so corrupt input cannot make us reserve gigabytes.
  std::uint32_t Count(std::size_t min_item_bytes) {
    const std::uint32_t n = U32();
    if (!ok_ ||
        static_cast<std::size_t>(n) * min_item_bytes > in_.size() - pos_) {
      ok_ = false;
      return 0;
    }
    return n;
  }
  void Fail() { ok_ = false; }

 private:
  std::uint64_t Fixed(int bytes) {
    if (!ok_ || in_.size() - pos_ < static_cast<std::size_t>(bytes)) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_++]))
           << (8 * i);
    }
    return v;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void WriteOptionalI64(Writer& w, const std::optional<std::int64_t>& v) {
  w.Bool(v.has_value());
  if (v) w.I64(*v);
}
std::optional<std::int64_t> ReadOptionalI64(Reader& r) {
  if (!r.Bool()) return std::nullopt;
  return r.I64();
}

Status Corrupt(std::string_view what) {
  return Status::DataLoss("idempotency record: malformed " + std::string(what));
}

}  // namespace

std::string EncodeFingerprint(const domain::Fingerprint& fingerprint) {
  Writer w;
  w.U8(kFormatVersion);
  w.Bool(fingerprint.batch);
  w.U32(static_cast<std::uint32_t>(fingerprint.ops.size()));
  for (const domain::Operation& op : fingerprint.ops) {
    w.U8(ToWire(kKinds, op.kind));
    w.Str(op.name.str());
    w.I64(op.operand);
    w.U32(static_cast<std::uint32_t>(op.precondition.version_in.size()));
    for (std::uint64_t v : op.precondition.version_in) w.U64(v);
    w.Bool(op.precondition.must_exist);
    w.Bool(op.precondition.must_be_absent);
    WriteOptionalI64(w, op.min);
    WriteOptionalI64(w, op.max);
    w.Bool(op.ttl_seconds.has_value());
    if (op.ttl_seconds) w.U32(*op.ttl_seconds);
  }
  return w.Take();
}

Result<domain::Fingerprint> DecodeFingerprint(std::string_view bytes) {
  Reader r(bytes);
  if (r.U8() != kFormatVersion) return Corrupt("request (format version)");
  domain::Fingerprint f;
  f.batch = r.Bool();
  const std::uint32_t n = r.Count(1);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    domain::Operation op;
    const std::optional<domain::OpKind> kind = FromWire(kKinds, r.U8());
    if (!kind) return Corrupt("request (operation kind)");
    op.kind = *kind;
    auto name = domain::CounterName::Parse(r.Str());
    if (!r.ok() || !name) return Corrupt("request (counter name)");
    op.name = std::move(*name);
    op.operand = r.I64();
    const std::uint32_t versions = r.Count(8);
    for (std::uint32_t v = 0; v < versions && r.ok(); ++v) {
      op.precondition.version_in.push_back(r.U64());
    }
    op.precondition.must_exist = r.Bool();
    op.precondition.must_be_absent = r.Bool();
    op.min = ReadOptionalI64(r);
    op.max = ReadOptionalI64(r);
    if (r.Bool()) op.ttl_seconds = r.U32();
    f.ops.push_back(std::move(op));
  }
  if (!r.ok() || !r.AtEnd()) return Corrupt("request");
  return f;
}

std::string EncodeOutcome(const domain::TransactionOutcome& outcome) {
  Writer w;
  w.U8(kFormatVersion);
  w.U8(ToWire(kCodes, outcome.status.code()));
  w.Str(outcome.status.message());
  w.Bool(outcome.failed_op.has_value());
  if (outcome.failed_op) w.U32(*outcome.failed_op);
  w.U32(static_cast<std::uint32_t>(outcome.results.size()));
  for (const domain::OpResult& result : outcome.results) {
    w.Bool(result.counter.has_value());
    if (result.counter) w.Counter(*result.counter);
    w.Bool(result.created);
  }
  w.Bool(outcome.current.has_value());
  if (outcome.current) w.Counter(*outcome.current);
  return w.Take();
}

Result<domain::TransactionOutcome> DecodeOutcome(std::string_view bytes) {
  Reader r(bytes);
  if (r.U8() != kFormatVersion) return Corrupt("outcome (format version)");
  domain::TransactionOutcome o;
  const std::optional<StatusCode> code = FromWire(kCodes, r.U8());
  if (!code) return Corrupt("outcome (status code)");
  std::string message = r.Str();
  o.status = *code == StatusCode::kOk ? Status::Ok()
                                      : Status(*code, std::move(message));
  if (r.Bool()) o.failed_op = r.U32();
  const std::uint32_t n = r.Count(2);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    domain::OpResult result;
    if (r.Bool()) result.counter = r.Counter();
    result.created = r.Bool();
    o.results.push_back(std::move(result));
  }
  if (r.Bool()) o.current = r.Counter();
  if (!r.ok() || !r.AtEnd()) return Corrupt("outcome");
  return o;
}

}  // namespace counterd::storage::postgres
