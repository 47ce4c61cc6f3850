// The router's HTTP side on core's server: /readyz at the head of the chain, and the graph as the
// terminal (every other path and method runs the graph on the request body).
#pragma once

#include <chrono>

#include "core/chain/filter.h"
#include "core/chain/terminal.h"
#include "router/engine.h"

namespace router {

// /readyz (exact path, any method): 200 while serving, 503 "shutting down" once draining.
class ReadyzFilter final : public core::Filter {
 public:
  core::Action onRequestHeaders(const core::ExchangePtr& exchange) override;
  void setDraining() { draining_ = true; }

 private:
  bool draining_ = false;
};

class GraphTerminal final : public core::Terminal {
 public:
  // `deadline`: routerTimeouts.serverWrite, the whole graph's budget once the request is read
  // (0: none); past it the client gets 504 and the calls still out are cancelled.
  // `stream`: a step whose answer is the graph's answer unchanged streams it (--stream-responses).
  // `metrics`: where requests are counted (nullptr: nowhere).
  GraphTerminal(uv_loop_t* loop, Engine& engine, std::chrono::milliseconds deadline, bool stream,
                RouterMetrics* metrics = nullptr)
      : loop_(loop), engine_(engine), deadline_(deadline), stream_(stream), metrics_(metrics) {}
  core::TerminalStreamPtr start(core::Downstream& exchange) override;

 private:
  uv_loop_t* loop_;
  Engine& engine_;
  std::chrono::milliseconds deadline_;
  bool stream_;
  RouterMetrics* metrics_;
};

// The answer for a graph's outcome: on success its body with application/json when the body is
// JSON (else the type Go would sniff), on failure upstream's {"error","cause"} body.
void replyWithOutcome(core::Exchange& exchange, Outcome outcome);

}  // namespace router
