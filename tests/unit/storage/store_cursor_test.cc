// StoreState's cursors: read a page at a time while the store changes, a
// cursor gives exactly what ToSnapshot copied at its opening — whatever
// was created, changed, deleted, swept or replaced in between — and
// records are not pruned from under it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store_state.h"

namespace counterd::storage {
namespace {

constexpr std::chrono::milliseconds kRetention{1000};

domain::IdempotencyRecord Record(std::string key, std::int64_t created) {
  domain::IdempotencyRecord r;
  r.scope = "s";
  r.key = std::move(key);
  r.created_at_ms = created;
  return r;
}

// What a cursor gives, read to its end with pages of |page| items.
SnapshotData ReadAll(StoreState& state, StoreState::CursorId id,
                     std::size_t page) {
  SnapshotData out;
  for (bool last = false; !last;) {
    SnapshotPage<domain::Counter> p = state.NextCounters(id, page);
    out.counters.insert(out.counters.end(), p.items.begin(), p.items.end());
    last = p.last;
  }
  for (bool last = false; !last;) {
    SnapshotPage<domain::IdempotencyRecord> p = state.NextRecords(id, page);
    out.idempotency.insert(out.idempotency.end(), p.items.begin(),
                           p.items.end());
    last = p.last;
  }
  return out;
}

TEST(StoreCursorTest, WithNoChangesReadsWhatToSnapshotCopies) {
  StoreState state(kRetention);
  for (int i = 0; i < 10; ++i) {
    state.Apply(PutCounter{{"c" + std::to_string(i), i, 1, 0}});
  }
  state.Apply(PutCounter{{"gone", 1, 1, 50}});  // expired at 100
  state.Apply(PutIdempotency{Record("k", 90)});
  const SnapshotData copy = state.ToSnapshot(7, 100);
  ASSERT_EQ(copy.counters.size(), 10u);
  for (std::size_t page : {1u, 3u, 10u, 100u}) {
    const StoreState::CursorId id = state.OpenCursor(100);
    const SnapshotData read = ReadAll(state, id, page);
    state.CloseCursor(id);
    EXPECT_EQ(read.counters, copy.counters) << "page " << page;
    EXPECT_EQ(read.idempotency, copy.idempotency) << "page " << page;
  }
}

TEST(StoreCursorTest, ChangesAfterTheOpeningAreNotSeen) {
  StoreState state(kRetention);
  state.Apply(PutCounter{{"a", 1, 1, 0}});
  state.Apply(PutCounter{{"b", 2, 1, 0}});
  state.Apply(PutCounter{{"c", 3, 1, 0}});
  state.Apply(PutCounter{{"d", 4, 1, 0}});
  const SnapshotData copy = state.ToSnapshot(4, 100);
  const StoreState::CursorId id = state.OpenCursor(100);

  SnapshotPage<domain::Counter> first = state.NextCounters(id, 2);
  EXPECT_FALSE(first.last);
  ASSERT_EQ(first.items.size(), 2u);  // a, b
  // Behind the cursor, ahead of it, new names before and after it.
  state.Apply(PutCounter{{"a", 10, 2, 0}});
  state.Apply(DeleteCounter{"c"});
  state.Apply(PutCounter{{"d", 40, 2, 0}});
  state.Apply(PutCounter{{"d", 400, 3, 0}});  // the first save stands
  state.Apply(PutCounter{{"bb", 5, 1, 0}});
  state.Apply(PutCounter{{"0", 5, 1, 0}});
  state.Apply(PutCounter{{"e", 5, 1, 0}});
  SnapshotData rest = ReadAll(state, id, 2);
  state.CloseCursor(id);

  std::vector<domain::Counter> read = first.items;
  read.insert(read.end(), rest.counters.begin(), rest.counters.end());
  EXPECT_EQ(read, copy.counters);
  // The store itself has moved on.
  EXPECT_EQ(state.FindCounter("d")->value, 400);
  EXPECT_FALSE(state.FindCounter("c").has_value());
}

TEST(StoreCursorTest, ACounterSweptAfterTheOpeningIsStillRead) {
  StoreState state(kRetention);
  state.Apply(PutCounter{{"a", 1, 1, 0}});
  state.Apply(PutCounter{{"w", 2, 1, 150}});  // live at 100, not at 200
  const StoreState::CursorId id = state.OpenCursor(100);
  ASSERT_EQ(state.SweepExpired(200, 10), std::vector<std::string>{"w"});
  const SnapshotData read = ReadAll(state, id, 1);
  state.CloseCursor(id);
  ASSERT_EQ(read.counters.size(), 2u);
  EXPECT_EQ(read.counters[1], (domain::Counter{"w", 2, 1, 150}));
}

TEST(StoreCursorTest, RecordsArePrunedOnlyOnceNoCursorIsOpen) {
  StoreState state(kRetention);
  state.Apply(PutIdempotency{Record("old", 100)});
  state.Apply(PutIdempotency{Record("new", 900)});
  const StoreState::CursorId id = state.OpenCursor(1000);
  state.Apply(PutIdempotency{Record("later", 1500)});  // after the opening
  state.PruneIdempotency(2000);                        // "old" is past it
  EXPECT_EQ(state.idempotency_count(), 3u);
  // "old" comes back under the same key: the cursor reads the first one.
  state.Apply(PutIdempotency{Record("old", 2000)});
  const SnapshotData read = ReadAll(state, id, 1);
  state.CloseCursor(id);
  ASSERT_EQ(read.idempotency.size(), 2u);
  EXPECT_EQ(read.idempotency[0], Record("old", 100));
  EXPECT_EQ(read.idempotency[1], Record("new", 900));

  state.PruneIdempotency(2000);              // closed: pruning goes on
  EXPECT_EQ(state.idempotency_count(), 2u);  // "later", the second "old"
}

// Random changes between random pages, several cursors open at once: each
// reads exactly the copy taken when it opened.
TEST(StoreCursorTest, InterleavedWithRandomChangesEachReadsItsOpening) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    StoreState state(kRetention);
    std::int64_t now = 1000;
    const auto name = [&] { return "n" + std::to_string(rng() % 60); };
    const auto change = [&] {
      switch (rng() % 5) {
        case 0:
          state.Apply(DeleteCounter{name()});
          break;
        case 1:
          state.Apply(PutIdempotency{Record(name(), now)});
          break;
        case 2:
          (void)state.SweepExpired(now, 3);
          break;
        default: {
          const auto ttl = static_cast<std::int64_t>(rng() % 20);
          state.Apply(
              PutCounter{{name(), static_cast<std::int64_t>(rng()),
                          rng() % 9 + 1, rng() % 3 == 0 ? now + ttl : 0}});
        }
      }
      now += static_cast<std::int64_t>(rng() % 4);
    };
    for (int i = 0; i < 80; ++i) change();

