// RecordCodec: the bytes an idempotency record keeps in PostgreSQL — the
// request's fingerprint (counterd_idempotency.request) and its outcome
// (counterd_idempotency.outcome). A small versioned binary encoding (first
// byte: format version), little-endian, every status code and operation
// kind through an explicit table, so the enums' numbering is never a
// storage format. Specified in docs/postgres.md. Pure functions.
#ifndef COUNTERD_STORAGE_POSTGRES_RECORD_CODEC_H_
#define COUNTERD_STORAGE_POSTGRES_RECORD_CODEC_H_

#include <string>
#include <string_view>

#include "counterd/core/result.h"
#include "counterd/domain/transaction.h"

namespace counterd::storage::postgres {

std::string EncodeFingerprint(const domain::Fingerprint& fingerprint);
// kDataLoss if |bytes| is not a fingerprint this version can read.
Result<domain::Fingerprint> DecodeFingerprint(std::string_view bytes);

// |outcome.replayed| is not stored (a stored outcome is the original).
std::string EncodeOutcome(const domain::TransactionOutcome& outcome);
Result<domain::TransactionOutcome> DecodeOutcome(std::string_view bytes);

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_RECORD_CODEC_H_
