#include "batcher/batcher.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "batcher/v1.h"
#include "batcher/v2.h"

namespace batcher {

namespace {

// Upstream's handler falls back to these when given values <= 0.
constexpr int kDefaultMaxBatchSize = 32;
constexpr int kDefaultMaxLatencyMs = 5000;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kShutDown = "the agent shut down before the model server answered";

enum class Protocol { V1, V2 };
enum class FlushReason { Size, Latency, Drain };

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path as Go's r.URL.Path holds it, with every %XX escape decoded; nullopt when an escape
// is malformed (Go's server refuses such a request).
std::optional<std::string> decodePath(std::string_view path) {
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      decoded += path[i];
      continue;
    }
    const int high = i + 2 < path.size() ? hexValue(path[i + 1]) : -1;
    const int low = high >= 0 ? hexValue(path[i + 2]) : -1;
    if (low < 0) return std::nullopt;
    decoded += static_cast<char>(high << 4 | low);
    i += 2;
  }
  return decoded;
}

// /v2/models/<m>/infer and /v2/models/<m>/versions/<v>/infer.
bool isV2InferPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/v2/models/";
  constexpr std::string_view kSuffix = "/infer";
  return path.size() > kPrefix.size() + kSuffix.size() && path.starts_with(kPrefix) &&
         path.ends_with(kSuffix);
}

// Which protocol may batch a request for `path` (the raw target without its query). Upstream
// matches ":predict$" on the decoded path, so "/v1/models/m%3Apredict" is v1 too; v2 paths are
// judged the same way.
std::optional<Protocol> protocolFor(std::string_view path) {
  std::optional<std::string> decoded;
  if (path.find('%') != std::string_view::npos) {
    decoded = decodePath(path);
    if (!decoded) return std::nullopt;
    path = *decoded;
  }
  if (path.ends_with(":predict")) return Protocol::V1;
  if (isV2InferPath(path)) return Protocol::V2;
  return std::nullopt;
}

bool isSuccess(int status) {
  return status >= 200 && status <= 299;
}

// The declared body size, when there is a valid Content-Length.
std::optional<size_t> declaredLength(const core::RequestHead& request) {
  const std::string* value = core::findHeader(request.headers, "Content-Length");
  if (value == nullptr) return std::nullopt;
  size_t length = 0;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), length);
  if (error != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return length;
}

// A one-shot libuv timer. The handle is freed in its close callback; destroying the Timer (even
// from inside its own callback) cancels it.
class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> onFire)
      : handle_(new uv_timer_t), onFire_(std::move(onFire)) {
    if (uv_timer_init(loop, handle_) != 0) std::abort();
    handle_->data = this;
  }
  ~Timer() {
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::chrono::milliseconds delay) {
    // The loop's clock is cached per iteration; the deadline counts from the real "now".
    uv_update_time(handle_->loop);
    uv_timer_start(handle_, &Timer::fired,
                   static_cast<uint64_t>(std::max<int64_t>(0, delay.count())), 0);
  }

 private:
  static void fired(uv_timer_t* handle) {
    auto* self = static_cast<Timer*>(handle->data);
    if (self == nullptr) return;
    // The callback may destroy this Timer, so it runs from a copy.
    auto onFire = self->onFire_;
    onFire();
  }

  uv_timer_t* handle_;
  std::function<void()> onFire_;
};

struct Caller {
  core::ExchangePtr exchange;
  v1::Request v1;
  v2::Request v2;
  size_t count = 0;  // instances (v1) or rows (v2)
};

struct Batch {
  Protocol protocol = Protocol::V1;
  std::string target;
  std::string contentType;
  std::vector<Caller> callers;
  size_t count = 0;
  std::unique_ptr<Timer> timer;  // while the batch is pending
  std::string batchId;
  bool answered = false;
};

