#include "logger/logger.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <filesystem>

#include "core/http/head.h"
#include "core/http/url.h"
#include "core/util/version.h"
#include "logger/logger_module.h"

namespace logger {

namespace {

constexpr std::string_view kProbeUserAgent = "kube-probe/";

// Bodies larger than this are captured in a core::CaptureBuffer (see core/util/capture.h): the cost
// of a mapping is nothing next to copying such a body, and below it a string's growth copies
// little.
constexpr size_t kLargeBody = 256 * 1024;

// A body's bytes, shared by its event and the writes that send it: the buffer goes back to this
// thread's spare strings when the last holder lets go.
struct Payload {
  explicit Payload(std::string data) : bytes(std::move(data)) {}
  ~Payload() { core::recycleString(bytes); }
  Payload(const Payload&) = delete;
  Payload& operator=(const Payload&) = delete;
  std::string bytes;
};

// The Content-Type to put on an event: the message's own, trimmed; "" (none) when absent.
std::string_view contentTypeOf(const core::Headers& headers) {
  const std::string* value = core::findHeader(headers, "Content-Type");
  return value == nullptr ? std::string_view() : core::trimSpace(*value);
}

std::optional<size_t> contentLengthOf(const core::Headers& headers) {
  const std::string* value = core::findHeader(headers, "Content-Length");
  if (value == nullptr) return std::nullopt;
  size_t length = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), length);
  if (ec != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return length;
}

std::string eventSource(const Options& options) {
  return options.sourceUri.empty() ? "http://localhost:" + std::to_string(options.listenPort) + "/"
                                   : options.sourceUri;
}

EventAttributes eventAttributes(const Options& options) {
  EventAttributes a;
  a.source = eventSource(options);
  a.inferenceService = options.inferenceService;
  a.namespace_ = options.namespace_;
  a.component = options.component;
  a.endpoint = options.endpoint;
  a.annotationsJson = annotationsJson(options.metadataAnnotations);
  return a;
}

DispatcherOptions dispatcherOptions(const Options& options) {
  DispatcherOptions d;
  d.url = options.logUrl;
  d.workers = options.workers;
  d.maxEvents = options.logQueueEvents;
  d.maxBytes = options.logQueueBytes;
  d.timeout = options.logTimeout;
  d.attempts = options.logRetries;
  // Upstream joins the file name under the directory whatever it looks like (Go filepath.Join).
  d.caCertPath = (std::filesystem::path(options.loggerCaCertDir + "/" + options.loggerCaCertFile))
                     .lexically_normal()
                     .string();
  d.skipTlsVerify = options.loggerTlsSkipVerify;
  d.userAgent = "kserve-agent/" + std::string(core::kVersion);
  d.attributes = eventAttributes(options);
  return d;
}

}  // namespace

std::unique_ptr<core::Filter> makeLogger(const core::FilterContext& context,
                                         const Options& options) {
  if (options.logUrl.empty()) return nullptr;
  if (options.blobUploads != nullptr) return std::make_unique<LoggerModule>(context, options);
  if (std::string problem = core::httpUrlProblem(options.logUrl); !problem.empty()) {
    spdlog::error("logger: {}; events to {} will be dropped", problem, options.logUrl);
  }
  return std::make_unique<LoggerModule>(context, options);
}

LoggerModule::LoggerModule(const core::FilterContext& context, const Options& options)
    : slot_(context.slot),
      logRequests_(options.logMode != "response"),
      logResponses_(options.logMode != "request"),
      logAllResponses_(options.logAllResponses),
      metadataHeaders_(options.metadataHeaders),
      maxBodyBytes_(options.logQueueBytes),
      dispatcher_(context.loop, dispatcherOptions(options), options.metrics),
      drainTimer_(context.loop) {
  if (options.blobUploads != nullptr) {
    blob_ = std::make_unique<BlobSink>(context.loop, options, dispatcher_);
    spdlog::info("logger: {} records to {} ({}, store path {}, batches of {}, interval {} ms)",
                 options.logMode, options.logUrl, options.logStoreFormat, options.logStorePath,
                 options.logBatchSize, options.logBatchInterval.count());
    return;
  }
  spdlog::info("logger: {} events to {} (source {}, {} workers)", options.logMode, options.logUrl,
               eventSource(options), options.workers);
}

