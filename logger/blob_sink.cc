#include "logger/blob_sink.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "logger/blob/marshaller.h"
#include "logger/dispatcher.h"

namespace logger {

namespace {

// The Content-Type of an object an external marshaller made, from its extension.
std::string contentTypeOfExtension(std::string_view extension) {
  if (extension == "json") return "application/json";
  if (extension == "csv") return "text/csv";
  return "application/octet-stream";
}

// Ce-Metadata's JSON ({"Name":["v1",...]}) back into a record's map. The module builds it from
// the request's headers, so it always parses; anything else is left out.
blob::Metadata metadataOf(const std::string& json) {
  blob::Metadata metadata;
  if (json.empty() || json == "{}") return metadata;
  nlohmann::json parsed = nlohmann::json::parse(json, nullptr, false);
  if (!parsed.is_object()) return metadata;
  for (const auto& [name, values] : parsed.items()) {
    if (!values.is_array()) continue;
    std::vector<std::string> list;
    for (const auto& value : values) {
      if (value.is_string()) list.push_back(value.get<std::string>());
    }
    metadata[name] = std::move(list);
  }
  return metadata;
}

std::optional<blob::GoUrl> goUrlOf(const std::string& text) {
  blob::GoUrl url;
  std::string error;
  if (text.empty() || !blob::GoUrl::parse(text, url, error)) return std::nullopt;
  return url;
}

}  // namespace

void BlobMailbox::post(BlobOutcome outcome) {
  std::lock_guard lock(mutex_);
  if (async_ == nullptr) return;
  outcomes_.push_back(std::move(outcome));
  uv_async_send(async_);
}

std::vector<BlobOutcome> BlobMailbox::take() {
  std::lock_guard lock(mutex_);
  return std::exchange(outcomes_, {});
}

void BlobMailbox::bind(uv_async_s* async) {
  std::lock_guard lock(mutex_);
  async_ = async;
}

BlobUploads::BlobUploads(std::unique_ptr<BlobStore> store,
                         std::unique_ptr<MarshallerClient> marshaller, BlobUploadsOptions options)
    : store_(std::move(store)),
      marshaller_(std::move(marshaller)),
      options_(std::move(options)),
      keys_(options_.directory, blob::ObjectKeys::randomToken()),
      thread_([this] { run(); }) {}

BlobUploads::~BlobUploads() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void BlobUploads::submit(Job job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void BlobUploads::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    BlobOutcome outcome = process(job);
    if (stop_) return;
    job.mailbox->post(std::move(outcome));
  }
}

bool BlobUploads::marshal(const std::vector<blob::LogRequest>& records, std::string& data,
                          std::string& extension, std::string& contentType, std::string& error,
                          bool& permanent) {
  blob::Marshalled marshalled;
  if (options_.marshallerUrl.empty()) {
    if (!blob::marshalLocally(options_.format, records, marshalled, error)) return false;
    contentType = std::string(blob::formatContentType(options_.format));
  } else {
    MarshallerClient::Answer answer =
        marshaller_->post(options_.marshallerUrl, blob::marshalRequestBody(records), stop_);
    if (answer.status == 0) {
      error = "marshaller " + options_.marshallerUrl + ": " + answer.error;
      return false;
    }
    // A marshaller that refuses the batch itself (a 4xx but 408 and 429) refuses it again.
    permanent = !isRetryable(answer.status) && answer.status >= 400 && answer.status < 500;
    if (!blob::readMarshalAnswer(answer.status, answer.extension, std::move(answer.body),
                                 marshalled, error)) {
      return false;
    }
    contentType = contentTypeOfExtension(marshalled.extension);
  }
  data = std::move(marshalled.data);
  extension = std::move(marshalled.extension);
  return true;
}

