// kserve-router's command line: upstream's one flag (--graph-json) and ours, each with a safe
// default, parsed and checked before anything starts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace router {

struct RouterConfig {
  std::string graphJson;  // --graph-json, required
  uint16_t port = 8080;
  // After SIGTERM: /readyz fails while requests are still served for drainPeriod (upstream's
  // fixed 30 s); then the listener closes and in-flight requests get up to drainTimeout.
  std::chrono::milliseconds drainPeriod{std::chrono::seconds(30)};
  std::chrono::milliseconds drainTimeout{std::chrono::seconds(30)};
  size_t maxRequestBodyBytes = size_t{64} << 20;
  size_t maxStepResponseBytes = size_t{64} << 20;
  size_t maxConnections = 10000;
  size_t maxStepConnections = 1000;  // per step service
  std::chrono::milliseconds stepConnectTimeout{std::chrono::seconds(10)};
  std::string istioProbeUrl = "http://localhost:15000";
  // PEM certificates trusted for https steps besides the system's ("": the system's only).
  std::string caFile;
  std::string logLevel = "info";
  // --stream-responses: a step whose answer is the graph's answer unchanged streams it.
  bool streamResponses = false;
  // --metrics-port: Prometheus metrics at /metrics on this port; 0: none.
  uint16_t metricsPort = 0;
  // --trace-context: traceparent (a fresh parent id per call), tracestate and X-Request-Id
  // reach every step call.
  bool traceContext = true;
};

// A config to run with, or an exit code and text to print (help and version on stdout with 0;
// errors, one line naming the flag and the value as typed, on stderr with 2).
struct RouterParseResult {
  std::optional<RouterConfig> config;
  int exitCode = 0;
  std::string message;
};

RouterParseResult parseRouterConfig(int argc, const char* const* argv);

}  // namespace router
