#include "agent/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace agent {

using namespace core;

ProxyMetrics::ProxyMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("kserve_agent_requests_total")
                    .Help("Requests answered, by HTTP status (499: client went away)")
                    .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("kserve_agent_request_duration_seconds")
                   .Help("Time from request head to the end of the response")
                   .Register(registry)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005,
                                                                    0.01, 0.025, 0.05, 0.1, 0.25,
                                                                    0.5, 1, 2.5, 5, 10, 30, 60})),
      clientConnections_(prometheus::BuildGauge()
                             .Name("kserve_agent_client_connections")
                             .Help("Open client connections")
                             .Register(registry)
                             .Add({})),
      inFlight_(prometheus::BuildGauge()
                    .Name("kserve_agent_requests_in_flight")
                    .Help("Exchanges not yet finished")
                    .Register(registry)
                    .Add({})),
      upstreamOpen_(prometheus::BuildGauge()
                        .Name("kserve_agent_upstream_connections")
                        .Help("Open connections to the model server")
                        .Register(registry)
                        .Add({})),
      upstreamIdle_(prometheus::BuildGauge()
                        .Name("kserve_agent_upstream_idle_connections")
                        .Help("Idle pooled connections to the model server")
                        .Register(registry)
                        .Add({})),
      upstreamOpened_(prometheus::BuildCounter()
                          .Name("kserve_agent_upstream_connections_opened_total")
                          .Help("Connections opened to the model server since start")
                          .Register(registry)
                          .Add({})) {}

void ProxyMetrics::observe(int status, std::chrono::steady_clock::duration elapsed) {
  size_t index = status > 0 && status < 600 ? static_cast<size_t>(status) : 0;
  prometheus::Counter* counter = byStatus_[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Family::Add is thread-safe and returns the same counter for the same labels.
    counter = &requests_.Add({{"code", std::to_string(index)}});
    byStatus_[index].store(counter, std::memory_order_release);
  }
  counter->Increment();
  latency_.Observe(std::chrono::duration<double>(elapsed).count());
}

void ProxyMetrics::sample(const std::vector<LoopFigures>& loops) {
  double clients = 0, inFlight = 0, open = 0, idle = 0, opened = 0;
  for (const auto& loop : loops) {
    clients += static_cast<double>(loop.stats->connectionsOpen.load(std::memory_order_relaxed));
    inFlight += static_cast<double>(loop.stats->exchangesInFlight.load(std::memory_order_relaxed));
    open += static_cast<double>(loop.pool->openConnections());
    idle += static_cast<double>(loop.pool->idleConnections());
    opened += static_cast<double>(loop.pool->connectionsCreated());
  }
  clientConnections_.Set(clients);
  inFlight_.Set(inFlight);
  upstreamOpen_.Set(open);
  upstreamIdle_.Set(idle);
  // The pools count from their start; the counter takes what they opened since the last scrape.
  if (opened > upstreamOpened_.Value()) upstreamOpened_.Increment(opened - upstreamOpened_.Value());
}

std::string renderMetrics(prometheus::Registry& registry) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

TerminalStreamPtr MetricsTerminal::start(Downstream& exchange) {
  if (exchange.request().path() != "/metrics") {
    exchange.replyError(404, "not found: metrics are at /metrics");
  } else {
    exchange.replyWith(200, "text/plain; version=0.0.4; charset=utf-8", render_());
  }
  return nullptr;
}

}  // namespace agent
