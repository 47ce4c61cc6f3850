// Prometheus metrics (prometheus-cpp core) served from the agent's own loop on
// --metrics-port: requests by code, latency, connections, and what the modules register.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/chain/terminal.h"
#include "core/client/pool.h"
#include "core/server/server.h"

namespace agent {

class ProxyMetrics {
 public:
  explicit ProxyMetrics(prometheus::Registry& registry);

  // One finished exchange (status 499: the client went away first). Any loop's thread.
  void observe(int status, std::chrono::steady_clock::duration elapsed);
  // Sets the connection gauges to the sums over every loop (at scrape time).
  struct LoopFigures {
    const core::ServerStats* stats;
    const core::UpstreamPool* pool;
  };
  void sample(const std::vector<LoopFigures>& loops);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  std::array<std::atomic<prometheus::Counter*>, 600> byStatus_{};
  prometheus::Histogram& latency_;
  prometheus::Gauge& clientConnections_;
  prometheus::Gauge& inFlight_;
  prometheus::Gauge& upstreamOpen_;
  prometheus::Gauge& upstreamIdle_;
  prometheus::Counter& upstreamOpened_;
};

// The text exposition of everything in the registry.
std::string renderMetrics(prometheus::Registry& registry);

// What the metrics listener answers: the text exposition at /metrics (made by `render` at each
// scrape), 404 elsewhere.
class MetricsTerminal final : public core::Terminal {
 public:
  explicit MetricsTerminal(std::function<std::string()> render) : render_(std::move(render)) {}
  core::TerminalStreamPtr start(core::Downstream& exchange) override;

 private:
  std::function<std::string()> render_;
};

}  // namespace agent
