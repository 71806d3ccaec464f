// Version 1 of the storage format (counterd 0.1; "Upgrading from version 1"
// in docs/storage-format.md): its journal payloads, decoded into today's
// effects, and the translation of its HTTP-spelled idempotency fingerprints
// and outcomes into version-2 values. Read-only: nothing writes version 1.
// Pure functions; thread-safe.
#ifndef COUNTERD_STORAGE_FILE_LEGACY_FORMAT_H_
#define COUNTERD_STORAGE_FILE_LEGACY_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/domain/transaction.h"
#include "effects.h"

namespace counterd::storage {

// The effects of a version-1 record payload; kDataLoss if undecodable or if
// an idempotency fingerprint has a shape version 1 never wrote.
Result<std::vector<Effect>> DecodeV1Payload(std::string_view payload);

// "POST /counters/<name>/increment by=<n>" and its decrement and
// /counter/increment siblings as the fingerprint of the same request;
// nullopt for any other shape.
std::optional<domain::Fingerprint> TranslateV1Fingerprint(
    std::string_view fingerprint);

// A version-1 outcome (one operation: status, counter, created) as a
// version-2 one. REQUIRES: |status| came from a version-1 status byte.
domain::TransactionOutcome TranslateV1Outcome(
    Status status, std::optional<domain::Counter> counter, bool created);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_LEGACY_FORMAT_H_
