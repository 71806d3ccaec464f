// NewSnapshotReader over pages that come later (as PostgreSQL's do): the
// same document as over pages that come at once; a failed page fails the
// document for good; a reader dropped with a page on its way is freed once
// the page comes, and the page source with it.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/storage/snapshot_document.h"

namespace counterd::storage {
namespace {

SnapshotContents Contents(int counters) {
  SnapshotContents contents;
  contents.summary.seq = 42;
  for (int i = 0; i < counters; ++i) {
    contents.counters.push_back(
        {"c" + std::to_string(100000 + i), i, 1, i % 7 == 0 ? 99 : 0});
  }
  domain::IdempotencyRecord r;
  r.scope = "s";
  r.key = "k";
  r.created_at_ms = 5;
  contents.idempotency.push_back(r);
  return contents;
}

// Pages of |contents| answered only when the test says so, and a failure
// when it says that.
class LaterPages final : public SnapshotPages {
 public:
  LaterPages(SnapshotContents contents, bool* destroyed)
      : contents_(std::move(contents)), destroyed_(destroyed) {}
  ~LaterPages() override { *destroyed_ = true; }
  LaterPages(const LaterPages&) = delete;
  LaterPages& operator=(const LaterPages&) = delete;

  void NextCounters(std::size_t max,
                    PageHandler<domain::Counter> done) override {
    pending_ = [this, max, done = std::move(done)](bool fail) {
      if (fail) return done(Status::Unavailable("gone"));
      done(Take(contents_.counters, next_counter_, max));
    };
  }
  void NextRecords(std::size_t max,
                   PageHandler<domain::IdempotencyRecord> done) override {
    pending_ = [this, max, done = std::move(done)](bool fail) {
      if (fail) return done(Status::Unavailable("gone"));
      done(Take(contents_.idempotency, next_record_, max));
    };
  }

  // The page asked for, if any; answers it.
  static bool AnswerPending(std::function<void(bool)>& pending, bool fail) {
    if (!pending) return false;
    std::function<void(bool)> answer = std::move(pending);
    pending = nullptr;
    answer(fail);
    return true;
  }
  std::function<void(bool)> pending_;

 private:
  template <typename T>
  static SnapshotPage<T> Take(const std::vector<T>& all, std::size_t& next,
                              std::size_t max) {
    SnapshotPage<T> page;
    while (next < all.size() && page.items.size() < max) {
      page.items.push_back(all[next++]);
    }
    page.last = next == all.size();
    return page;
  }

  const SnapshotContents contents_;
  std::size_t next_counter_ = 0;
  std::size_t next_record_ = 0;
  bool* destroyed_;
};

struct Read {
  std::optional<Result<std::string>> piece;
};

TEST(SnapshotReaderTest, PagesThatComeLaterMakeTheSameDocument) {
  const int kCounters = 1500;  // three pages of 512
  std::unique_ptr<SnapshotReader> now = NewSnapshotReader(Contents(kCounters));
  Result<std::string> expected = ReadWholeDocument(*now);
  ASSERT_TRUE(expected);

  bool destroyed = false;
  auto owned = std::make_unique<LaterPages>(Contents(kCounters), &destroyed);
  LaterPages* pages = owned.get();
  std::unique_ptr<SnapshotReader> later =
      NewSnapshotReader(42, std::move(owned));
  std::string document;
  int pages_answered = 0;
  for (;;) {
    Read read;
    later->Next(4096,
                [&read](Result<std::string> p) { read.piece = std::move(p); });
    while (!read.piece) {
      ASSERT_FALSE(destroyed);
      ASSERT_TRUE(LaterPages::AnswerPending(pages->pending_, false))
          << "no answer and no page asked for";
      ++pages_answered;
    }
    ASSERT_TRUE(*read.piece);
    if ((*read.piece)->empty()) break;
    document += **read.piece;
  }
  EXPECT_EQ(document, *expected);
  // Three pages of counters, one of records.
  EXPECT_EQ(pages_answered, 4);
  // Read to its end: the source closed (a cursor, a transaction) at once.
  EXPECT_TRUE(destroyed);
}

TEST(SnapshotReaderTest, AFailedPageFailsTheDocumentForGood) {
  bool destroyed = false;
  auto owned = std::make_unique<LaterPages>(Contents(1500), &destroyed);
  LaterPages* pages = owned.get();
  std::unique_ptr<SnapshotReader> reader =
      NewSnapshotReader(42, std::move(owned));
  Read first;
  reader->Next(4096,
               [&first](Result<std::string> p) { first.piece = std::move(p); });
  ASSERT_TRUE(LaterPages::AnswerPending(pages->pending_, /*fail=*/true));
  ASSERT_TRUE(first.piece.has_value());
  ASSERT_FALSE(*first.piece);
  EXPECT_EQ(first.piece->error().code(), StatusCode::kUnavailable);
  // Never a short document that looks whole: the next call fails too,
  // without asking for another page.
  Read second;
  reader->Next(
      4096, [&second](Result<std::string> p) { second.piece = std::move(p); });
  ASSERT_TRUE(second.piece.has_value());
  EXPECT_FALSE(*second.piece);
  EXPECT_FALSE(pages->pending_);
}

TEST(SnapshotReaderTest, ADroppedReaderIsFreedWhenItsPageComes) {
  bool destroyed = false;
  // A first page longer than the piece: it answers without a second one.
  auto owned = std::make_unique<LaterPages>(Contents(1500), &destroyed);
  LaterPages* pages = owned.get();
  std::unique_ptr<SnapshotReader> reader =
      NewSnapshotReader(42, std::move(owned));
  Read read;
  reader->Next(4096,
               [&read](Result<std::string> p) { read.piece = std::move(p); });
  ASSERT_FALSE(read.piece.has_value());  // waiting for the page
  reader.reset();                        // the client went away
  EXPECT_FALSE(destroyed);               // the page handler holds it
  std::function<void(bool)> answer = std::move(pages->pending_);
  pages->pending_ = nullptr;
  answer(false);
  // The piece is still answered (the caller decides what to do with it),
  // and everything goes with the handler.
  ASSERT_TRUE(read.piece.has_value());
  EXPECT_TRUE(*read.piece);
  answer = nullptr;
  EXPECT_TRUE(destroyed);
}

}  // namespace
}  // namespace counterd::storage
