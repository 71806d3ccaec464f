#include "counterd/domain/transaction.h"

#include <algorithm>
#include <utility>

namespace counterd::domain {

bool Transaction::ReadOnly() const {
  return std::all_of(ops.begin(), ops.end(), [](const Operation& op) {
    return op.kind == OpKind::kGet;
  });
}

Transaction SingleOperation(Operation op) {
  Transaction tx;
  tx.ops.push_back(std::move(op));
  return tx;
}

TransactionOutcome Refusal(Status status) {
  TransactionOutcome outcome;
  outcome.status = std::move(status);
  return outcome;
}

}  // namespace counterd::domain
