// Batch strategies with an injected clock: upstream's batch_immediate, batch_size and
// batch_timed tests as black-box cases, and upstream's timer semantics (a deadline counts from
// the last flush, ticks that find nothing included).
#include <catch2/catch.hpp>

#include "logger/blob/batcher.h"

using namespace logger::blob;
using namespace std::chrono_literals;

namespace {

const BatchClock::time_point kStart{std::chrono::hours(1000)};

struct Emitted {
  std::vector<int> records;
  BatchClock::duration at;  // since kStart
};

// Drives a batcher as the logger's loop will: records arrive at their times; at each arrival and
// at each deadline the batches that are due are taken; `close` hands over the rest at the end.
std::vector<Emitted> run(BatchPolicy policy, const std::vector<BatchClock::duration>& arrivals,
                         bool close = true) {
  Batcher<int> batcher(policy, kStart);
  std::vector<Emitted> out;
  auto flush = [&](BatchClock::time_point now) {
    while (batcher.flushDue(now)) {
      auto batch = batcher.take(now);
      REQUIRE_FALSE(batch.empty());
      REQUIRE(batch.size() <= batcher.schedule().batchSize());
      out.push_back({std::move(batch), now - kStart});
    }
  };
  size_t next = 0;
  while (true) {
    const auto deadline = batcher.nextDeadline();
    const bool arrival = next < arrivals.size();
    if (!arrival && !deadline) break;
    if (arrival && (!deadline || kStart + arrivals[next] < *deadline)) {
      const auto now = kStart + arrivals[next];
      batcher.add(static_cast<int>(next++), now);
      flush(now);
    } else {
      flush(*deadline);
    }
  }
  if (close) {
    auto rest = batcher.close();
    if (!rest.empty()) out.push_back({std::move(rest), BatchClock::duration::max()});
  }
  return out;
}

std::vector<BatchClock::duration> together(size_t count) {
  return std::vector<BatchClock::duration>(count, 0ms);
}

std::vector<size_t> sizes(const std::vector<Emitted>& batches) {
  std::vector<size_t> out;
  for (const auto& batch : batches)
    out.push_back(batch.records.size());
  return out;
}

std::vector<int> flattened(const std::vector<Emitted>& batches) {
  std::vector<int> out;
  for (const auto& batch : batches)
    out.insert(out.end(), batch.records.begin(), batch.records.end());
  return out;
}

std::vector<int> upTo(int count) {
  std::vector<int> out;
  for (int i = 0; i < count; ++i)
    out.push_back(i);
  return out;
}

}  // namespace

TEST_CASE("upstream's choice of strategy from the flags", "[blob][batcher]") {
  CHECK(BatchPolicy::select(1, 0ms).kind == BatchKind::Immediate);
  CHECK(BatchPolicy::select(1, 5s).kind == BatchKind::Immediate);  // interval ignored
  CHECK(BatchPolicy::select(0, 0ms).kind == BatchKind::Immediate);
  CHECK(BatchPolicy::select(-1, 0ms).kind == BatchKind::Immediate);
  const BatchPolicy size = BatchPolicy::select(3, 0ms);
  CHECK(size.kind == BatchKind::Size);
  CHECK(size.size == 3);
  const BatchPolicy timed = BatchPolicy::select(3, 50ms);
  CHECK(timed.kind == BatchKind::Timed);
  CHECK(timed.size == 3);
  CHECK(timed.interval == 50ms);
  CHECK(BatchPolicy::select(3, -1ms).kind == BatchKind::Size);
}

TEST_CASE("immediate: one record per batch, in order, at once", "[blob][batcher]") {
  for (size_t count : {0, 1, 5, 100}) {
    const auto batches = run(BatchPolicy::select(1, 0ms), together(count), false);
    CHECK(sizes(batches) == std::vector<size_t>(count, 1));
    for (const auto& batch : batches)
      CHECK(batch.at == 0ms);
  }
  CHECK(flattened(run(BatchPolicy::select(1, 0ms), together(50))) == upTo(50));
}

