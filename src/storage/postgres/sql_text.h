// The text forms counterd exchanges with PostgreSQL: array literals for the
// parameters that carry a whole batch (one statement updates every row a
// batch touched: UPDATE ... FROM unnest($1::text[], ...)), bytea and
// integer output. Pure functions.
#ifndef COUNTERD_STORAGE_POSTGRES_SQL_TEXT_H_
#define COUNTERD_STORAGE_POSTGRES_SQL_TEXT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace counterd::storage::postgres {

// {"a","b"}: every element quoted (so "NULL" is a name, not a NULL),
// with " and \ escaped.
std::string TextArray(std::span<const std::string> items);
std::string Int64Array(std::span<const std::int64_t> items);
// bytea elements in hex input form: {"\\x0102",...}.
std::string ByteaArray(std::span<const std::string> items);

// Parses bytea text output in hex form (\x0102...); nullopt otherwise.
std::optional<std::string> ParseByteaHex(std::string_view text);
std::optional<std::int64_t> ParseInt64(std::string_view text);

// The smallest string above every string that starts with |prefix| (the
// exclusive upper bound of a prefix scan), or nullopt if there is none.
std::optional<std::string> PrefixUpperBound(std::string_view prefix);

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_SQL_TEXT_H_
