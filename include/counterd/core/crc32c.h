// CRC-32C (Castagnoli), the checksum of journal records and snapshots.
// Uses the SSE4.2 crc32 instruction when the CPU has it. Thread-safe.
#ifndef COUNTERD_CORE_CRC32C_H_
#define COUNTERD_CORE_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace counterd::crc32c {

// The CRC of |data| continuing from |crc| (the CRC of the bytes before it).
std::uint32_t Extend(std::uint32_t crc, std::string_view data);
inline std::uint32_t Value(std::string_view data) { return Extend(0, data); }

}  // namespace counterd::crc32c

#endif  // COUNTERD_CORE_CRC32C_H_
