#include "logger/dispatcher.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <utility>

namespace logger {

namespace {

// Drops are reported in one warning line at most this often (the counters see every one).
constexpr std::chrono::seconds kDropReportInterval{1};
// Once the logger has held this much, freed memory is handed back to the system when the queue
// empties: glibc keeps it otherwise.
constexpr size_t kTrimAfterBytes = size_t{8} << 20;

bool proxyConfigured() {
  // curl's proxy variables for http URLs; with one set, curl delivers as it did.
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

}  // namespace

bool ByteBudget::tryReserve(size_t bytes) {
  if (used_ > limit_ || bytes > limit_ - used_) return false;
  reserve(bytes);
  return true;
}

void ByteBudget::reserve(size_t bytes) {
  used_ += bytes;
  if (gauge_ != nullptr) gauge_->Increment(static_cast<double>(bytes));
}

void ByteBudget::release(size_t bytes) {
  bytes = std::min(bytes, used_);
  used_ -= bytes;
  if (gauge_ != nullptr) gauge_->Decrement(static_cast<double>(bytes));
}

ByteLease::ByteLease(ByteLease&& other) noexcept
    : budget_(std::move(other.budget_)), bytes_(std::exchange(other.bytes_, 0)) {}

ByteLease& ByteLease::operator=(ByteLease&& other) noexcept {
  if (this != &other) {
    reset();
    budget_ = std::move(other.budget_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool ByteLease::grow(size_t bytes) {
  if (!budget_ || !budget_->tryReserve(bytes)) return false;
  bytes_ += bytes;
  return true;
}

void ByteLease::hold(size_t bytes) {
  if (!budget_) return;
  budget_->reserve(bytes);
  bytes_ += bytes;
}

void ByteLease::reset() {
  if (budget_ && bytes_ > 0) budget_->release(bytes_);
  bytes_ = 0;
}

std::string_view dropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::QueueFull:
      return "queue_full";
    case DropReason::TooLarge:
      return "too_large";
    case DropReason::Rejected:
      return "rejected";
    case DropReason::Failed:
      return "failed";
    case DropReason::Shutdown:
      return "shutdown";
  }
  return "unknown";
}

bool isRetryable(long status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

bool Dispatcher::pipelines(const std::string& url) {
  return parseHttpUrl(url).has_value() && !proxyConfigured();
}

Dispatcher::Dispatcher(uv_loop_s* loop, DispatcherOptions options, prometheus::Registry* metrics)
    : options_(std::move(options)),
      format_(options_.attributes),
      caBundle_(options_.caCertPath),
      retryTimer_(loop),
      drainTimer_(loop),
      reportTimer_(loop),
      client_(loop, core_curl::CurlClient::Options{.maxConnectionsPerHost = options_.workers,
                                                   .maxResponseBytes = 4096,
                                                   .userAgent = options_.userAgent}) {
  if (metrics != nullptr) {
    metrics_.sent = &prometheus::BuildCounter()
                         .Name("kserve_agent_logger_events_sent_total")
                         .Help("CloudEvents the sink accepted")
                         .Register(*metrics)
                         .Add({});
    metrics_.retried = &prometheus::BuildCounter()
                            .Name("kserve_agent_logger_events_retried_total")
                            .Help("CloudEvent deliveries attempted again after a failure")
                            .Register(*metrics)
                            .Add({});
    metrics_.dropped = &prometheus::BuildCounter()
                            .Name("kserve_agent_logger_events_dropped_total")
                            .Help("CloudEvents given up, by reason")
                            .Register(*metrics);
    metrics_.depth = &prometheus::BuildGauge()
                          .Name("kserve_agent_logger_queue_events")
                          .Help("CloudEvents queued or being delivered")
                          .Register(*metrics)
                          .Add({});
    metrics_.bytes = &prometheus::BuildGauge()
                          .Name("kserve_agent_logger_queue_bytes")
                          .Help("Payload bytes held by the logger, captured or queued")
                          .Register(*metrics)
                          .Add({});
  }
  budget_ = std::make_shared<ByteBudget>(options_.maxBytes, metrics_.bytes);
  if (pipelines(options_.url)) {
    PipelineClient::Options pipeline{.sink = *parseHttpUrl(options_.url),
                                     .connections = options_.workers,
                                     .depth = std::max<size_t>(options_.pipelineDepth, 1),
                                     .timeout = options_.timeout,
                                     .backoff = options_.backoff,
                                     .userAgent = options_.userAgent,
                                     .budget = budget_};
    pipeline_ = std::make_unique<PipelineClient>(
        loop, std::move(pipeline), format_, [this] { return take(); },
        [this](Delivery delivery, PipelineResult result) {
          onPipelineResult(std::move(delivery), std::move(result));
        });
    return;
  }
  int workers = std::max(options_.workers, 1);
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i)
    workers_.push_back(std::make_unique<Worker>(loop));
}

Dispatcher::~Dispatcher() {
  // Events still held here (the drain deadline passed with exchanges in flight, or there was no
  // drain) are counted and reported as shutdown drops, never lost without a word.
  abandonAll();
  if (metrics_.depth != nullptr) metrics_.depth->Decrement(static_cast<double>(stats_.depth));
  reportDrops(true);
}

bool Dispatcher::enqueue(EventPtr event) {
  if (stopped_) {
    drop(DropReason::Shutdown, event->record.id);
    return false;
  }
  if (depthNow() >= options_.maxEvents) {
    drop(DropReason::QueueFull, event->record.id);
    return false;
  }
  if (budget_->used() > kTrimAfterBytes) trimWhenIdle_ = true;
  pending_.push_back(Delivery{std::move(event), 0});
  pump();
  return true;
}

void Dispatcher::countDrop(DropReason reason, std::string_view id) {
  drop(reason, id);
}

void Dispatcher::drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done) {
  draining_ = true;
  drainDone_ = std::move(done);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  drainTimer_.start(std::max(left, std::chrono::milliseconds(0)), [this] {
    abandonAll();
    finishDrainIfIdle();
  });
  finishDrainIfIdle();
}

DispatcherStats Dispatcher::stats() const {
  return stats_;
}

void Dispatcher::pump() {
  if (pipeline_) {
    pipeline_->wake();
    updateDepth();
    return;
  }
  for (auto& worker : workers_) {
    while (!worker->event && !pending_.empty()) {
      worker->event = std::move(pending_.front().event);
      pending_.pop_front();
      worker->attempt = 0;
      ++busyWorkers_;
      // A request curl refuses to set up is dropped here, in a loop rather than by recursion.
      if (!deliver(*worker)) release(*worker);
    }
  }
  updateDepth();
  finishDrainIfIdle();
}

bool Dispatcher::deliver(Worker& worker) {
  ++worker.attempt;
  core_curl::CurlRequest request;
  request.url = options_.url;
  request.headers = format_.headers(worker.event->record);
  request.body = worker.event->body;
  request.timeout = options_.timeout;
  request.skipTlsVerify = options_.skipTlsVerify;
  // Without verification no CA is read (nor a missing one warned about).
  if (!options_.skipTlsVerify && core::iequals(options_.url.substr(0, 6), "https:")) {
    request.caBundle = caBundle_.current(std::chrono::steady_clock::now());
  }
  Worker* target = &worker;
  worker.transfer = client_.send(std::move(request), [this, target](core_curl::CurlResult result) {
    onResult(*target, std::move(result));
  });
  if (worker.transfer != 0) return true;
  drop(DropReason::Failed, worker.event->record.id);
  return false;
}

void Dispatcher::onResult(Worker& worker, core_curl::CurlResult result) {
  worker.transfer = 0;
  const std::string& id = worker.event->record.id;
  if (result.status >= 200 && result.status < 300) {
    ++stats_.sent;
    if (metrics_.sent != nullptr) metrics_.sent->Increment();
    spdlog::debug("logger: event {} delivered ({})", id, result.status);
    finish(worker);
    return;
  }
  std::string why = result.status == 0 ? result.error : "status " + std::to_string(result.status);
  if (!isRetryable(result.status)) {
    lastFailure_ = "the sink rejected event " + id + ": " + why;
    drop(DropReason::Rejected, id);
    finish(worker);
    return;
  }
  if (worker.attempt >= options_.attempts || stopped_) {
    lastFailure_ = "event " + id + " failed " + std::to_string(worker.attempt) +
                   " attempt(s), the last with " + why;
    drop(DropReason::Failed, id);
    finish(worker);
    return;
  }
  countRetry();
  auto delay = options_.backoff.delay(worker.attempt);
  spdlog::debug("logger: event {} attempt {} failed ({}); retrying in {} ms", id, worker.attempt,
                why, delay.count());
  Worker* target = &worker;
  worker.backoff.start(delay, [this, target] {
    if (!deliver(*target)) finish(*target);
  });
}

std::optional<Delivery> Dispatcher::take() {
  if (pending_.empty()) return std::nullopt;
  Delivery delivery = std::move(pending_.front());
  pending_.pop_front();
  ++delivery.attempt;
  return delivery;
}

void Dispatcher::onPipelineResult(Delivery delivery, PipelineResult result) {
  const std::string& id = delivery.event->record.id;
  if (result.status >= 200 && result.status < 300) {
    ++stats_.sent;
    if (metrics_.sent != nullptr) metrics_.sent->Increment();
    settled();
    return;
  }
  if (result.unanswered && !stopped_) {
    // Not an attempt: sent again at once, ahead of the newer events.
    --delivery.attempt;
    countRetry();
    spdlog::debug("logger: event {} unanswered ({}); sending it again", id, result.error);
    pending_.push_front(std::move(delivery));
    pipeline_->wake();
    return;
  }
  std::string why = result.status == 0 ? result.error : "status " + std::to_string(result.status);
  if (!isRetryable(result.status)) {
    lastFailure_ = "the sink rejected event " + id + ": " + why;
    drop(DropReason::Rejected, id);
    settled();
    return;
  }
  if (delivery.attempt >= options_.attempts || stopped_) {
    lastFailure_ = "event " + id + " failed " + std::to_string(delivery.attempt) +
                   " attempt(s), the last with " + why;
    drop(DropReason::Failed, id);
    settled();
    return;
  }
  countRetry();
  auto delay = options_.backoff.delay(delivery.attempt);
  spdlog::debug("logger: event {} attempt {} failed ({}); retrying in {} ms", id, delivery.attempt,
                why, delay.count());
  retrying_.emplace(std::chrono::steady_clock::now() + delay, std::move(delivery));
  armRetryTimer();
}

void Dispatcher::armRetryTimer() {
  if (retrying_.empty()) {
    retryTimer_.stop();
    return;
  }
  auto due = retrying_.begin()->first;
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - std::chrono::steady_clock::now());
  retryTimer_.start(std::max(wait, std::chrono::milliseconds(0)), [this] {
    auto now = std::chrono::steady_clock::now();
    auto end = retrying_.upper_bound(now);
    // Due retries go ahead of newer events, oldest first.
    std::vector<Delivery> ready;
    for (auto it = retrying_.begin(); it != end; ++it)
      ready.push_back(std::move(it->second));
    retrying_.erase(retrying_.begin(), end);
    for (auto it = ready.rbegin(); it != ready.rend(); ++it)
      pending_.push_front(std::move(*it));
    armRetryTimer();
    pump();
  });
}

void Dispatcher::countRetry() {
  ++stats_.retried;
  if (metrics_.retried != nullptr) metrics_.retried->Increment();
}

void Dispatcher::settled() {
  updateDepth();
  finishDrainIfIdle();
}

size_t Dispatcher::depthNow() const {
  return pending_.size() + retrying_.size() + busyWorkers_ +
         (pipeline_ ? pipeline_->held() : size_t{0});
}

void Dispatcher::finish(Worker& worker) {
  release(worker);
  pump();
}

void Dispatcher::release(Worker& worker) {
  worker.event.reset();
  worker.transfer = 0;
  --busyWorkers_;
}

void Dispatcher::drop(DropReason reason, std::string_view id) {
  ++stats_.dropped;
  ++stats_.droppedBy[reason];
  ++unreportedDrops_[reason];
  if (metrics_.dropped != nullptr) {
    metrics_.dropped->Add({{"reason", std::string(dropReasonName(reason))}}).Increment();
  }
  spdlog::debug("logger: dropped event {} ({})", id, dropReasonName(reason));
  reportDrops(false);
}

void Dispatcher::reportDrops(bool force) {
  if (unreportedDrops_.empty()) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && lastDropReport_ && now - *lastDropReport_ < kDropReportInterval) {
    // Rate-limited, not silenced: what is held back is reported once the interval is up.
    if (!reportArmed_) {
      reportArmed_ = true;
      reportTimer_.start(std::chrono::ceil<std::chrono::milliseconds>(*lastDropReport_ +
                                                                      kDropReportInterval - now),
                         [this] {
                           reportArmed_ = false;
                           reportDrops(false);
                         });
    }
    return;
  }
  std::string reasons;
  uint64_t count = 0;
  for (const auto& [reason, n] : unreportedDrops_) {
    if (!reasons.empty()) reasons += ", ";
    reasons += std::string(dropReasonName(reason)) + "=" + std::to_string(n);
    count += n;
  }
  if (lastFailure_.empty()) {
    spdlog::warn("logger: dropped {} event(s) ({}); {} dropped in total", count, reasons,
                 stats_.dropped);
  } else {
    spdlog::warn("logger: dropped {} event(s) ({}); {} dropped in total; last failure: {}", count,
                 reasons, stats_.dropped, lastFailure_);
  }
  unreportedDrops_.clear();
  lastFailure_.clear();
  lastDropReport_ = now;
  reportTimer_.stop();
  reportArmed_ = false;
}

