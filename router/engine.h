// Running an inference graph for one request: node executors (Sequence, Switch, Splitter,
// Ensemble) over core::Client, with upstream's rules for inputs, conditions, dependencies and
// statuses (upstream-router.md §4), every step call bounded and cancellable.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/client/client.h"
#include "router/graph.h"
#include "router/metrics.h"
#include "router/propagation.h"

namespace router {

// What a node or a step gives back.
struct Outcome {
  std::string body;
  int status = 0;
  // Set when the node failed: `status` is then the answer's status (500, or the real one: 404
  // for a Switch with no match, 502 for an unreachable step, 504 for a step past its timeout).
  std::string error;
  // The body went to the run's AnswerStream as it arrived (`body` is empty): the client has
  // the status and head already, and on failure can only see the answer cut.
  bool streamed = false;
  bool failed() const { return !error.empty(); }
};

// Where a step's answer goes when it is the graph's answer unchanged and streams to the client
// (Engine::run). Only a step that names its Content-Type streams; others are buffered.
class AnswerStream {
 public:
  virtual ~AnswerStream() = default;
  // The step's answer head: its status and headers.
  virtual void head(int status, const core::Headers& headers) = 0;
  // Body bytes; false when the client's queue is full: GraphRun::resume() once it drained.
  virtual bool body(std::string_view data) = 0;
};

struct EngineOptions {
  // routerTimeouts.serviceClient: one step call, connecting included; 0: none.
  std::chrono::milliseconds stepTimeout{0};
  // A step answer longer than this fails its step (502).
  size_t maxStepResponseBytes = size_t{64} << 20;
  // Where the Istio sidecar's admin port answers when the pod is in a mesh (https steps then go
  // as http, as upstream does).
  std::string istioProbeUrl = "http://localhost:15000";
  std::string userAgent = "kserve-router";
  // W3C trace context and X-Request-Id reach every step call (--trace-context).
  bool traceContext = true;
};

class GraphRun;

// The graph and what every run of it shares on one loop: the step targets parsed once, the
// header patterns, the client and what the Istio probe found.
class Engine {
 public:
  // `metrics`: where calls and answers are counted (nullptr: nowhere); must outlive the engine.
  Engine(uv_loop_t* loop, Graph graph, HeaderPropagation propagation, EngineOptions options,
         core::Client& client, RouterMetrics* metrics = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  using Done = std::function<void(Outcome)>;
  // Runs the graph from its root on `input`, with the headers `incoming` (the client's) as the
  // source of propagated headers. `done` runs once, never from inside run(), unless the run is
  // destroyed first (which cancels every call it has out). With `stream`, the answer of a step
  // that is the graph's answer unchanged (a Switch's or Splitter's chosen step, a Sequence's
  // last) streams there (the outcome then says `streamed`); `stream` must outlive the run.
  std::unique_ptr<GraphRun> run(const core::Headers& incoming, std::string input, Done done,
                                AnswerStream* stream = nullptr);

  const Graph& graph() const { return graph_; }

 private:
  friend class GraphRun;
  struct Target;
  enum class Mesh { Unknown, Probing, Inside, Outside };

  // Calls `then` once it is known whether https steps go as http (Istio), probing once.
  void whenMeshKnown(std::function<void()> then, const std::shared_ptr<bool>& alive);

  uv_loop_t* loop_;
  Graph graph_;
  HeaderPropagation propagation_;
  EngineOptions options_;
  core::Client& client_;
  // Per node and step, the parsed serviceUrl.
  std::map<std::string, std::vector<std::unique_ptr<Target>>> targets_;
  // Per node, its answers' counters (empty without metrics).
  std::map<std::string, NodeMetrics*> nodeMetrics_;
  Mesh mesh_ = Mesh::Unknown;
  std::vector<std::pair<std::weak_ptr<bool>, std::function<void()>>> meshWaiters_;
  std::mt19937_64 random_;
};

// One request through the graph. Destroying it cancels whatever it still has out.
class GraphRun {
 public:
  ~GraphRun();
  // Cancels every call the run has out; its `done` will not run. Safe from inside `done`.
  void cancel();
  // Reading the streaming step's answer goes on (after AnswerStream::body returned false).
  void resume();
  GraphRun(const GraphRun&) = delete;
  GraphRun& operator=(const GraphRun&) = delete;

 private:
  friend class Engine;
  struct Scope;
  using ScopePtr = std::shared_ptr<Scope>;
  using Next = std::function<void(Outcome)>;

  GraphRun(Engine& engine, core::Headers propagated, std::optional<TraceParent> trace,
           Engine::Done done, AnswerStream* stream);
  void start(std::string input);

  // `tail`: what the node or step answers is the graph's answer unchanged (it may stream).
  void runNode(const ScopePtr& scope, const std::string& name, std::string input, bool tail,
               Next next);
  void runStep(const ScopePtr& scope, const std::string& node, size_t index, std::string input,
               bool tail, Next next);
  void callService(const ScopePtr& scope, const std::string& node, size_t index, std::string input,
                   bool tail, Next next);
  // One service step's call, made again while its retry allows.
  struct StepCall {
    std::string node;
    size_t index;
    core::Origin origin;
    std::string input;  // copied into each attempt but the last
    bool tail;
    int64_t retries = 0;  // made so far
    Next next;
  };
  void attempt(const ScopePtr& scope, const std::shared_ptr<StepCall>& call);
  void sequence(const ScopePtr& scope, const std::string& name, std::string input, bool tail,
                Next next);
  // Each step's output by key, for a Sequence with intermediateOutputs.
  using Outputs = std::shared_ptr<std::vector<std::pair<std::string, std::string>>>;
  void sequenceStep(const ScopePtr& scope, const std::string& name, size_t index,
                    std::shared_ptr<const std::string> input, Outcome previous, bool tail,
                    Outputs outputs, Next next);
  void switchNode(const ScopePtr& scope, const std::string& name, std::string input, bool tail,
                  Next next);
  void splitter(const ScopePtr& scope, const std::string& name, std::string input, bool tail,
                Next next);
  void ensemble(const ScopePtr& scope, const std::string& name, std::string input, Next next);
  // Runs `then` on the next loop turn unless the scope is cancelled by then (for answers found
  // without a call, so that no callback runs inside the one that started the node).
  void later(const ScopePtr& scope, std::function<void()> then);

  Engine& engine_;
  core::Headers propagated_;
  std::optional<TraceParent> trace_;  // the client's traceparent, when valid
  Engine::Done done_;
  AnswerStream* stream_;
  core::UpstreamCall* streaming_ = nullptr;  // the call whose answer streams to the client
  ScopePtr root_;
  std::shared_ptr<bool> alive_;
  uint64_t nextCall_ = 1;
  bool starting_ = false;  // inside start(): an answer then waits for the next loop turn
};

// "step 2 (\"model2\") of node \"root\"", for messages.
std::string describeStep(const std::string& node, size_t index, const Step& step);

}  // namespace router
