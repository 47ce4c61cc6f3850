// Delivery of logged events to the sink: a bounded queue (events and bytes) feeding the pipelined
// client (http:// sinks) or a fixed set of curl workers (https://), with a timeout and bounded
// retries with exponential backoff. Nothing here ever blocks or delays the request path: when a
// bound is hit the event is dropped and counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/head.h"
#include "core/util/recycle.h"
#include "core/uv/timer.h"
#include "core_curl/ca_bundle.h"
#include "core_curl/curl_client.h"
#include "logger/cloudevent.h"
#include "logger/event.h"
#include "logger/pipeline.h"

struct uv_loop_s;
namespace prometheus {
class Counter;
class Gauge;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace logger {

enum class DropReason {
  QueueFull,  // the event or byte bound was reached
  TooLarge,   // one body alone exceeds the byte bound
  Rejected,   // the sink answered 4xx (not retried)
  Failed,     // every attempt failed (connection errors, timeouts, 5xx)
  Shutdown,   // still queued when the drain deadline passed
};
std::string_view dropReasonName(DropReason reason);

// Status codes worth another attempt: no answer at all, 408, 429 and 5xx.
bool isRetryable(long status);

struct DispatcherOptions {
  std::string url;
  // https: concurrent deliveries, each owning its event through its retries; http: connections
  int workers = 5;
  size_t pipelineDepth = 1024;  // http: events in flight on one connection
  size_t maxEvents = 10000;     // events queued or being delivered
  size_t maxBytes = size_t{64} << 20;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  int attempts = 5;  // deliveries per event, the first included
  core::Backoff backoff;
  std::string caCertPath;  // custom CA bundle for https sinks
  bool skipTlsVerify = false;
  std::string userAgent = "kserve-agent";
  EventAttributes attributes;  // the per-process part of every event
};

struct DispatcherStats {
  uint64_t sent = 0;
  uint64_t retried = 0;
  uint64_t dropped = 0;
  std::map<DropReason, uint64_t> droppedBy;
  size_t depth = 0;  // events queued or being delivered
};

class Dispatcher {
 public:
  // `metrics` may be null.
  Dispatcher(uv_loop_s* loop, DispatcherOptions options, prometheus::Registry* metrics);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  // True when this URL is delivered by the pipelined client rather than by curl.
  static bool pipelines(const std::string& url);
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The byte budget captures reserve from before their event exists.
  const std::shared_ptr<ByteBudget>& budget() const { return budget_; }

  // Takes an event for delivery; false when it was dropped (queue full, or drained already).
  bool enqueue(EventPtr event);
  // Counts an event that could not even be built (its body outgrew the budget).
  void countDrop(DropReason reason, std::string_view id);

  // Delivers what is queued and calls `done` once: when the queue is empty, or at `deadline`,
  // when what is left is abandoned and counted. Events offered afterwards are dropped.
  void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done);

  DispatcherStats stats() const;

 private:
  struct Worker {
    explicit Worker(uv_loop_s* loop) : backoff(loop) {}
    EventPtr event;
    int attempt = 0;
    uint64_t transfer = 0;
    core::Timer backoff;
  };
  struct Metrics {
    prometheus::Counter* sent = nullptr;
    prometheus::Counter* retried = nullptr;
    prometheus::Family<prometheus::Counter>* dropped = nullptr;
    prometheus::Gauge* depth = nullptr;
    prometheus::Gauge* bytes = nullptr;
  };

  void pump();
  std::optional<Delivery> take();
  void onPipelineResult(Delivery delivery, PipelineResult result);
  void armRetryTimer();
  void countRetry();
  // A pipelined delivery is over: depth and drain follow.
  void settled();
  size_t depthNow() const;
  // Starts the worker's next attempt; false (event dropped) when curl refused the request.
  bool deliver(Worker& worker);
  void onResult(Worker& worker, core_curl::CurlResult result);
  // The worker is done with its event: frees it and hands it the next one.
  void finish(Worker& worker);
  void release(Worker& worker);
  void drop(DropReason reason, std::string_view id);
  void reportDrops(bool force);
  void updateDepth();
  void finishDrainIfIdle();
  void abandonAll();

  DispatcherOptions options_;
  EventFormat format_;  // the events' CE headers, for both delivery paths
  Metrics metrics_;
  std::shared_ptr<ByteBudget> budget_;
  core_curl::CaBundle caBundle_;
  std::deque<Delivery, core::RecyclingAllocator<Delivery>> pending_;
  // Pipelined deliveries waiting for their next attempt, by when it is due.
  std::multimap<std::chrono::steady_clock::time_point, Delivery> retrying_;
  core::Timer retryTimer_;
  bool trimWhenIdle_ = false;  // a burst held enough memory to give back once the queue empties
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t busyWorkers_ = 0;
  DispatcherStats stats_;
  std::map<DropReason, uint64_t> unreportedDrops_;
  std::optional<std::chrono::steady_clock::time_point> lastDropReport_;
  std::string lastFailure_;  // why the latest delivery was given up, for the next report
  core::Timer drainTimer_;
  core::Timer reportTimer_;  // reports drops held back by the rate limit once it allows
  bool reportArmed_ = false;
  std::function<void()> drainDone_;
  bool draining_ = false;
  bool stopped_ = false;
  // Declared last so that they are destroyed first: deliveries in flight are cancelled before the
  // workers and queues their callbacks point at go away.
  core_curl::CurlClient client_;
  std::unique_ptr<PipelineClient> pipeline_;  // http:// sinks; null for https
};

}  // namespace logger