void answerV1(Batch& batch, const core::UpstreamResult& result) {
  // Upstream's rows: a transport error or a status other than 200 carries no batch id; a 200
  // that cannot be used carries one.
  std::string message;
  std::string batchId;
  v1::ResponseParse parsed;
  bool ok = false;
  if (result.status == 0) {
    message = result.error;
  } else if (result.status != 200) {
    message = result.body;
  } else {
    batchId = batch.batchId;
    parsed = v1::parseResponse(result.body);
    message = parsed.error;
    if (message.empty() && parsed.predictions.size() != batch.count) {
      message = v1::kSizeMismatch;
    }
    ok = message.empty();
  }
  size_t offset = 0;
  for (auto& caller : batch.callers) {
    std::string body = ok ? v1::successBody(batchId, parsed.predictions, offset, caller.count)
                          : v1::errorBody(message, batchId);
    offset += caller.count;
    caller.exchange->replyWith(200, kJson, std::move(body));
  }
}

void answerV2(Batch& batch, const core::UpstreamResult& result) {
  if (result.status == 0) {
    for (auto& caller : batch.callers) {
      caller.exchange->replyWith(502, kJson, v2::errorBody(result.error));
    }
    return;
  }
  // An error status carries no caller's rows and goes to everyone as it is. Any success status
  // (201 or 203 too) holds every caller's rows, so it is split like 200 and relayed, or refused
  // with 502 when it cannot be split: no caller may see another's data.
  if (!isSuccess(result.status)) {
    const std::string* type = core::findHeader(result.headers, "Content-Type");
    for (auto& caller : batch.callers) {
      caller.exchange->replyWith(result.status, type != nullptr ? *type : "", result.body);
    }
    return;
  }
  std::vector<const v2::Request*> requests;
  for (const auto& caller : batch.callers)
    requests.push_back(&caller.v2);
  v2::Split split = v2::splitResponse(result.body, requests);
  for (size_t i = 0; i < batch.callers.size(); ++i) {
    auto& exchange = batch.callers[i].exchange;
    if (split.error.empty()) {
      exchange->replyWith(result.status, kJson, std::move(split.bodies[i]));
    } else {
      exchange->replyWith(
          502, kJson, v2::errorBody("batcher: cannot split the model's answer: " + split.error));
    }
  }
}

// Answers every caller of a batch once, whatever the outcome.
void answer(Batch& batch, const core::UpstreamResult& result) {
  if (batch.answered) return;
  batch.answered = true;
  // Upstream's v1 counts only 200 as success; v2 takes any 2xx.
  const bool success =
      batch.protocol == Protocol::V1 ? result.status == 200 : isSuccess(result.status);
  if (!success) {
    spdlog::warn("batcher: merged call to {} failed: {}", batch.target,
                 result.status == 0 ? result.error : "status " + std::to_string(result.status));
  }
  if (batch.protocol == Protocol::V1) {
    answerV1(batch, result);
  } else {
    answerV2(batch, result);
  }
  batch.callers.clear();
}

struct Metrics {
  explicit Metrics(prometheus::Registry& registry) {
    auto& batches = prometheus::BuildCounter()
                        .Name("kserve_agent_batcher_batches_total")
                        .Help("Merged calls the batcher sent to the model server")
                        .Register(registry);
    batchesV1 = &batches.Add({{"protocol", "v1"}});
    batchesV2 = &batches.Add({{"protocol", "v2"}});
    batchSize = &prometheus::BuildHistogram()
                     .Name("kserve_agent_batcher_batch_size")
                     .Help("Instances (v1) or rows (v2) per merged call")
                     .Register(registry)
                     .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128,
                                                                      256, 512, 1024});
    auto& flushes = prometheus::BuildCounter()
                        .Name("kserve_agent_batcher_flushes_total")
                        .Help("Batches flushed, by reason: size, latency or drain")
                        .Register(registry);
    flushSize = &flushes.Add({{"reason", "size"}});
    flushLatency = &flushes.Add({{"reason", "latency"}});
    flushDrain = &flushes.Add({{"reason", "drain"}});
  }

  void record(Protocol protocol, FlushReason reason, size_t size) {
    (protocol == Protocol::V1 ? batchesV1 : batchesV2)->Increment();
    batchSize->Observe(static_cast<double>(size));
    switch (reason) {
      case FlushReason::Size:
        flushSize->Increment();
        break;
      case FlushReason::Latency:
        flushLatency->Increment();
        break;
      case FlushReason::Drain:
        flushDrain->Increment();
        break;
    }
  }

  prometheus::Counter* batchesV1;
  prometheus::Counter* batchesV2;
  prometheus::Histogram* batchSize;
  prometheus::Counter* flushSize;
  prometheus::Counter* flushLatency;
  prometheus::Counter* flushDrain;
};

