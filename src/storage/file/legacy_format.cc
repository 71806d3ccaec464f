#include "legacy_format.h"

#include <charconv>
#include <utility>

#include "binary_io.h"
#include "status_table.h"

namespace counterd::storage {
namespace {

enum V1Tag : std::uint8_t {
  kV1PutCounter = 1,
  kV1DeleteCounter = 2,
  kV1PutIdempotency = 3,
};
enum V1OutcomeFlags : std::uint8_t { kV1HasCounter = 1, kV1Created = 2 };
// Version 1 persisted the status codes 0 (OK) to 10 (INTERNAL).
constexpr std::uint8_t kV1LastStatus = 10;

// Version 1 checked names and keys at the API, as version 2 does.
std::string GetV1Name(Cursor& in) {
  std::string name = in.String();
  if (in.ok() && !domain::CounterName::Parse(name)) in.Fail();
  return name;
}

domain::Counter GetV1Counter(Cursor& in) {
  domain::Counter c;
  c.name = GetV1Name(in);
  c.value = in.Fixed<std::int64_t>();
  c.version = in.Fixed<std::uint64_t>();
  return c;
}

// Appends the PutIdempotency whose version-1 encoding is next in |in| to
// |effects|. Bytes that do not decode leave |in| failed and |effects| as it
// was; a status or fingerprint that has no version-2 meaning is kDataLoss.
Status DecodeV1Idempotency(Cursor& in, std::vector<Effect>& effects) {
  domain::IdempotencyRecord r;
  r.key = in.String();
  if (in.ok() && !domain::IdempotencyKey::Parse(r.key)) in.Fail();
  const std::string fingerprint = in.String();
  r.created_at_ms = in.Fixed<std::int64_t>();
  const auto code = in.Fixed<std::uint8_t>();
  std::string message = in.String();
  if (in.ok() && !IsUtf8(message)) in.Fail();
  const auto flags = in.Fixed<std::uint8_t>();
  std::optional<domain::Counter> counter;
  if ((flags & kV1HasCounter) != 0) counter = GetV1Counter(in);
  if (!in.ok()) return Status::Ok();
  const std::optional<StatusCode> status = StatusFromPersisted(code);
  std::optional<domain::Fingerprint> request =
      TranslateV1Fingerprint(fingerprint);
  if (code > kV1LastStatus || !status || !request) {
    return Status::DataLoss("version-1 idempotency record '" + r.key +
                            "' has an unknown status or fingerprint '" +
                            fingerprint + "'");
  }
  r.request = std::move(*request);
  r.outcome = TranslateV1Outcome(*status == StatusCode::kOk
                                     ? Status::Ok()
                                     : Status(*status, std::move(message)),
                                 std::move(counter), (flags & kV1Created) != 0);
  effects.emplace_back(PutIdempotency{std::move(r)});
  return Status::Ok();
}

}  // namespace

std::optional<domain::Fingerprint> TranslateV1Fingerprint(
    std::string_view fingerprint) {
  constexpr std::string_view kPost = "POST ";
  constexpr std::string_view kBy = " by=";
  const std::size_t by = fingerprint.rfind(kBy);
  if (!fingerprint.starts_with(kPost) || by == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view path =
      fingerprint.substr(kPost.size(), by - kPost.size());
  const std::string_view amount = fingerprint.substr(by + kBy.size());
  std::int64_t operand = 0;
  const auto [end, ec] =
      std::from_chars(amount.data(), amount.data() + amount.size(), operand);
  if (ec != std::errc() || end != amount.data() + amount.size()) {
    return std::nullopt;
  }

  domain::Operation op;
  op.operand = operand;
  std::string_view name;
  constexpr std::string_view kCounters = "/counters/";
  constexpr std::string_view kIncrement = "/increment";
  constexpr std::string_view kDecrement = "/decrement";
  if (path == "/counter/increment") {
    op.kind = domain::OpKind::kAdd;
    name = domain::CounterName::kDefault;
  } else if (path.size() > kCounters.size() + kIncrement.size() &&
             path.starts_with(kCounters) && path.ends_with(kIncrement)) {
    // The size check: in "/counters/increment" prefix and suffix overlap.
    op.kind = domain::OpKind::kAdd;
    name = path.substr(kCounters.size(),
                       path.size() - kCounters.size() - kIncrement.size());
  } else if (path.size() > kCounters.size() + kDecrement.size() &&
             path.starts_with(kCounters) && path.ends_with(kDecrement)) {
    op.kind = domain::OpKind::kSubtract;
    name = path.substr(kCounters.size(),
                       path.size() - kCounters.size() - kDecrement.size());
  } else {
    return std::nullopt;
  }
  Result<domain::CounterName> parsed = domain::CounterName::Parse(name);
  if (!parsed) return std::nullopt;
  op.name = std::move(*parsed);
  domain::Fingerprint f;
  f.ops.push_back(std::move(op));
  // Format 1 left If-Match out of its fingerprints: a retry matches
  // whatever its preconditions, as it did before the upgrade.
  f.preconditions_unknown = true;
  return f;
}

domain::TransactionOutcome TranslateV1Outcome(
    Status status, std::optional<domain::Counter> counter, bool created) {
  domain::TransactionOutcome outcome;
  if (!status.ok()) {
    outcome.status = std::move(status);
    outcome.failed_op = 0;
    return outcome;
  }
  outcome.results.push_back(domain::OpResult{std::move(counter), created});
  return outcome;
}

Result<std::vector<Effect>> DecodeV1Payload(std::string_view payload) {
  Cursor in(payload);
  const auto count = in.Fixed<std::uint32_t>();
  std::vector<Effect> effects;
  effects.reserve(std::min<std::size_t>(count, payload.size()));
  for (std::uint32_t i = 0; i < count && in.ok(); ++i) {
    switch (in.Fixed<std::uint8_t>()) {
      case kV1PutCounter:
        effects.emplace_back(PutCounter{GetV1Counter(in)});
        break;
      case kV1DeleteCounter:
        effects.emplace_back(DeleteCounter{GetV1Name(in)});
        break;
      case kV1PutIdempotency:
        COUNTERD_RETURN_IF_ERROR(DecodeV1Idempotency(in, effects));
        break;
      default:
        in.Fail();
    }
  }
  if (!in.ok() || !in.done()) {
    return Status::DataLoss(
        "undecodable version-1 record payload near payload byte " +
        std::to_string(in.pos()));
  }
  return effects;
}

}  // namespace counterd::storage
