#include "logger/logger.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <filesystem>

#include "agent/version.h"
#include "logger/logger_module.h"

namespace logger {

namespace {

constexpr std::string_view kProbeUserAgent = "kube-probe/";

std::string_view trimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The Content-Type to put on an event: the message's own, trimmed; none when absent or blank.
std::optional<std::string> contentTypeOf(const agent::Headers& headers) {
  const std::string* value = agent::findHeader(headers, "Content-Type");
  if (value == nullptr) return std::nullopt;
  std::string_view trimmed = trimSpace(*value);
  if (trimmed.empty()) return std::nullopt;
  return std::string(trimmed);
}

std::optional<size_t> contentLengthOf(const agent::Headers& headers) {
  const std::string* value = agent::findHeader(headers, "Content-Length");
  if (value == nullptr) return std::nullopt;
  size_t length = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), length);
  if (ec != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return length;
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
  d.userAgent = "kserve-agent/" + std::string(agent::kVersion);
  return d;
}

EventAttributes eventAttributes(const agent::ModuleContext& context, const Options& options) {
  EventAttributes a;
  a.source = options.sourceUri.empty()
                 ? "http://localhost:" + std::to_string(context.listenPort) + "/"
                 : options.sourceUri;
  a.inferenceService = options.inferenceService;
  a.namespace_ = options.namespace_;
  a.component = options.component;
  a.endpoint = options.endpoint;
  a.annotationsJson = annotationsJson(options.metadataAnnotations);
  return a;
}

}  // namespace

std::unique_ptr<agent::Module> makeLogger(const agent::ModuleContext& context,
                                          const Options& options) {
  if (options.logUrl.empty()) return nullptr;
  if (!options.logUrl.starts_with("http://") && !options.logUrl.starts_with("https://")) {
    spdlog::error("logger: only http(s) sinks are supported; events to {} will be dropped",
                  options.logUrl);
  }
  return std::make_unique<LoggerModule>(context, options);
}

LoggerModule::LoggerModule(const agent::ModuleContext& context, const Options& options)
    : logRequests_(options.logMode != "response"),
      logResponses_(options.logMode != "request"),
      logAllResponses_(options.logAllResponses),
      metadataHeaders_(options.metadataHeaders),
      maxBodyBytes_(options.logQueueBytes),
      attributes_(eventAttributes(context, options)),
      dispatcher_(context.loop, dispatcherOptions(options), context.metrics),
      drainTimer_(context.loop) {
  spdlog::info("logger: {} events to {} (source {}, {} workers)", options.logMode, options.logUrl,
               attributes_.source, options.workers);
}

unsigned LoggerModule::observes() const {
  unsigned bits = agent::kObserveComplete;
  if (logRequests_) bits |= agent::kObserveRequestData;
  if (logResponses_) bits |= agent::kObserveResponse;
  return bits;
}

agent::Action LoggerModule::onRequestHeaders(const agent::ExchangePtr& exchange) {
  const agent::RequestHead& request = exchange->request();
  const std::string* userAgent = agent::findHeader(request.headers, "User-Agent");
  if (userAgent != nullptr && userAgent->starts_with(kProbeUserAgent)) {
    return agent::Action::Continue;
  }
  Capture capture;
  capture.id = eventId(request.headers);
  capture.requestTime = exchange->startTime();
  capture.requestContentType = contentTypeOf(request.headers);
  capture.metadata = collectMetadata(request.headers, metadataHeaders_);
  capture.request.lease = ByteLease(dispatcher_.budget());
  capture.response.lease = ByteLease(dispatcher_.budget());
  if (logRequests_) expect(capture.request, request.headers);
  captures_.insert_or_assign(exchange->id(), std::move(capture));
  return agent::Action::Continue;
}

void LoggerModule::onRequestData(agent::Exchange& exchange, std::string_view chunk) {
  auto it = captures_.find(exchange.id());
  if (it == captures_.end() || !logRequests_) return;
  append(it->second.request, chunk);
}