BlobOutcome BlobUploads::process(Job& job) {
  BlobOutcome outcome;
  outcome.batch = job.batch;
  for (int retry = 1;; ++retry) {
    std::string data;
    std::string extension;
    std::string contentType;
    std::string error;
    bool permanent = false;
    if (marshal(job.records, data, extension, contentType, error, permanent)) {
      const blob::LogRequest& first = job.records.front();
      std::string key = keys_.key(
          first.id,
          job.clientId ? blob::ObjectKeys::IdOrigin::Client : blob::ObjectKeys::IdOrigin::Generated,
          first.reqType, extension);
      if (store_->upload(key, data, contentType, stop_, error)) {
        spdlog::debug("logger: uploaded {} record(s) to {}", job.records.size(),
                      store_->describe(key));
        outcome.uploaded = true;
        return outcome;
      }
    }
    // The marshaller and the store have had their own attempts: the batch waits, and the
    // batches behind it wait too (the loops stop taking records at their bounds), so that a
    // store that is down for a while loses nothing that fits within them.
    outcome.error = error;
    if (permanent || stop_) return outcome;
    const std::chrono::milliseconds delay = options_.retry.delay(retry);
    spdlog::warn("logger: batch of {} record(s) not stored, trying again in {} ms: {}",
                 job.records.size(), delay.count(), error);
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, delay, [this] { return stop_.load(); })) return outcome;
  }
}

BlobSink::BlobSink(uv_loop_s* loop, const Options& options, Dispatcher& accounting)
    : loop_(loop),
      accounting_(accounting),
      uploads_(options.blobUploads),
      mailbox_(std::make_shared<BlobMailbox>()),
      maxRecords_(options.logQueueEvents),
      url_(goUrlOf(options.logUrl)),
      sourceUri_(goUrlOf(options.sourceUri.empty()
                             ? "http://localhost:" + std::to_string(options.listenPort) + "/"
                             : options.sourceUri)),
      inferenceService_(options.inferenceService),
      namespace_(options.namespace_),
      component_(options.component),
      endpoint_(options.endpoint),
      certName_(options.loggerCaCertFile),
      tlsSkipVerify_(options.loggerTlsSkipVerify),
      batcher_(blob::BatchPolicy::select(options.logBatchSize, options.logBatchInterval),
               blob::BatchClock::now()),
      timer_(loop),
      drainTimer_(loop),
      async_(
          [loop](uv_async_t* handle) {
            return uv_async_init(
                loop, handle, [](uv_async_t* a) { static_cast<BlobSink*>(a->data)->onOutcomes(); });
          },
          this) {
  for (const std::string& item : options.metadataAnnotations) {
    size_t equals = item.find('=');
    if (equals == std::string::npos) continue;
    annotations_[item.substr(0, equals)] = item.substr(equals + 1);
  }
  mailbox_->bind(async_.get());
  if (options.metrics != nullptr) {
    auto& objects = prometheus::BuildCounter()
                        .Name("kserve_agent_logger_blob_objects_total")
                        .Help("Blob sink objects, by outcome (uploaded, failed)")
                        .Register(*options.metrics);
    metrics_.objects = &objects.Add({{"result", "uploaded"}});
    metrics_.failed = &objects.Add({{"result", "failed"}});
    metrics_.records = &prometheus::BuildCounter()
                            .Name("kserve_agent_logger_blob_records_total")
                            .Help("Records in the objects the blob sink uploaded")
                            .Register(*options.metrics)
                            .Add({});
    // The same series as the dispatcher's, which holds nothing in blob mode.
    metrics_.held = &prometheus::BuildGauge()
                         .Name("kserve_agent_logger_queue_events")
                         .Help("CloudEvents queued or being delivered")
                         .Register(*options.metrics)
                         .Add({});
  }
}

void BlobSink::setHeld(size_t held) {
  if (metrics_.held != nullptr) {
    metrics_.held->Increment(static_cast<double>(held) - static_cast<double>(counters_.held));
  }
  counters_.held = held;
}

BlobSink::~BlobSink() {
  mailbox_->bind(nullptr);
  setHeld(0);
}

blob::LogRequest BlobSink::toRecord(Event& event) const {
  blob::LogRequest record;
  record.url = url_;
  record.bytes = std::string(event.body.view());
  record.contentType = event.record.contentType;
  record.reqType =
      std::string(event.record.kind == EventKind::Request ? kRequestType : kResponseType);
  record.id = event.record.id;
  record.sourceUri = sourceUri_;
  record.inferenceService = inferenceService_;
  record.namespace_ = namespace_;
  record.component = component_;
  record.endpoint = endpoint_;
  record.metadata = metadataOf(event.record.metadataJson);
  record.annotations = annotations_;
  record.certName = certName_;
  record.tlsSkipVerify = tlsSkipVerify_;
  record.occurrenceTime = blob::Timestamp::now();
  return record;
}

