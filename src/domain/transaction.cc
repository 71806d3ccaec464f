#include "counterd/domain/transaction.h"

#include <algorithm>
#include <utility>

namespace counterd::domain {

bool Transaction::ReadOnly() const {
  return std::all_of(ops.begin(), ops.end(), [](const Operation& op) {
    return op.kind == OpKind::kGet;
  });
}

bool Fingerprint::Matches(const Fingerprint& request) const {
  if (!preconditions_unknown) return *this == request;
  if (batch != request.batch || ops.size() != request.ops.size()) return false;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Operation stored = ops[i];
    stored.precondition = request.ops[i].precondition;
    if (!(stored == request.ops[i])) return false;
  }
  return true;
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