unsigned LoggerModule::observes() const {
  unsigned bits = core::kObserveComplete;
  if (logRequests_) bits |= core::kObserveRequestData;
  if (logResponses_) bits |= core::kObserveResponse;
  return bits;
}

core::Action LoggerModule::onRequestHeaders(const core::ExchangePtr& exchange) {
  const core::RequestHead& request = exchange->request();
  const std::string* userAgent = core::findHeader(request.headers, "User-Agent");
  if (userAgent != nullptr && userAgent->starts_with(kProbeUserAgent)) {
    return core::Action::Continue;
  }
  auto capture = std::make_unique<Capture>();
  Record& record = capture->record;
  capture->clientId = assignEventId(record.id, request.headers);
  record.time = exchange->startTime();
  core::assignReusing(record.contentType, contentTypeOf(request.headers));
  if (!metadataHeaders_.empty()) {
    record.metadataJson = metadataJson(collectMetadata(request.headers, metadataHeaders_));
  }
  capture->request.lease = ByteLease(dispatcher_.budget());
  capture->response.lease = ByteLease(dispatcher_.budget());
  if (logRequests_) expect(capture->request, request.headers);
  exchange->state(slot_) = std::move(capture);
  ++openCaptures_;
  return core::Action::Continue;
}

LoggerModule::Capture* LoggerModule::captureOf(core::Exchange& exchange) const {
  return static_cast<Capture*>(exchange.state(slot_).get());
}

void LoggerModule::onRequestData(core::Exchange& exchange, std::string_view chunk) {
  Capture* capture = captureOf(exchange);
  if (capture == nullptr || !logRequests_) return;
  append(capture->request, chunk);
}

void LoggerModule::onResponseHeaders(core::Exchange& exchange) {
  Capture* capture = captureOf(exchange);
  const core::ResponseHead* response = exchange.response();
  if (capture == nullptr || response == nullptr || !logResponses_) return;
  // Upstream logs 200 responses only; --log-all-responses logs every status.
  capture->captureResponse = response->status == 200 || logAllResponses_;
  // A Content-Length on a bodiless answer describes a body that never comes.
  bool bodiless = exchange.request().method == "HEAD" || response->status == 204 ||
                  response->status == 304 || response->status < 200;
  if (capture->captureResponse && !bodiless) expect(capture->response, response->headers);
}

void LoggerModule::onResponseData(core::Exchange& exchange, std::string_view chunk) {
  Capture* capture = captureOf(exchange);
  if (capture == nullptr || !capture->captureResponse) return;
  append(capture->response, chunk);
}

void LoggerModule::onComplete(core::Exchange& exchange, bool complete) {
  std::unique_ptr<core::ExchangeState> state = std::move(exchange.state(slot_));
  if (state == nullptr) return;
  --openCaptures_;
  Capture& capture = static_cast<Capture&>(*state);
  const core::ResponseHead* response = exchange.response();
  auto now = std::chrono::system_clock::now();
  capture.record.recorded = now;
  bool logResponse = capture.captureResponse && response != nullptr;
  // A request whose exchange broke off is still logged if it had arrived whole or an answer had
  // started (the model may have seen it, and upstream logs it before proxying); a response cut
  // short is not logged, since its body would be a fragment.
  if (logRequests_ && (complete || response != nullptr || exchange.requestReceived())) {
    // The response event starts from a copy of the request's record when it follows.
    Record record = logResponse && complete ? capture.record : std::move(capture.record);
    emit(std::move(record), std::move(capture.request), capture.clientId);
  }
  if (logResponse) {
    if (complete) {
      Record& record = capture.record;
      record.kind = EventKind::Response;
      record.time = now;
      core::assignReusing(record.contentType, contentTypeOf(response->headers));
      if (logAllResponses_) record.statusCode = response->status;
      emit(std::move(record), std::move(capture.response), capture.clientId);
    } else {
      spdlog::debug("logger: response of {} broke off; not logged", capture.record.id);
    }
  }
  if (drainDone_ && openCaptures_ == 0) startDispatcherDrain();
}

