// The router's Prometheus metrics (ours; upstream has none, #2703), kept on the router's one
// loop as plain numbers and written as the text exposition format 0.0.4 at each scrape, so the
// router maps no metrics library and a request pays a few increments.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/chain/terminal.h"

namespace router {

// A latency histogram over fixed buckets (seconds).
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10,   60};
  void observe(std::chrono::steady_clock::duration elapsed);
  // The _bucket, _sum and _count lines of `name` with `labels` ("" or `a="b",` style, ending
  // in a comma).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<uint64_t, kBounds.size()> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The figures of one service step (by node and step).
struct StepMetrics {
  std::string labels;             // node="...",step="...",
  std::map<int, uint64_t> calls;  // by status; 502 and 504 for calls that got no answer
  Histogram latency;
  uint64_t retries = 0;
  uint64_t cancellations = 0;
  int64_t inFlight = 0;
};

// The figures of one node: its answers by status.
struct NodeMetrics {
  std::string labels;  // node="...",
  std::map<int, uint64_t> answers;
};

class RouterMetrics {
 public:
  // Creates the slots of `node` and its step `step` ("" for the node alone); the pointers stay
  // valid as long as the metrics.
  NodeMetrics* node(const std::string& node);
  StepMetrics* step(const std::string& node, const std::string& step);

  // A request the graph answered (or the client left: 499), from the end of its body.
  void request(int status, std::chrono::steady_clock::duration elapsed);
  void requestStarted() { ++requestsInFlight_; }
  void requestEnded() { --requestsInFlight_; }

  std::string render() const;

 private:
  std::map<int, uint64_t> requests_;
  Histogram requestLatency_;
  int64_t requestsInFlight_ = 0;
  std::vector<std::unique_ptr<NodeMetrics>> nodes_;
  std::vector<std::unique_ptr<StepMetrics>> steps_;
};

// What the metrics listener answers: the exposition at /metrics, 404 elsewhere.
class MetricsTerminal final : public core::Terminal {
 public:
  explicit MetricsTerminal(const RouterMetrics& metrics) : metrics_(metrics) {}
  core::TerminalStreamPtr start(core::Downstream& exchange) override;

 private:
  const RouterMetrics& metrics_;
};

}  // namespace router