void BlobSink::add(EventPtr event, bool clientId) {
  if (draining_) {
    accounting_.countDrop(DropReason::Shutdown, event->record.id);
    return;
  }
  if (counters_.held >= maxRecords_) {
    accounting_.countDrop(DropReason::QueueFull, event->record.id);
    return;
  }
  Pending pending{toRecord(*event), clientId, std::move(event->lease)};
  setHeld(counters_.held + 1);
  batcher_.add(std::move(pending), blob::BatchClock::now());
  flushDue();
}

void BlobSink::flushDue() {
  auto now = blob::BatchClock::now();
  while (!batcher_.empty() && batcher_.flushDue(now))
    submit(batcher_.take(now));
  armTimer();
}

void BlobSink::armTimer() {
  std::optional<blob::BatchClock::time_point> deadline = batcher_.nextDeadline();
  if (!deadline) {
    timer_.stop();
    return;
  }
  auto delay = std::chrono::ceil<std::chrono::milliseconds>(*deadline - blob::BatchClock::now());
  timer_.start(std::max(delay, std::chrono::milliseconds(0)), [this] { flushDue(); });
}

void BlobSink::submit(std::vector<Pending> batch) {
  if (batch.empty()) return;
  BlobUploads::Job job;
  job.batch = nextBatch_++;
  job.clientId = batch.front().clientId;
  job.mailbox = mailbox_;
  InFlight& flight = inFlight_[job.batch];
  for (Pending& pending : batch) {
    flight.ids.push_back(pending.record.id);
    flight.leases.push_back(std::move(pending.lease));
    job.records.push_back(std::move(pending.record));
  }
  uploads_->submit(std::move(job));
}

void BlobSink::onOutcomes() {
  for (BlobOutcome& outcome : mailbox_->take()) {
    auto it = inFlight_.find(outcome.batch);
    if (it == inFlight_.end()) continue;
    const size_t records = it->second.ids.size();
    if (outcome.uploaded) {
      ++counters_.objects;
      counters_.records += records;
      if (metrics_.objects != nullptr) {
        metrics_.objects->Increment();
        metrics_.records->Increment(static_cast<double>(records));
      }
    } else {
      ++counters_.failedObjects;
      if (metrics_.failed != nullptr) metrics_.failed->Increment();
      spdlog::error("logger: batch of {} record(s) given up: {}", records, outcome.error);
      for (const std::string& id : it->second.ids)
        accounting_.countDrop(DropReason::Failed, id);
    }
    setHeld(counters_.held - records);
    inFlight_.erase(it);
  }
  finishDrainIfIdle();
}

void BlobSink::drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done) {
  draining_ = true;
  drainDone_ = std::move(done);
  timer_.stop();
  auto now = blob::BatchClock::now();
  // Whatever the strategy, what waits goes now, in batches of the configured size.
  while (!batcher_.empty())
    submit(batcher_.take(now));
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
  drainTimer_.start(std::max(left, std::chrono::milliseconds(0)), [this] {
    spdlog::warn("logger: {} record(s) not stored by the drain deadline", counters_.held);
    for (auto& [batch, flight] : inFlight_) {
      for (const std::string& id : flight.ids)
        accounting_.countDrop(DropReason::Shutdown, id);
    }
    setHeld(0);
    inFlight_.clear();
    finishDrainIfIdle();
  });
  finishDrainIfIdle();
}

void BlobSink::finishDrainIfIdle() {
  if (!drainDone_ || counters_.held != 0) return;
  drainTimer_.stop();
  spdlog::info("logger: blob sink drained; {} object(s) with {} record(s) stored, {} failed",
               counters_.objects, counters_.records, counters_.failedObjects);
  std::exchange(drainDone_, nullptr)();
}

}  // namespace logger