void Dispatcher::updateDepth() {
  size_t depth = depthNow();
  if (depth == 0 && trimWhenIdle_) {
    trimWhenIdle_ = false;
    malloc_trim(0);
  }
  if (metrics_.depth != nullptr) {
    metrics_.depth->Increment(static_cast<double>(depth) - static_cast<double>(stats_.depth));
  }
  stats_.depth = depth;
}

void Dispatcher::finishDrainIfIdle() {
  if (!draining_ || stopped_ || depthNow() > 0) return;
  stopped_ = true;
  drainTimer_.stop();
  reportDrops(true);
  spdlog::info("logger: drained; {} event(s) sent, {} dropped", stats_.sent, stats_.dropped);
  if (auto done = std::exchange(drainDone_, nullptr)) done();
}

void Dispatcher::abandonAll() {
  for (auto& worker : workers_) {
    if (!worker->event) continue;
    if (worker->transfer != 0) client_.cancel(worker->transfer);
    worker->backoff.stop();
    drop(DropReason::Shutdown, worker->event->record.id);
    worker->event.reset();
    worker->transfer = 0;
  }
  busyWorkers_ = 0;
  if (pipeline_) {
    for (const auto& delivery : pipeline_->abandon())
      drop(DropReason::Shutdown, delivery.event->record.id);
  }
  for (const auto& [due, delivery] : retrying_)
    drop(DropReason::Shutdown, delivery.event->record.id);
  retrying_.clear();
  retryTimer_.stop();
  for (const auto& delivery : pending_)
    drop(DropReason::Shutdown, delivery.event->record.id);
  pending_.clear();
  updateDepth();
}

}  // namespace logger