TEST_CASE("size: exact batches, the remainder on close", "[blob][batcher]") {
  for (size_t n : {1, 3, 10, 50}) {
    const auto batches = run(BatchPolicy::select(static_cast<int64_t>(n), 0ms), together(n), false);
    CHECK(sizes(batches) == std::vector<size_t>{n});
  }
  struct Case {
    size_t records;
    int64_t size;
    std::vector<size_t> batches;
  };
  for (const Case& c : std::initializer_list<Case>{{7, 3, {3, 3, 1}},
                                                   {5, 2, {2, 2, 1}},
                                                   {10, 4, {4, 4, 2}},
                                                   {1, 5, {1}},
                                                   {0, 3, {}},
                                                   {9, 3, {3, 3, 3}}}) {
    INFO(c.records << " records in batches of " << c.size);
    const auto batches = run(BatchPolicy::select(c.size, 0ms), together(c.records));
    CHECK(sizes(batches) == c.batches);
    CHECK(flattened(batches) == upTo(static_cast<int>(c.records)));
  }
}

TEST_CASE("size: without close the remainder waits, it is never dropped", "[blob][batcher]") {
  const auto batches = run(BatchPolicy::select(3, 0ms), together(7), false);
  CHECK(sizes(batches) == std::vector<size_t>{3, 3});
  Batcher<int> batcher(BatchPolicy::select(3, 0ms), kStart);
  for (int i = 0; i < 7; ++i)
    batcher.add(i, kStart);
  CHECK(batcher.take(kStart) == std::vector<int>{0, 1, 2});
  CHECK(batcher.take(kStart) == std::vector<int>{3, 4, 5});
  CHECK_FALSE(batcher.flushDue(kStart + 1h));
  CHECK_FALSE(batcher.nextDeadline());
  CHECK(batcher.close() == std::vector<int>{6});
  CHECK(batcher.empty());
}

TEST_CASE("a size below 1 batches one by one instead of dropping (upstream emitted nothing)",
          "[blob][batcher]") {
  for (int64_t size : {0, -1}) {
    CHECK(sizes(run(BatchPolicy::select(size, 0ms), together(3), false)) ==
          std::vector<size_t>{1, 1, 1});
  }
}

TEST_CASE("timed: the size is reached first", "[blob][batcher]") {
  const auto batches = run(BatchPolicy::select(3, 10s), together(3), false);
  REQUIRE(sizes(batches) == std::vector<size_t>{3});
  CHECK(batches[0].at == 0ms);
}

TEST_CASE("timed: the interval is reached first", "[blob][batcher]") {
  const auto batches = run(BatchPolicy::select(10, 50ms), together(2), false);
  REQUIRE(sizes(batches) == std::vector<size_t>{2});
  CHECK(batches[0].at == 50ms);
}

TEST_CASE("timed: close flushes the remainder", "[blob][batcher]") {
  Batcher<int> batcher(BatchPolicy::select(10, 10s), kStart);
  batcher.add(1, kStart);
  batcher.add(2, kStart + 1ms);
  CHECK_FALSE(batcher.flushDue(kStart + 2ms));
  CHECK(batcher.close() == std::vector<int>{1, 2});
  CHECK_FALSE(batcher.nextDeadline());
}

TEST_CASE("timed: several batches by size, then the rest by time", "[blob][batcher]") {
  const auto batches = run(BatchPolicy::select(3, 1s), together(7), false);
  REQUIRE(sizes(batches) == std::vector<size_t>{3, 3, 1});
  CHECK(batches[2].at == 1s);  // the last size flush at 0 restarted the interval
  CHECK(flattened(batches) == upTo(7));
}

