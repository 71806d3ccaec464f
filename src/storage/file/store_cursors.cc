// StoreState's cursors (store_state.h): a consistent view of the store as
// of one moment, read a page at a time while commits go on.
#include <algorithm>
#include <iterator>
#include <utility>

#include "store_state.h"

namespace counterd::storage {

StoreState::CursorId StoreState::OpenCursor(std::int64_t now_ms) {
  Cursor cursor;
  cursor.now_ms = now_ms;
  cursor.records_end = idempotency_order_.size();
  const CursorId id = next_cursor_++;
  cursors_.emplace(id, std::move(cursor));
  return id;
}

void StoreState::CloseCursor(CursorId id) { cursors_.erase(id); }

void StoreState::SaveForCursors(std::string_view name) {
  const Entry* found = counters_.Find(name);
  const std::optional<Entry> current =
      found != nullptr ? std::optional<Entry>(*found) : std::nullopt;
  for (auto& [id, c] : cursors_) {
    // Read already: what the cursor gave out was the state at its opening.
    if (c.counters_done || (c.counters_begun && name <= c.last_read)) continue;
    // Saved already: that is the state at the opening; this is a later one.
    if (c.before.contains(name)) continue;
    c.before.emplace(std::string(name), current);
  }
}

void StoreState::SaveRecordForCursors(
    const std::string& record_key, const domain::IdempotencyRecord& current) {
  for (auto& [id, c] : cursors_) {
    if (c.next_record < c.records_end)
      c.replaced.try_emplace(record_key, current);
  }
}

SnapshotPage<domain::Counter> StoreState::NextCounters(CursorId id,
                                                       std::size_t max) {
  SnapshotPage<domain::Counter> page;
  Cursor& c = cursors_.at(id);
  max = std::max<std::size_t>(max, 1);
  if (c.counters_done) {
    page.last = true;
    return page;
  }
  // The page: the next |max| names of the map, and every saved name up to
  // the last of those (or all of them once the map has no more). A saved
  // name is the state at the opening, whatever the map holds now.
  auto it =
      c.counters_begun ? counters_.UpperBound(c.last_read) : counters_.begin();
  auto stop = it;
  const std::string* page_last = nullptr;  // the last name of the page
  for (std::size_t n = 0; stop != counters_.end() && n < max; ++n) {
    page_last = &stop.name();
    ++stop;
  }
  const bool to_end = stop == counters_.end();
  const auto saved_stop =
      to_end ? c.before.end() : c.before.upper_bound(*page_last);
  auto saved = c.before.begin();
  const auto add = [&](const std::string& name, const Entry& e) {
    if (e.LiveAt(c.now_ms)) {
      page.items.push_back({name, e.value, e.version, e.expires_at_ms});
    }
  };
  while (it != stop || saved != saved_stop) {
    if (saved == saved_stop || (it != stop && it.name() < saved->first)) {
      add(it.name(), it.value());  // unchanged since the opening
      ++it;
      continue;
    }
    if (saved->second) add(saved->first, *saved->second);
    if (it != stop && it.name() == saved->first) ++it;
    ++saved;
  }
  c.before.erase(c.before.begin(), saved_stop);
  if (to_end) {
    c.counters_done = true;
    page.last = true;
  } else {
    c.last_read = *page_last;
    c.counters_begun = true;
  }
  return page;
}

SnapshotPage<domain::IdempotencyRecord> StoreState::NextRecords(
    CursorId id, std::size_t max) {
  SnapshotPage<domain::IdempotencyRecord> page;
  Cursor& c = cursors_.at(id);
  while (c.next_record < c.records_end && page.items.size() < max) {
    const auto& [created, key] = idempotency_order_[c.next_record++];
    // The record under |key| at the opening: a replaced one, or the one
    // there now. An order entry whose record is neither was superseded
    // before the opening (ToSnapshot skips it too).
    const domain::IdempotencyRecord* record = nullptr;
    if (const auto r = c.replaced.find(key);
        r != c.replaced.end() && r->second.created_at_ms == created) {
      record = &r->second;
    } else if (const auto now = idempotency_.find(key);
               now != idempotency_.end() &&
               now->second.created_at_ms == created) {
      record = &now->second;
    }
    if (record != nullptr && IsRetained(*record, c.now_ms)) {
      page.items.push_back(*record);
    }
  }
  page.last = c.next_record == c.records_end;
  return page;
}

}  // namespace counterd::storage
