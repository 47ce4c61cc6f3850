// Prometheus metrics (prometheus-cpp core) served from the agent's own loop on
// --metrics-port: requests by code, latency, connections, and what the modules register.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "agent/server.h"

namespace agent {

class ProxyMetrics {
 public:
  explicit ProxyMetrics(prometheus::Registry& registry);

  // One finished exchange (status 499: the client went away first).
  void observe(int status, std::chrono::steady_clock::duration elapsed);
  // Copies the current connection figures into their gauges (at scrape time).
  void sample(const ServerStats& stats, const UpstreamPool& pool);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  std::array<prometheus::Counter*, 600> byStatus_{};
  prometheus::Histogram& latency_;
  prometheus::Gauge& clientConnections_;
  prometheus::Gauge& inFlight_;
  prometheus::Gauge& upstreamOpen_;
  prometheus::Gauge& upstreamIdle_;
  prometheus::Gauge& upstreamCreated_;
};

// The text exposition of everything in the registry.
std::string renderMetrics(prometheus::Registry& registry);

}  // namespace agent
