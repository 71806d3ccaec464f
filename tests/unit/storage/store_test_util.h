// Helpers for storage tests: simple planners and a synchronous way to run
// a mutation through a store whose committer is stepped by hand.
#ifndef COUNTERD_TESTS_UNIT_STORAGE_STORE_TEST_UTIL_H_
#define COUNTERD_TESTS_UNIT_STORAGE_STORE_TEST_UTIL_H_

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "counterd/core/clock.h"
#include "counterd/storage/counter_store.h"

namespace counterd::domain {
// For readable gtest failure messages.
inline void PrintTo(const Counter& c, std::ostream* os) {
  *os << c.name << "=" << c.value << "@v" << c.version;
}
}  // namespace counterd::domain

namespace counterd::storage::testing {

// Adds |delta| to |name| (creating it at 0), with no rules beyond that.
inline Planner AddPlanner(std::string name, std::int64_t delta) {
  return [name = std::move(name), delta](const StateView& view) {
    const auto current = view.FindCounter(name);
    domain::Counter next{name, (current ? current->value : 0) + delta,
                         current ? current->version + 1 : 1};
    Plan plan;
    plan.effects.emplace_back(PutCounter{next});
    plan.outcome.counter = next;
    return plan;
  };
}

inline Planner DeletePlanner(std::string name) {
  return [name = std::move(name)](const StateView& view) {
    Plan plan;
    if (!view.FindCounter(name)) {
      plan.outcome.status = Status::NotFound(name);
      return plan;
    }
    plan.effects.emplace_back(DeleteCounter{name});
    return plan;
  };
}

inline StoreOptions ManualOptions(std::string dir = "/data") {
  StoreOptions options;
  options.data_dir = std::move(dir);
  options.start_committer = false;
  return options;
}

// Submits, commits by hand and returns the outcome.
inline domain::MutationOutcome RunOne(CounterStore& store, Planner planner) {
  std::optional<domain::MutationOutcome> result;
  store.Submit(std::move(planner),
               [&](domain::MutationOutcome o) { result = std::move(o); });
  store.CommitPendingBatch();
  EXPECT_TRUE(result.has_value());
  return result.value_or(domain::MutationOutcome{Status::Internal("no outcome"),
                                                 std::nullopt, false, false});
}

// name -> value of every counter, read through List.
inline std::map<std::string, std::int64_t> Dump(const CounterStore& store) {
  std::map<std::string, std::int64_t> out;
  for (const auto& c : store.List("", "", 1u << 30)) out[c.name] = c.value;
  return out;
}

}  // namespace counterd::storage::testing

#endif  // COUNTERD_TESTS_UNIT_STORAGE_STORE_TEST_UTIL_H_
