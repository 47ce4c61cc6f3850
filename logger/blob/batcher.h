// Batches of records for a blob sink, with upstream's three strategies (spec/upstream-logger.md
// §5.6), as a state machine the caller drives with its clock: no thread and no timer inside. The
// caller adds records, asks whether a batch is due now and when the next deadline is, and takes
// batches; records keep their arrival order, and close() hands over what is left (upstream lost
// a partial batch at shutdown).
//
// Timed(N, d) follows upstream's timer: it starts with the batcher and restarts after every
// flush, including the ticks that found nothing to flush, so a deadline falls on
// lastFlush + k*d, the first such instant at or after the batch's first record arrived. Those
// empty ticks are computed, not run: the caller needs a timer only while records wait.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

namespace logger::blob {

using BatchClock = std::chrono::steady_clock;

enum class BatchKind { Immediate, Size, Timed };

struct BatchPolicy {
  BatchKind kind = BatchKind::Immediate;
  size_t size = 1;
  BatchClock::duration interval{0};

  // Upstream's choice from --log-batch-size and --log-batch-interval: size > 1 and interval > 0
  // is Timed(size, interval), size > 1 is Size(size), anything else Immediate. (Upstream's
  // Size strategy with a size below 1 emitted nothing; here it cannot be chosen.)
  static BatchPolicy select(int64_t size, BatchClock::duration interval);
};

// The counting and timing of a batcher, without its records.
class BatchSchedule {
 public:
  BatchSchedule(BatchPolicy policy, BatchClock::time_point start);

  const BatchPolicy& policy() const { return policy_; }
  // The number of records a batch holds at most (1 for Immediate).
  size_t batchSize() const { return policy_.kind == BatchKind::Immediate ? 1 : policy_.size; }
  // Called when a record arrives while `buffered` records (it excluded) wait.
  void arrived(size_t buffered, BatchClock::time_point now);
  bool due(size_t buffered, BatchClock::time_point now) const;
  // When waiting records become due by time; nullopt without a timer or with nothing waiting.
  std::optional<BatchClock::time_point> deadline(size_t buffered) const;
  // A batch was taken at `now`: the interval restarts.
  void flushed(BatchClock::time_point now);

 private:
  BatchPolicy policy_;
  BatchClock::time_point lastFlush_;
  BatchClock::time_point deadline_;
};

template <typename Record>
class Batcher {
 public:
  Batcher(BatchPolicy policy, BatchClock::time_point start) : schedule_(policy, start) {}

  void add(Record record, BatchClock::time_point now) {
    schedule_.arrived(records_.size(), now);
    records_.push_back(std::move(record));
  }
  // Whether take() should be called now (a batch is full, or its deadline has passed).
  bool flushDue(BatchClock::time_point now) const { return schedule_.due(records_.size(), now); }
  // When flushDue() becomes true by time alone; nullopt when only a new record can make it so.
  std::optional<BatchClock::time_point> nextDeadline() const {
    return schedule_.deadline(records_.size());
  }
  // Takes the oldest records, at most a batch of them, and restarts the interval. Call it while
  // flushDue() holds.
  std::vector<Record> take(BatchClock::time_point now) {
    schedule_.flushed(now);
    const size_t count = std::min(records_.size(), schedule_.batchSize());
    if (count == records_.size()) return std::exchange(records_, {});
    std::vector<Record> batch(std::make_move_iterator(records_.begin()),
                              std::make_move_iterator(records_.begin() + static_cast<long>(count)));
    records_.erase(records_.begin(), records_.begin() + static_cast<long>(count));
    return batch;
  }
  // Everything still waiting, in order (possibly more than one batch's worth: the caller splits
  // it with take() first when it wants exact batches).
  std::vector<Record> close() { return std::exchange(records_, {}); }

  size_t size() const { return records_.size(); }
  bool empty() const { return records_.empty(); }
  const BatchSchedule& schedule() const { return schedule_; }

 private:
  BatchSchedule schedule_;
  std::vector<Record> records_;
};

}  // namespace logger::blob