    struct Open {
      StoreState::CursorId id;
      SnapshotData expected;
      SnapshotData read;
      bool counters_done = false;
      bool done = false;
    };
    std::vector<Open> open;
    for (int round = 0; round < 200; ++round) {
      if (open.size() < 3 && rng() % 10 == 0) {
        open.push_back({state.OpenCursor(now), state.ToSnapshot(0, now), {}});
      }
      for (Open& o : open) {
        if (o.done || rng() % 2 == 0) continue;
        const std::size_t page = rng() % 4 + 1;
        if (!o.counters_done) {
          SnapshotPage<domain::Counter> p = state.NextCounters(o.id, page);
          o.read.counters.insert(o.read.counters.end(), p.items.begin(),
                                 p.items.end());
          o.counters_done = p.last;
        } else {
          SnapshotPage<domain::IdempotencyRecord> p =
              state.NextRecords(o.id, page);
          o.read.idempotency.insert(o.read.idempotency.end(), p.items.begin(),
                                    p.items.end());
          o.done = p.last;
        }
      }
      change();
      state.PruneIdempotency(now);
    }
    for (Open& o : open) {
      const SnapshotData rest = ReadAll(state, o.id, 5);
      state.CloseCursor(o.id);
      o.read.counters.insert(o.read.counters.end(), rest.counters.begin(),
                             rest.counters.end());
      o.read.idempotency.insert(o.read.idempotency.end(),
                                rest.idempotency.begin(),
                                rest.idempotency.end());
      EXPECT_EQ(o.read.counters, o.expected.counters) << "seed " << seed;
      EXPECT_EQ(o.read.idempotency, o.expected.idempotency) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace counterd::storage
