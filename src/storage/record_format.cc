#include "record_format.h"

#include <cstring>
#include <type_traits>
#include <utility>

#include "counterd/core/crc32c.h"

namespace counterd::storage {
namespace {

enum EffectTag : std::uint8_t {
  kPutCounterTag = 1,
  kDeleteCounterTag = 2,
  kPutIdempotencyTag = 3,
};
enum OutcomeFlags : std::uint8_t { kHasCounter = 1, kCreated = 2 };

template <typename T>
void PutFixed(std::string& out, T v) {
  static_assert(std::is_integral_v<T>);
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<char>(u & 0xff));
    u = static_cast<std::make_unsigned_t<T>>(u >> 8);
  }
}

void PutString(std::string& out, std::string_view s) {
  PutFixed<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

void PutCounterFields(std::string& out, const domain::Counter& c) {
  PutString(out, c.name);
  PutFixed<std::int64_t>(out, c.value);
  PutFixed<std::uint64_t>(out, c.version);
}

template <typename T>
T LoadFixed(const char* p) {
  std::make_unsigned_t<T> u = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    u = static_cast<std::make_unsigned_t<T>>(
        u |
        (static_cast<std::make_unsigned_t<T>>(static_cast<unsigned char>(p[i]))
         << (8 * i)));
  }
  return static_cast<T>(u);
}

// Reads fields off a payload, remembering the first failure.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}

  template <typename T>
  T Fixed() {
    if (!Need(sizeof(T))) return T{};
    T v = LoadFixed<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::string String() {
    const auto n = Fixed<std::uint32_t>();
    if (!Need(n)) return {};
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  domain::Counter CounterFields() {
    domain::Counter c;
    c.name = String();
    c.value = Fixed<std::int64_t>();
    c.version = Fixed<std::uint64_t>();
    return c;
  }
  bool ok() const { return ok_; }
  bool done() const { return pos_ == data_.size(); }
  std::size_t pos() const { return pos_; }
  void Fail() { ok_ = false; }

 private:
  bool Need(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void EncodeEffect(const Effect& effect, std::string& out) {
  if (const auto* put = std::get_if<PutCounter>(&effect)) {
    out.push_back(static_cast<char>(kPutCounterTag));
    PutCounterFields(out, put->counter);
  } else if (const auto* del = std::get_if<DeleteCounter>(&effect)) {
    out.push_back(static_cast<char>(kDeleteCounterTag));
    PutString(out, del->name);
  } else {
    const IdempotencyRecord& r = std::get<PutIdempotency>(effect).record;
    out.push_back(static_cast<char>(kPutIdempotencyTag));
    PutString(out, r.key);
    PutString(out, r.fingerprint);
    PutFixed<std::int64_t>(out, r.created_at_ms);
    PutFixed<std::uint8_t>(out,
                           static_cast<std::uint8_t>(r.outcome.status.code()));
    PutString(out, r.outcome.status.message());
    std::uint8_t flags = 0;
    if (r.outcome.counter) flags |= kHasCounter;
    if (r.outcome.created) flags |= kCreated;
    PutFixed<std::uint8_t>(out, flags);
    if (r.outcome.counter) PutCounterFields(out, *r.outcome.counter);
  }
}

}  // namespace

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
    const auto tag = in.Fixed<std::uint8_t>();
    switch (tag) {
      case kPutCounterTag:
        effects.emplace_back(PutCounter{in.CounterFields()});
        break;
      case kDeleteCounterTag:
        effects.emplace_back(DeleteCounter{in.String()});
        break;
      case kPutIdempotencyTag: {
        IdempotencyRecord r;
        r.key = in.String();
        r.fingerprint = in.String();
        r.created_at_ms = in.Fixed<std::int64_t>();
        const auto code = in.Fixed<std::uint8_t>();
        std::string message = in.String();
        if (code > static_cast<std::uint8_t>(StatusCode::kInternal)) {
          in.Fail();
          break;
        }
        const auto status_code = static_cast<StatusCode>(code);
        r.outcome.status = status_code == StatusCode::kOk
                               ? Status::Ok()
                               : Status(status_code, std::move(message));
        const auto flags = in.Fixed<std::uint8_t>();
        if ((flags & kHasCounter) != 0) r.outcome.counter = in.CounterFields();
        r.outcome.created = (flags & kCreated) != 0;
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
