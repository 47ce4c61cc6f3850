// What the logger queues: events ready to POST, and the byte budget their bodies are held in.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/util/capture.h"
#include "core/util/recycle.h"
#include "logger/cloudevent.h"

namespace prometheus {
class Gauge;
}  // namespace prometheus

namespace logger {

// Body bytes the logger holds, captured or queued, across all exchanges: one budget
// (--log-queue-bytes) so that memory stays bounded however many exchanges are in flight.
class ByteBudget {
 public:
  explicit ByteBudget(size_t limit, prometheus::Gauge* gauge = nullptr)
      : limit_(limit), gauge_(gauge) {}
  bool tryReserve(size_t bytes);
  // Counts bytes already held, whatever the limit (copies made for a write): while they are,
  // less is left for new bodies.
  void reserve(size_t bytes);
  void release(size_t bytes);
  size_t used() const { return used_; }

 private:
  size_t limit_;
  size_t used_ = 0;
  prometheus::Gauge* gauge_;
};

// A share of a ByteBudget, released when the lease is reset or destroyed. Move-only.
class ByteLease {
 public:
  ByteLease() = default;
  explicit ByteLease(std::shared_ptr<ByteBudget> budget) : budget_(std::move(budget)) {}
  ~ByteLease() { reset(); }
  ByteLease(ByteLease&& other) noexcept;
  ByteLease& operator=(ByteLease&& other) noexcept;
  ByteLease(const ByteLease&) = delete;
  ByteLease& operator=(const ByteLease&) = delete;

  // Reserves `bytes` more; false (and nothing reserved) when the budget has no room.
  bool grow(size_t bytes);
  // Counts `bytes` more without asking (see ByteBudget::reserve).
  void hold(size_t bytes);
  void reset();
  size_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<ByteBudget> budget_;
  size_t bytes_ = 0;
};

// One CloudEvent ready to POST; its headers are written from the record when it is sent. Made
// once per event and handed on by pointer from the queue to the connection and back; its block
// comes from this thread's spares, as the exchange's does.
struct Event {
  static void* operator new(size_t size) { return core::recycledBlock(size); }
  static void operator delete(void* block, size_t size) { core::recycleBlock(block, size); }

  Record record;
  core::SharedBytes body;
  ByteLease lease;  // the body's share of the byte budget
};

using EventPtr = std::unique_ptr<Event>;

// An event on its way to the sink and the delivery attempts it has used.
struct Delivery {
  EventPtr event;
  int attempt = 0;
};

}  // namespace logger
