// The numbers and names the file formats persist for status codes and
// operation kinds (docs/storage-format.md). These tables, not the in-memory
// enums, are the format: reordering an enum cannot change what a file
// means. Pure functions; thread-safe.
#ifndef COUNTERD_STORAGE_FILE_STATUS_TABLE_H_
#define COUNTERD_STORAGE_FILE_STATUS_TABLE_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "counterd/core/status.h"
#include "counterd/domain/transaction.h"

namespace counterd::storage {

std::uint8_t PersistedStatus(StatusCode code);
// nullopt for a byte the table does not have (damage).
std::optional<StatusCode> StatusFromPersisted(std::uint8_t byte);
// The snapshot spells codes by name ("LIMIT_EXCEEDED").
std::optional<StatusCode> StatusFromName(std::string_view name);

std::uint8_t PersistedOpKind(domain::OpKind kind);
std::optional<domain::OpKind> OpKindFromPersisted(std::uint8_t byte);
// "get", "set", "increment", "decrement", "delete": the spelling of
// POST /batch, used by the snapshot.
std::string_view OpKindName(domain::OpKind kind);
std::optional<domain::OpKind> OpKindFromName(std::string_view name);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_STATUS_TABLE_H_
