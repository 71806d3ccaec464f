// The persisted numbers and names of status codes and operation kinds are
// the format (docs/storage-format.md), not the in-memory enums: pinned here
// to the documented table, byte by byte.
#include "status_table.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "sample_records.h"

namespace counterd::storage {
namespace {

using domain::OpKind;

// docs/storage-format.md, "Persisted status codes".
TEST(StatusTableTest, StatusBytesAreTheDocumentedTable) {
  const std::pair<int, StatusCode> table[] = {
      {0, StatusCode::kOk},
      {1, StatusCode::kInvalidArgument},
      {2, StatusCode::kNotFound},
      {3, StatusCode::kFailedPrecondition},
      {4, StatusCode::kOutOfRange},
      {5, StatusCode::kAborted},
      {6, StatusCode::kAlreadyExists},
      {7, StatusCode::kResourceExhausted},
      {8, StatusCode::kUnavailable},
      {9, StatusCode::kDataLoss},
      {10, StatusCode::kInternal},
      {11, StatusCode::kLimitExceeded},
  };
  std::set<StatusCode> covered;
  for (const auto& [byte, code] : table) {
    EXPECT_EQ(PersistedStatus(code), byte) << StatusCodeName(code);
    EXPECT_EQ(StatusFromPersisted(static_cast<std::uint8_t>(byte)), code);
    covered.insert(code);
  }
  for (const StatusCode code : testing::AllStatusCodes()) {
    EXPECT_TRUE(covered.count(code))
        << StatusCodeName(code) << " has no documented byte";
  }
  for (int byte = 12; byte < 256; ++byte) {
    EXPECT_FALSE(StatusFromPersisted(static_cast<std::uint8_t>(byte)))
        << "byte " << byte << " must be damage";
  }
}

TEST(StatusTableTest, StatusNamesRoundTrip) {
  for (const StatusCode code : testing::AllStatusCodes()) {
    EXPECT_EQ(StatusFromName(StatusCodeName(code)), code);
  }
  EXPECT_EQ(StatusFromName("LIMIT_EXCEEDED"), StatusCode::kLimitExceeded);
  EXPECT_FALSE(StatusFromName("UNKNOWN"));
  EXPECT_FALSE(StatusFromName("ok"));
  EXPECT_FALSE(StatusFromName(""));
}

// docs/storage-format.md, "fingerprint": 0 get, 1 set, 2 increment,
// 3 decrement, 4 delete; the snapshot spells them as POST /batch does.
TEST(StatusTableTest, OperationKindsAreTheDocumentedTable) {
  const std::tuple<int, OpKind, const char*> table[] = {
      {0, OpKind::kGet, "get"},       {1, OpKind::kSet, "set"},
      {2, OpKind::kAdd, "increment"}, {3, OpKind::kSubtract, "decrement"},
      {4, OpKind::kDelete, "delete"},
  };
  for (const auto& [byte, kind, name] : table) {
    EXPECT_EQ(PersistedOpKind(kind), byte) << name;
    EXPECT_EQ(OpKindFromPersisted(static_cast<std::uint8_t>(byte)), kind);
    EXPECT_EQ(OpKindName(kind), name);
    EXPECT_EQ(OpKindFromName(name), kind);
  }
  for (int byte = 5; byte < 256; ++byte) {
    EXPECT_FALSE(OpKindFromPersisted(static_cast<std::uint8_t>(byte)));
  }
  EXPECT_FALSE(OpKindFromName("add"));
  EXPECT_FALSE(OpKindFromName("INCREMENT"));
}

}  // namespace
}  // namespace counterd::storage
