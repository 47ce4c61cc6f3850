#include "router/server.h"

#include <spdlog/spdlog.h>

#include "core/util/recycle.h"
#include "core/uv/timer.h"
#include "router/gjson.h"
#include "router/json_text.h"
#include "router/sniff.h"

namespace router {

namespace {

// One request at the graph: the body is read whole, then the graph runs on it.
class GraphStream final : public core::TerminalStream {
 public:
  GraphStream(uv_loop_t* loop, Engine& engine, core::Downstream& exchange,
              std::chrono::milliseconds deadline)
      : engine_(engine), exchange_(exchange), deadline_(deadline), timer_(loop) {}

  void onRequestBody(const char* data, size_t length) override { body_.append(data, length); }

  void onRequestEnd() override {
    if (cancelled_ || run_) return;
    if (deadline_.count() > 0) {
      timer_.start(deadline_, [this] {
        run_->cancel();
        spdlog::warn("router: the graph did not answer within {} ms", deadline_.count());
        Outcome late;
        late.status = 504;
        late.error = "the graph did not answer within the server's write timeout (" +
                     std::to_string(deadline_.count() / 1000) + "s)";
        replyWithOutcome(exchange_, std::move(late));
      });
    }
    run_ = engine_.run(exchange_.request().headers, std::move(body_), [this](Outcome outcome) {
      timer_.stop();
      replyWithOutcome(exchange_, std::move(outcome));
    });
  }

  // The client left or the exchange was answered: the run stops; its object stays until the
  // stream goes, since this may run inside the run's own callback.
  void cancel() override {
    cancelled_ = true;
    timer_.stop();
    if (run_) run_->cancel();
  }

 private:
  Engine& engine_;
  core::Downstream& exchange_;
  std::chrono::milliseconds deadline_;
  core::Timer timer_;
  std::string body_;
  std::unique_ptr<GraphRun> run_;
  bool cancelled_ = false;
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
  return std::make_unique<GraphStream>(loop_, engine_, exchange, deadline_);
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
