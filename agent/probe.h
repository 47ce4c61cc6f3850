// Readiness and the Knative probe answers the agent gives in front of the model server
// (upstream-batcher-proxy.md §B.4, §B.4a, §B.5): kubelet and activator probes, network probes,
// and the drain state that fails them after SIGTERM.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/chain/filter.h"
#include "core/client/client.h"
#include "core/server/drain.h"
#include "core/uv/timer.h"

namespace agent {

// One probe of a SERVING_READINESS_PROBE value (a Kubernetes corev1.Probe).
struct ProbeSpec {
  enum class Kind { Tcp, Http, Grpc, Exec, None };
  Kind kind = Kind::Tcp;
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string path = "/";
  std::string scheme = "HTTP";
  std::vector<core::Header> headers;
  int timeoutSeconds = 0;
  int periodSeconds = 10;
  int successThreshold = 1;
};

// Parses SERVING_READINESS_PROBE. An absent variable probes TCP on the component port; an
// empty one is always ready; with multiContainer the value is a JSON array of probes.
struct ReadinessSpec {
  bool alwaysReady = false;
  std::vector<ProbeSpec> probes;
};
std::optional<ReadinessSpec> parseReadiness(const char* value, bool multiContainer,
                                            uint16_t componentPort, std::string& error);

// Runs the readiness probes on the loop. Concurrent checks join the one in flight.
class ReadinessProber {
 public:
  // HTTP probes go through `client` (which must outlive the prober).
  ReadinessProber(uv_loop_t* loop, core::Client& client, ReadinessSpec spec);
  ReadinessProber(const ReadinessProber&) = delete;
  ReadinessProber& operator=(const ReadinessProber&) = delete;

  void check(std::function<void(bool)> done);
  // An extra condition that must hold (e.g. the puller's initial models are in place).
  void setGate(std::function<bool()> gate) { gate_ = std::move(gate); }

 private:
  void runRound();
  void finishRound(bool ready);

  uv_loop_t* loop_;
  core::Client& client_;
  ReadinessSpec spec_;
  core::Timer retryTimer_;  // the next round of an aggressive (periodSeconds 0) probe
  std::function<bool()> gate_;
  std::vector<std::function<void(bool)>> waiters_;
  bool inFlight_ = false;
  int consecutiveSuccesses_ = 0;
  std::chrono::steady_clock::time_point aggressiveDeadline_;
};

// The filter at the head of the agent's chain: answers kubelet and Knative probes (which then
// reach no other filter), restarts the drain's quiet period on every other request, and applies
// Knative's Forwarded shim before the other filters see the request.
class ProbeFilter final : public core::Filter {
 public:
  ProbeFilter(ReadinessProber& prober, core::DrainSequence& drain)
      : prober_(prober), drain_(drain) {}
  core::Action onRequestHeaders(const core::ExchangePtr& exchange) override;
  // After the signal, probes fail (503 "shutting down") while requests are still served.
  void setDraining() { draining_ = true; }
  bool draining() const { return draining_; }

 private:
  // Answers the request when it is a probe; false when it is not one.
  bool answerProbe(const core::ExchangePtr& exchange);

  ReadinessProber& prober_;
  core::DrainSequence& drain_;
  bool draining_ = false;
};

}  // namespace agent