void LoggerModule::onResponseHeaders(agent::Exchange& exchange) {
  auto it = captures_.find(exchange.id());
  const agent::ResponseHead* response = exchange.response();
  if (it == captures_.end() || response == nullptr || !logResponses_) return;
  Capture& capture = it->second;
  // Upstream logs 200 responses only; --log-all-responses logs every status.
  capture.captureResponse = response->status == 200 || logAllResponses_;
  // A Content-Length on a bodiless answer describes a body that never comes.
  bool bodiless = exchange.request().method == "HEAD" || response->status == 204 ||
                  response->status == 304 || response->status < 200;
  if (capture.captureResponse && !bodiless) expect(capture.response, response->headers);
}

void LoggerModule::onResponseData(agent::Exchange& exchange, std::string_view chunk) {
  auto it = captures_.find(exchange.id());
  if (it == captures_.end() || !it->second.captureResponse) return;
  append(it->second.response, chunk);
}

void LoggerModule::onComplete(agent::Exchange& exchange, bool complete) {
  auto node = captures_.extract(exchange.id());
  if (node.empty()) return;
  Capture& capture = node.mapped();
  const agent::ResponseHead* response = exchange.response();
  // A request whose exchange broke off is still logged once an answer had started (the model
  // saw it); a response cut short is not logged, since its body would be a fragment.
  if (logRequests_ && (complete || response != nullptr)) {
    emit(Record{EventKind::Request, capture.id, capture.requestTime, capture.requestContentType,
                capture.metadata, std::nullopt},
         std::move(capture.request));
  }
  if (capture.captureResponse && response != nullptr) {
    if (complete) {
      emit(Record{EventKind::Response, capture.id, std::chrono::system_clock::now(),
                  contentTypeOf(response->headers), std::move(capture.metadata),
                  logAllResponses_ ? std::optional<int>(response->status) : std::nullopt},
           std::move(capture.response));
    } else {
      spdlog::debug("logger: response of {} broke off; not logged", capture.id);
    }
  }
  if (drainDone_ && captures_.empty()) startDispatcherDrain();
}

void LoggerModule::drain(std::chrono::steady_clock::time_point deadline,
                         std::function<void()> done) {
  drainDeadline_ = deadline;
  drainDone_ = std::move(done);
  if (captures_.empty()) {
    startDispatcherDrain();
    return;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  drainTimer_.start(std::max(left, std::chrono::milliseconds(0)), [this] {
    spdlog::warn("logger: {} exchange(s) still open at the drain deadline", captures_.size());
    startDispatcherDrain();
  });
}

void LoggerModule::expect(Body& body, const agent::Headers& headers) {
  std::optional<size_t> length = contentLengthOf(headers);
  if (!length || *length == 0) return;
  // Reserving the announced length up front keeps concurrent large bodies within the budget
  // from their first byte on.
  if (*length > maxBodyBytes_) {
    body.overflow = DropReason::TooLarge;
  } else if (!body.lease.grow(*length)) {
    body.overflow = DropReason::QueueFull;
  } else {
    body.data.reserve(*length);
  }
}

void LoggerModule::append(Body& body, std::string_view chunk) {
  if (body.overflow || chunk.empty()) return;
  size_t needed = body.data.size() + chunk.size();
  if (needed > body.lease.bytes()) {
    if (needed > maxBodyBytes_) {
      body.overflow = DropReason::TooLarge;
    } else if (!body.lease.grow(needed - body.lease.bytes())) {
      body.overflow = DropReason::QueueFull;
    }
  }
  if (body.overflow) {
    body.lease.reset();
    std::string().swap(body.data);
    return;
  }
  body.data.append(chunk);
}

void LoggerModule::emit(Record record, Body body) {
  if (body.overflow) {
    dispatcher_.countDrop(*body.overflow, record.id);
    return;
  }
  Event event;
  event.id = record.id;
  event.kind = record.kind;
  event.headers = buildHeaders(record, attributes_, std::chrono::system_clock::now());
  event.body = std::make_shared<const std::string>(std::move(body.data));
  event.lease = std::move(body.lease);
  dispatcher_.enqueue(std::move(event));
}

void LoggerModule::startDispatcherDrain() {
  drainTimer_.stop();
  auto done = std::exchange(drainDone_, nullptr);
  if (!done) return;
  dispatcher_.drain(drainDeadline_.value_or(std::chrono::steady_clock::now()), std::move(done));
}

}  // namespace logger
