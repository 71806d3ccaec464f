#include "commit_plan.h"

#include <algorithm>
#include <utility>

#include "record_codec.h"
#include "schema.h"
#include "sql_text.h"

namespace counterd::storage::postgres {

using Query = PgConnection::Query;

LockPlan PlanLocks(std::span<const domain::Transaction* const> batch) {
  LockPlan plan;
  std::set<std::pair<std::string, std::string>> seen_keys;
  for (const domain::Transaction* tx : batch) {
    for (const domain::Operation& op : tx->ops) {
      plan.names.push_back(op.name.str());
    }
    if (tx->idempotency &&
        seen_keys.emplace(tx->idempotency->scope, tx->idempotency->key.str())
            .second) {
      plan.scopes.push_back(tx->idempotency->scope);
      plan.keys.push_back(tx->idempotency->key.str());
    }
  }
  std::sort(plan.names.begin(), plan.names.end());
  plan.names.erase(std::unique(plan.names.begin(), plan.names.end()),
                   plan.names.end());
  return plan;
}

LockQueries MakeLockQueries(const LockPlan& plan,
                            std::chrono::milliseconds retention,
                            bool rollback_first) {
  LockQueries q;
  if (rollback_first) q.queries.push_back(Query::Sql("ROLLBACK"));
  q.queries.push_back(Query::Sql("BEGIN"));
  q.lock_index = q.queries.size();
  q.queries.push_back(Query::Prepared(std::string(stmt::kLock),
                                      {PgParam::Text(TextArray(plan.names))}));
  if (!plan.keys.empty()) {
    const std::string scopes = TextArray(plan.scopes);
    const std::string keys = TextArray(plan.keys);
    q.queries.push_back(
        Query::Prepared(std::string(stmt::kIdemExpire),
                        {PgParam::Text(scopes), PgParam::Text(keys),
                         PgParam::Text(std::to_string(retention.count()))}));
    q.records_index = q.queries.size();
    q.queries.push_back(
        Query::Prepared(std::string(stmt::kIdemGet),
                        {PgParam::Text(scopes), PgParam::Text(keys)}));
  }
  // Last: the clock is read once the locks are held, so a commit decides
  // expiry at a time after every commit it waited for.
  q.now_index = q.queries.size();
  q.queries.push_back(Query::Prepared(std::string(stmt::kNow)));
  return q;
}

Result<std::vector<domain::Counter>> ParseCounters(const PgResult& result) {
  if (result.kind != PgResult::Kind::kTuples || result.column_count != 4) {
    return Status::Internal("postgres: unexpected answer to a counter query");
  }
  std::vector<domain::Counter> rows;
  rows.reserve(result.row_count);
  for (std::size_t r = 0; r < result.row_count; ++r) {
    const auto& name = result.Cell(r, 0);
    const auto value = ParseInt64(result.Cell(r, 1).value_or(""));
    const auto version = ParseInt64(result.Cell(r, 2).value_or(""));
    const auto expires = ParseInt64(result.Cell(r, 3).value_or(""));
    if (!name || !value || !version || *version <= 0 || !expires) {
      return Status::DataLoss("postgres: malformed row in counterd_counters");
    }
    rows.push_back(domain::Counter{
        *name, *value, static_cast<std::uint64_t>(*version), *expires});
  }
  return rows;
}

Result<CounterList> ParseCounterList(const PgResult& result) {
  if (result.kind != PgResult::Kind::kTuples || result.column_count != 5 ||
      result.row_count == 0) {
    return Status::Internal("postgres: unexpected answer to a listing");
  }
  CounterList list;
  const auto seq = ParseInt64(result.Cell(0, 0).value_or(""));
  if (!seq || *seq < 0) {
    return Status::DataLoss("postgres: malformed counterd_commit_seq");
  }
  list.seq = static_cast<std::uint64_t>(*seq);
  list.counters.reserve(result.row_count);
  for (std::size_t r = 0; r < result.row_count; ++r) {
    const auto& name = result.Cell(r, 1);
    if (!name) continue;  // the one row of an empty listing
    const auto value = ParseInt64(result.Cell(r, 2).value_or(""));
    const auto version = ParseInt64(result.Cell(r, 3).value_or(""));
    const auto expires = ParseInt64(result.Cell(r, 4).value_or(""));
    if (!value || !version || *version <= 0 || !expires) {
      return Status::DataLoss("postgres: malformed row in counterd_counters");
    }
    list.counters.push_back(domain::Counter{
        *name, *value, static_cast<std::uint64_t>(*version), *expires});
  }
  return list;
}

Result<LockedState> ParseLockReply(const LockQueries& queries,
                                   const std::vector<PgResult>& results) {
  if (results.size() != queries.queries.size()) {
    return Status::Internal("postgres: short reply");
  }
  LockedState state;
  Result<std::vector<domain::Counter>> rows =
      ParseCounters(results[queries.lock_index]);
  if (!rows) return rows.error();
  state.rows = std::move(*rows);
  if (queries.records_index) {
    const PgResult& r = results[*queries.records_index];
    if (r.kind != PgResult::Kind::kTuples || r.column_count != 5) {
      return Status::Internal("postgres: unexpected idempotency answer");
    }
    for (std::size_t i = 0; i < r.row_count; ++i) {
      const auto request = ParseByteaHex(r.Cell(i, 2).value_or(""));
      const auto outcome = ParseByteaHex(r.Cell(i, 3).value_or(""));
      const auto created = ParseInt64(r.Cell(i, 4).value_or(""));
      if (!r.Cell(i, 0) || !r.Cell(i, 1) || !request || !outcome || !created) {
        return Status::DataLoss(
            "postgres: malformed row in counterd_idempotency");
      }
      Result<domain::Fingerprint> fp = DecodeFingerprint(*request);
      if (!fp) return fp.error();
      Result<domain::TransactionOutcome> out = DecodeOutcome(*outcome);
      if (!out) return out.error();
      state.records.push_back(
          domain::IdempotencyRecord{*r.Cell(i, 0), *r.Cell(i, 1),
                                    std::move(*fp), *created, std::move(*out)});
    }
  }
  const PgResult& now = results[queries.now_index];
  const auto now_ms = now.kind == PgResult::Kind::kTuples && now.row_count == 1
                          ? ParseInt64(now.Cell(0, 0).value_or(""))
                          : std::nullopt;
  if (!now_ms) return Status::Internal("postgres: no clock reading");
  state.now_ms = *now_ms;
  return state;
}

void Seed(const LockPlan& plan, const LockedState& state,
          service::WorkingSet& ws) {
  for (const domain::Counter& row : state.rows) ws.SeedCounter(row.name, row);
  for (const std::string& name : plan.names) {
    ws.SeedCounter(name, std::nullopt);  // keeps a row seeded above
  }
  for (const domain::IdempotencyRecord& rec : state.records) {
    auto key = domain::IdempotencyKey::Parse(rec.key);
    if (key) ws.SeedIdempotency({rec.scope, std::move(*key)}, rec);
  }
  for (std::size_t i = 0; i < plan.keys.size(); ++i) {
    auto key = domain::IdempotencyKey::Parse(plan.keys[i]);
    if (key)
      ws.SeedIdempotency({plan.scopes[i], std::move(*key)}, std::nullopt);
  }
}

WritePlan PlanWrites(const service::WorkingSet& ws,
                     const std::set<std::string, std::less<>>& existing) {
  WritePlan plan;
  for (service::WorkingSet::CounterWrite& w : ws.CounterWrites()) {
    const bool stored = existing.contains(w.name);
    if (w.row) {
      (stored ? plan.updates : plan.inserts).push_back(*w.row);
    } else if (stored) {
      plan.deletes.push_back(w.name);
    } else {
      continue;  // created and deleted within the batch: nothing stored
    }
    plan.changes.push_back(CounterChange{std::move(w.name), std::move(w.row)});
  }
  std::sort(plan.inserts.begin(), plan.inserts.end(),
            [](const domain::Counter& a, const domain::Counter& b) {
              return a.name < b.name;
            });
  plan.records = ws.IdempotencyWrites();
  return plan;
}

namespace {

// The four arrays of rows: names, values, versions, expiries.
std::vector<PgParam> RowArrays(const std::vector<domain::Counter>& rows) {
  std::vector<std::string> names;
  std::vector<std::int64_t> values, versions, expiries;
  for (const domain::Counter& c : rows) {
    names.push_back(c.name);
    values.push_back(c.value);
    versions.push_back(static_cast<std::int64_t>(c.version));
    expiries.push_back(c.expires_at_ms);
  }
  return {PgParam::Text(TextArray(names)), PgParam::Text(Int64Array(values)),
          PgParam::Text(Int64Array(versions)),
          PgParam::Text(Int64Array(expiries))};
}

}  // namespace

WriteQueries MakeWriteQueries(const WritePlan& plan) {
  WriteQueries q;
  if (!plan.updates.empty()) {
    q.queries.push_back(
        Query::Prepared(std::string(stmt::kUpdate), RowArrays(plan.updates)));
  }
  if (!plan.deletes.empty()) {
    q.queries.push_back(Query::Prepared(
        std::string(stmt::kDelete), {PgParam::Text(TextArray(plan.deletes))}));
  }
  if (!plan.inserts.empty()) {
    q.queries.push_back(
        Query::Prepared(std::string(stmt::kInsert), RowArrays(plan.inserts)));
  }
  if (!plan.records.empty()) {
    std::vector<std::string> scopes, keys, requests, outcomes;
    std::vector<std::int64_t> created;
    for (const domain::IdempotencyRecord& r : plan.records) {
      scopes.push_back(r.scope);
      keys.push_back(r.key);
      requests.push_back(EncodeFingerprint(r.request));
      outcomes.push_back(EncodeOutcome(r.outcome));
      created.push_back(r.created_at_ms);
    }
    q.queries.push_back(Query::Prepared(
        std::string(stmt::kIdemPut),
        {PgParam::Text(TextArray(scopes)), PgParam::Text(TextArray(keys)),
         PgParam::Text(ByteaArray(requests)),
         PgParam::Text(ByteaArray(outcomes)),
         PgParam::Text(Int64Array(created))}));
  }
  if (!plan.changes.empty()) {
    std::vector<domain::Counter> rows;
    rows.reserve(plan.changes.size());
    for (const CounterChange& c : plan.changes) {
      // A deletion is published as version 0.
      rows.push_back(c.state ? *c.state : domain::Counter{c.name, 0, 0, 0});
    }
    // Rows created minus rows deleted: the stored row count's change.
    const std::int64_t delta = static_cast<std::int64_t>(plan.inserts.size()) -
                               static_cast<std::int64_t>(plan.deletes.size());
    std::vector<PgParam> params = RowArrays(rows);
    params.push_back(PgParam::Text(std::to_string(delta)));
    q.publish_index = q.queries.size();
    q.queries.push_back(
        Query::Prepared(std::string(stmt::kPublish), std::move(params)));
  }
  q.commit_index = q.queries.size();
  q.queries.push_back(Query::Sql("COMMIT"));
  return q;
}

}  // namespace counterd::storage::postgres