TEST_CASE("timed: a record every 40 ms with a 30 ms interval flushes by time", "[blob][batcher]") {
  std::vector<BatchClock::duration> arrivals;
  for (int i = 1; i <= 10; ++i)
    arrivals.push_back(i * 40ms);
  const auto batches = run(BatchPolicy::select(10, 30ms), arrivals, false);
  CHECK(batches.size() >= 3);
  for (const auto& batch : batches) {
    CHECK(batch.records.size() >= 1);
    CHECK(batch.records.size() <= 3);
  }
  CHECK(flattened(batches) == upTo(10));
}

TEST_CASE("timed with a zero interval is size batching", "[blob][batcher]") {
  CHECK(sizes(run(BatchPolicy::select(3, 0ms), together(7))) == std::vector<size_t>{3, 3, 1});
}

TEST_CASE("timed: deadlines fall on the timer's ticks from the last flush", "[blob][batcher]") {
  Batcher<int> batcher(BatchPolicy::select(10, 100ms), kStart);
  CHECK_FALSE(batcher.nextDeadline());  // nothing waits: no timer needed
  // Ticks at 100, 200 and 300 ms found nothing; the record at 250 ms waits for the one at 300.
  batcher.add(1, kStart + 250ms);
  REQUIRE(batcher.nextDeadline());
  CHECK(*batcher.nextDeadline() == kStart + 300ms);
  CHECK_FALSE(batcher.flushDue(kStart + 299ms));
  CHECK(batcher.flushDue(kStart + 300ms));
  CHECK(batcher.take(kStart + 300ms) == std::vector<int>{1});
  // A record right on a tick is flushed on that tick.
  batcher.add(2, kStart + 400ms);
  CHECK(*batcher.nextDeadline() == kStart + 400ms);
  CHECK(batcher.take(kStart + 400ms) == std::vector<int>{2});
  batcher.add(3, kStart + 401ms);
  CHECK(*batcher.nextDeadline() == kStart + 500ms);
  batcher.add(4, kStart + 450ms);  // a later record does not move the deadline
  CHECK(*batcher.nextDeadline() == kStart + 500ms);
}

TEST_CASE("timed: a flush by size restarts the interval", "[blob][batcher]") {
  Batcher<int> batcher(BatchPolicy::select(2, 100ms), kStart);
  batcher.add(1, kStart + 110ms);
  CHECK(*batcher.nextDeadline() == kStart + 200ms);
  batcher.add(2, kStart + 120ms);
  REQUIRE(batcher.flushDue(kStart + 120ms));
  CHECK(batcher.take(kStart + 120ms) == std::vector<int>{1, 2});
  batcher.add(3, kStart + 130ms);
  CHECK(*batcher.nextDeadline() == kStart + 220ms);
}

TEST_CASE("timed: records left by a full batch wait one interval from that flush",
          "[blob][batcher]") {
  Batcher<int> batcher(BatchPolicy::select(2, 100ms), kStart);
  for (int i = 0; i < 5; ++i)
    batcher.add(i, kStart + 10ms);
  CHECK(batcher.take(kStart + 10ms) == std::vector<int>{0, 1});
  CHECK(batcher.take(kStart + 10ms) == std::vector<int>{2, 3});
  CHECK_FALSE(batcher.flushDue(kStart + 10ms));
  CHECK(*batcher.nextDeadline() == kStart + 110ms);
  CHECK(batcher.flushDue(kStart + 110ms));
  CHECK(batcher.take(kStart + 110ms) == std::vector<int>{4});
}

TEST_CASE("batches hold records that only move", "[blob][batcher]") {
  Batcher<std::unique_ptr<int>> batcher(BatchPolicy::select(2, 0ms), kStart);
  batcher.add(std::make_unique<int>(7), kStart);
  batcher.add(std::make_unique<int>(8), kStart);
  auto batch = batcher.take(kStart);
  REQUIRE(batch.size() == 2);
  CHECK(*batch[0] == 7);
  CHECK(*batch[1] == 8);
}