// The batcher's state. Upstream callbacks hold it weakly, so a late answer after the module is
// gone only answers its own callers.
class Engine : public std::enable_shared_from_this<Engine> {
 public:
  Engine(const core::FilterContext& context, const Options& options)
      : context_(context),
        options_(options),
        maxBatchSize_(options.maxBatchSize > 0 ? static_cast<size_t>(options.maxBatchSize)
                                               : kDefaultMaxBatchSize),
        maxLatency_(options.maxLatencyMs > 0 ? options.maxLatencyMs : kDefaultMaxLatencyMs),
        random_(std::random_device{}()) {
    if (options.metrics != nullptr) metrics_.emplace(*options.metrics);
  }

  core::Action onRequestHeaders(const core::ExchangePtr& exchange) {
    const core::RequestHead& request = exchange->request();
    const auto protocol = protocolFor(request.path());
    const auto length = declaredLength(request);
    const bool tooLarge = length && *length > options_.maxBodyBytes;
    if (protocol == Protocol::V1) {
      if (!tooLarge) return core::Action::Buffer;
      exchange->replyError(413, bodyTooLarge());
      return core::Action::Handled;
    }
    // v2 requests the batcher cannot hold pass through untouched (and stream), also when a
    // chunked body turns out larger than it may hold.
    if (request.method == "POST" && protocol == Protocol::V2 && !tooLarge &&
        core::findHeader(request.headers, "Inference-Header-Content-Length") == nullptr) {
      return core::Action::BufferOrContinue;
    }
    return core::Action::Continue;
  }

  core::Action onRequestBody(const core::ExchangePtr& exchange, const std::string& body) {
    // Queues and the merged call use the path as the client sent it: the model server gets the
    // target spelled as its callers spelled it.
    const std::string_view path = exchange->request().path();
    Caller caller;
    caller.exchange = exchange;
    if (protocolFor(path) == Protocol::V1) {
      if (body.size() > options_.maxBodyBytes) {
        exchange->replyError(413, bodyTooLarge());
        return core::Action::Handled;
      }
      v1::RequestParse parsed = v1::parseRequest(body);
      if (!parsed.error.empty()) {
        exchange->replyError(400, parsed.error);
        return core::Action::Handled;
      }
      caller.count = parsed.request.count;
      caller.v1 = std::move(parsed.request);
      enqueue(Protocol::V1, "v1 " + std::string(path), std::move(caller));
      return core::Action::Handled;
    }
    if (body.size() > options_.maxBodyBytes) return core::Action::Continue;
    auto parsed = v2::parseRequest(body);
    if (!parsed) return core::Action::Continue;
    caller.count = parsed->rows;
    std::string key = "v2 " + std::string(path) + '\n' + parsed->signature;
    caller.v2 = std::move(*parsed);
    enqueue(Protocol::V2, std::move(key), std::move(caller));
    return core::Action::Handled;
  }