void LoggerModule::drain(std::chrono::steady_clock::time_point deadline,
                         std::function<void()> done) {
  drainDeadline_ = deadline;
  drainDone_ = std::move(done);
  if (openCaptures_ == 0) {
    startDispatcherDrain();
    return;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  drainTimer_.start(std::max(left, std::chrono::milliseconds(0)), [this] {
    spdlog::warn("logger: {} exchange(s) still open at the drain deadline", openCaptures_);
    startDispatcherDrain();
  });
}

void LoggerModule::expect(Body& body, const core::Headers& headers) {
  std::optional<size_t> length = contentLengthOf(headers);
  if (!length || *length == 0) return;
  // Reserving the announced length up front keeps concurrent large bodies within the budget
  // from their first byte on.
  if (*length > maxBodyBytes_) {
    body.overflow = DropReason::TooLarge;
  } else if (!body.lease.grow(*length)) {
    body.overflow = DropReason::QueueFull;
  } else {
    if (*length > kLargeBody) body.large = core::CaptureBuffer::make(*length);
    if (body.large) return;
    if (*length <= core::kMaxRecycledString) core::reuseString(body.data, *length);
    body.data.reserve(*length);
  }
}

void LoggerModule::append(Body& body, std::string_view chunk) {
  if (body.overflow || chunk.empty()) return;
  size_t needed = body.size() + chunk.size();
  if (needed > body.lease.bytes()) {
    if (needed > maxBodyBytes_) {
      body.overflow = DropReason::TooLarge;
    } else if (!body.lease.grow(needed - body.lease.bytes())) {
      body.overflow = DropReason::QueueFull;
    }
  }
  if (!body.overflow && !body.large && needed > kLargeBody) {
    // A body without a Content-Length that grows large: from here it is appended in place, up to
    // the bound, instead of being copied at each doubling of a string.
    body.large = core::CaptureBuffer::make(maxBodyBytes_);
    if (body.large && body.large->append(body.data)) std::string().swap(body.data);
  }
  if (!body.overflow && body.large && !body.large->append(chunk)) {
    // The system refused memory for the body (or it outgrew the length it announced).
    body.overflow = DropReason::QueueFull;
  }
  if (body.overflow) {
    body.lease.reset();
    std::string().swap(body.data);
    body.large.reset();
    return;
  }
  if (!body.large) core::appendReusing(body.data, chunk.data(), chunk.size());
}

void LoggerModule::emit(Record&& record, Body&& body, bool clientId) {
  if (body.overflow) {
    dispatcher_.countDrop(*body.overflow, record.id);
    return;
  }
  auto event = std::make_unique<Event>();
  event->record = std::move(record);
  if (body.large) {
    std::string_view bytes = body.large->view();
    event->body = core::SharedBytes(std::shared_ptr<const void>(std::move(body.large)), bytes);
  } else {
    auto payload = std::allocate_shared<const Payload>(core::RecyclingAllocator<Payload>(),
                                                       std::move(body.data));
    event->body = std::shared_ptr<const std::string>(payload, &payload->bytes);
  }
  event->lease = std::move(body.lease);
  if (blob_) {
    blob_->add(std::move(event), clientId);
    return;
  }
  dispatcher_.enqueue(std::move(event));
}

void LoggerModule::startDispatcherDrain() {
  drainTimer_.stop();
  auto done = std::exchange(drainDone_, nullptr);
  if (!done) return;
  if (blob_) {
    blob_->drain(drainDeadline_.value_or(std::chrono::steady_clock::now()), std::move(done));
    return;
  }
  dispatcher_.drain(drainDeadline_.value_or(std::chrono::steady_clock::now()), std::move(done));
}

}  // namespace logger
