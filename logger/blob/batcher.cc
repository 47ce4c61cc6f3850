#include "logger/blob/batcher.h"

namespace logger::blob {

BatchPolicy BatchPolicy::select(int64_t size, BatchClock::duration interval) {
  BatchPolicy policy;
  if (size > 1) {
    policy.size = static_cast<size_t>(size);
    policy.kind = interval > BatchClock::duration::zero() ? BatchKind::Timed : BatchKind::Size;
    if (policy.kind == BatchKind::Timed) policy.interval = interval;
  }
  return policy;
}

BatchSchedule::BatchSchedule(BatchPolicy policy, BatchClock::time_point start)
    : policy_(policy), lastFlush_(start), deadline_(start) {}

void BatchSchedule::arrived(size_t buffered, BatchClock::time_point now) {
  if (policy_.kind != BatchKind::Timed || buffered > 0) return;
  // The first tick of upstream's timer at or after this arrival: ticks fall every interval from
  // the last flush, the empty ones included.
  deadline_ = lastFlush_ + policy_.interval;
  if (now > deadline_) {
    const auto late = now - deadline_;
    const auto ticks = (late + policy_.interval - BatchClock::duration(1)) / policy_.interval;
    deadline_ += ticks * policy_.interval;
  }
}

bool BatchSchedule::due(size_t buffered, BatchClock::time_point now) const {
  if (buffered == 0) return false;
  if (buffered >= batchSize()) return true;
  return policy_.kind == BatchKind::Timed && now >= deadline_;
}

std::optional<BatchClock::time_point> BatchSchedule::deadline(size_t buffered) const {
  if (policy_.kind != BatchKind::Timed || buffered == 0) return std::nullopt;
  return deadline_;
}

void BatchSchedule::flushed(BatchClock::time_point now) {
  lastFlush_ = now;
  // Records left behind by a full batch wait for the restarted timer's first tick.
  deadline_ = now + policy_.interval;
}

}  // namespace logger::blob
