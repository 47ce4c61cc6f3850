#include "router/server.h"

#include <spdlog/spdlog.h>

#include "core/util/recycle.h"
#include "core/uv/timer.h"
#include "router/gjson.h"
#include "router/json_text.h"
#include "router/sniff.h"

namespace router {

namespace {

// The step headers a streamed answer keeps: its type, the v2 binary extension's JSON length,
// and caching advice (SSE servers send no-cache). Framing is the exchange's; a Content-Length
// is kept so that the client sees the same framing.
constexpr std::string_view kStreamedHeaders[] = {
    "Content-Type", "Content-Length", "Inference-Header-Content-Length", "Cache-Control"};

// One request at the graph: the body is read whole, then the graph runs on it.
class GraphStream final : public core::TerminalStream, private AnswerStream {
 public:
  GraphStream(uv_loop_t* loop, Engine& engine, core::Downstream& exchange,
              std::chrono::milliseconds deadline, bool stream, RouterMetrics* metrics)
      : engine_(engine),
        exchange_(exchange),
        deadline_(deadline),
        timer_(loop),
        metrics_(metrics),
        // A HEAD answer has no body to stream.
        stream_(stream && exchange.request().method != "HEAD") {}

  void onRequestBody(const char* data, size_t length) override { body_.append(data, length); }

  ~GraphStream() override { counted(499); }

  void onRequestEnd() override {
    if (cancelled_ || run_) return;
    if (metrics_ != nullptr) {
      metrics_->requestStarted();
      started_ = std::chrono::steady_clock::now();
    }
    if (deadline_.count() > 0) {
      timer_.start(deadline_, [this] {
        run_->cancel();
        spdlog::warn("router: the graph did not answer within {} ms", deadline_.count());
        counted(504);
        if (exchange_.responseStarted()) {
          exchange_.abortResponse();
          return;
        }
        Outcome late;
        late.status = 504;
        late.error = "the graph did not answer within the server's write timeout (" +
                     std::to_string(deadline_.count() / 1000) + "s)";
        replyWithOutcome(exchange_, std::move(late));
      });
    }
    run_ = engine_.run(
        exchange_.request().headers, std::move(body_),
        [this](Outcome outcome) {
          timer_.stop();
          counted(outcome.status);
          if (!outcome.streamed) {
            replyWithOutcome(exchange_, std::move(outcome));
          } else if (outcome.failed()) {
            // The status is out already: the client can only see the answer cut short.
            spdlog::warn("router: {} {}: {} (after the answer started)", exchange_.request().method,
                         exchange_.request().target, outcome.error);
            exchange_.abortResponse();
          } else {
            exchange_.endResponse({});
          }
        },
        stream_ ? this : nullptr);
  }

  void onDownstreamDrained() override {
    if (run_) run_->resume();
  }

  // The client left or the exchange was answered: the run stops; its object stays until the
  // stream goes, since this may run inside the run's own callback.
  void cancel() override {
    cancelled_ = true;
    timer_.stop();
    if (run_) run_->cancel();
    counted(499);
  }

 private:
  // Counts the request once, when the graph ran: its status (499: the client left first).
  void counted(int status) {
    if (metrics_ == nullptr || !run_ || counted_) return;
    counted_ = true;
    metrics_->requestEnded();
    metrics_->request(status, std::chrono::steady_clock::now() - started_);
  }

  // AnswerStream
  void head(int status, const core::Headers& headers) override {
    core::ResponseHead head;
    head.status = status;
    for (std::string_view name : kStreamedHeaders) {
      if (const std::string* value = core::findHeader(headers, name)) {
        head.headers.push_back({std::string(name), *value});
      }
    }
    exchange_.sendResponseHead(head, "", false);
  }
  bool body(std::string_view data) override {
    return exchange_.sendResponseBody(data.data(), data.size());
  }

  Engine& engine_;
  core::Downstream& exchange_;
  std::chrono::milliseconds deadline_;
  core::Timer timer_;
  std::string body_;
  RouterMetrics* metrics_;
  std::chrono::steady_clock::time_point started_;
  bool counted_ = false;
  std::unique_ptr<GraphRun> run_;
  bool cancelled_ = false;
  bool stream_;
};

}  // namespace

core::Action ReadyzFilter::onRequestHeaders(const core::ExchangePtr& exchange) {
  if (exchange->request().path() != "/readyz") return core::Action::Continue;
  if (draining_) {
    exchange->replyError(503, "shutting down");
  } else {
    exchange->replyWith(200, "", "");
  }
  return core::Action::Handled;
}

core::TerminalStreamPtr GraphTerminal::start(core::Downstream& exchange) {
  return std::make_unique<GraphStream>(loop_, engine_, exchange, deadline_, stream_, metrics_);
}

void replyWithOutcome(core::Exchange& exchange, Outcome outcome) {
  if (outcome.failed()) {
    spdlog::warn("router: {} {}: {} ({})", exchange.request().method, exchange.request().target,
                 outcome.error, outcome.status);
    exchange.replyWith(outcome.status, "application/json", errorBody(outcome.error));
    return;
  }
  std::string_view type;
  if (gjson::validBytes(outcome.body)) {
    type = "application/json";
  } else if (!outcome.body.empty()) {
    type = detectContentType(outcome.body);
  }
  exchange.replyWith(outcome.status, type, std::move(outcome.body));
}

}  // namespace router