  void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done) {
    draining_ = true;
    drainDone_ = std::move(done);
    std::vector<std::string> keys;
    for (const auto& [key, batch] : pending_)
      keys.push_back(key);
    for (const auto& key : keys)
      flush(key, FlushReason::Drain);
    if (inFlight_.empty()) {
      finishDrain();
      return;
    }
    drainTimer_ = std::make_unique<Timer>(context_.loop, [this] { abandonInFlight(); });
    drainTimer_->start(std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()));
  }

 private:
  // Worded as the core's own buffering limit, which applies the same bound.
  std::string bodyTooLarge() const {
    return "request body larger than " + std::to_string(options_.maxBodyBytes) + " bytes";
  }

  void enqueue(Protocol protocol, std::string key, Caller caller) {
    auto& batch = pending_[key];
    if (!batch) {
      batch = std::make_shared<Batch>();
      batch->protocol = protocol;
      batch->target = std::string(caller.exchange->request().path());
      if (!draining_) {
        batch->timer = std::make_unique<Timer>(context_.loop,
                                               [this, key] { flush(key, FlushReason::Latency); });
        batch->timer->start(std::chrono::milliseconds(maxLatency_));
      }
    }
    if (batch->contentType.empty()) {
      const std::string* type =
          core::findHeader(caller.exchange->request().headers, "Content-Type");
      if (type != nullptr) batch->contentType = *type;
    }
    batch->count += caller.count;
    batch->callers.push_back(std::move(caller));
    if (draining_) {
      flush(key, FlushReason::Drain);
    } else if (batch->count >= maxBatchSize_) {
      flush(key, FlushReason::Size);
    }
  }

  void flush(const std::string& key, FlushReason reason) {
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    std::shared_ptr<Batch> batch = std::move(it->second);
    pending_.erase(it);
    batch->timer.reset();
    // Callers that went away while the batch waited are not sent to the model.
    std::erase_if(batch->callers, [](const Caller& caller) { return caller.exchange->finished(); });
    batch->count = 0;
    for (const auto& caller : batch->callers)
      batch->count += caller.count;
    if (batch->callers.empty()) return;
    if (metrics_) metrics_->record(batch->protocol, reason, batch->count);

    core::UpstreamRequest request;
    request.target = batch->target;
    request.timeout = options_.timeout;
    if (!batch->contentType.empty())
      request.headers.push_back({"Content-Type", batch->contentType});
    if (batch->protocol == Protocol::V1) {
      batch->batchId = v1::newBatchId(random_);
      std::vector<std::string_view> parts;
      for (const auto& caller : batch->callers)
        parts.push_back(caller.v1.instances);
      request.body = v1::buildBatchBody(parts);
    } else {
      std::vector<const v2::Request*> requests;
      for (const auto& caller : batch->callers)
        requests.push_back(&caller.v2);
      request.body = v2::mergeRequests(requests);
    }
    spdlog::debug("batcher: {} callers, {} instances to {}", batch->callers.size(), batch->count,
                  batch->target);

    const uint64_t id = nextFlight_++;
    inFlight_.emplace(id, batch);
    std::weak_ptr<Engine> weak = weak_from_this();
    context_.upstream->send(std::move(request), [weak, id, batch](core::UpstreamResult result) {
      answer(*batch, result);
      if (auto engine = weak.lock()) engine->landed(id);
    });
  }

  void landed(uint64_t id) {
    inFlight_.erase(id);
    if (draining_ && inFlight_.empty() && drainDone_) finishDrain();
  }

  // The drain deadline passed with merged calls still out: their callers are answered now.
  void abandonInFlight() {
    auto batches = std::move(inFlight_);
    inFlight_.clear();
    core::UpstreamResult result;
    result.error = std::string(kShutDown);
    for (auto& [id, batch] : batches)
      answer(*batch, result);
    finishDrain();
  }

  void finishDrain() {
    drainTimer_.reset();
    auto done = std::move(drainDone_);
    drainDone_ = nullptr;
    if (done) done();
  }

  core::FilterContext context_;
  Options options_;
  size_t maxBatchSize_;
  int maxLatency_;
  std::mt19937_64 random_;
  std::optional<Metrics> metrics_;
  std::unordered_map<std::string, std::shared_ptr<Batch>> pending_;
  std::unordered_map<uint64_t, std::shared_ptr<Batch>> inFlight_;
  uint64_t nextFlight_ = 0;
  bool draining_ = false;
  std::function<void()> drainDone_;
  std::unique_ptr<Timer> drainTimer_;
};

class BatcherModule final : public core::Filter {
 public:
  BatcherModule(const core::FilterContext& context, const Options& options)
      : engine_(std::make_shared<Engine>(context, options)) {}

  core::Action onRequestHeaders(const core::ExchangePtr& exchange) override {
    return engine_->onRequestHeaders(exchange);
  }
  core::Action onRequestBody(const core::ExchangePtr& exchange, std::string& body) override {
    return engine_->onRequestBody(exchange, body);
  }
  void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done) override {
    engine_->drain(deadline, std::move(done));
  }

 private:
  std::shared_ptr<Engine> engine_;
};

}  // namespace

std::unique_ptr<core::Filter> makeBatcher(const core::FilterContext& context,
                                          const Options& options) {
  return std::make_unique<BatcherModule>(context, options);
}

}  // namespace batcher
