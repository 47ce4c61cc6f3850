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
#include <random>
#include <string>
#include <vector>

#include "core/client/client.h"
#include "router/graph.h"
#include "router/propagation.h"

namespace router {

// What a node or a step gives back.
struct Outcome {
  std::string body;
  int status = 0;
  // Set when the node failed: `status` is then the answer's status (500, or the real one: 404
  // for a Switch with no match, 502 for an unreachable step, 504 for a step past its timeout).
  std::string error;
  bool failed() const { return !error.empty(); }
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
};

class GraphRun;

// The graph and what every run of it shares on one loop: the step targets parsed once, the
// header patterns, the client and what the Istio probe found.
class Engine {
 public:
  Engine(uv_loop_t* loop, Graph graph, HeaderPropagation propagation, EngineOptions options,
         core::Client& client);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  using Done = std::function<void(Outcome)>;
  // Runs the graph from its root on `input`, with the headers `incoming` (the client's) as the
  // source of propagated headers. `done` runs once, never from inside run(), unless the run is
  // destroyed first (which cancels every call it has out).
  std::unique_ptr<GraphRun> run(const core::Headers& incoming, std::string input, Done done);

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
  GraphRun(const GraphRun&) = delete;
  GraphRun& operator=(const GraphRun&) = delete;

 private:
  friend class Engine;
  struct Scope;
  using ScopePtr = std::shared_ptr<Scope>;
  using Next = std::function<void(Outcome)>;

  GraphRun(Engine& engine, core::Headers propagated, Engine::Done done);
  void start(std::string input);

  void runNode(const ScopePtr& scope, const std::string& name, std::string input, Next next);
  void runStep(const ScopePtr& scope, const std::string& node, size_t index, std::string input,
               Next next);
  void callService(const ScopePtr& scope, const std::string& node, size_t index, std::string input,
                   Next next);
  void sequence(const ScopePtr& scope, const std::string& name, std::string input, Next next);
  void sequenceStep(const ScopePtr& scope, const std::string& name, size_t index,
                    std::shared_ptr<const std::string> input, Outcome previous, Next next);
  void switchNode(const ScopePtr& scope, const std::string& name, std::string input, Next next);
  void splitter(const ScopePtr& scope, const std::string& name, std::string input, Next next);
  void ensemble(const ScopePtr& scope, const std::string& name, std::string input, Next next);
  // Runs `then` on the next loop turn unless the scope is cancelled by then (for answers found
  // without a call, so that no callback runs inside the one that started the node).
  void later(const ScopePtr& scope, std::function<void()> then);

  Engine& engine_;
  core::Headers propagated_;
  Engine::Done done_;
  ScopePtr root_;
  std::shared_ptr<bool> alive_;
  uint64_t nextCall_ = 1;
  bool starting_ = false;  // inside start(): an answer then waits for the next loop turn
};

// "step 2 (\"model2\") of node \"root\"", for messages.
std::string describeStep(const std::string& node, size_t index, const Step& step);

}  // namespace router
