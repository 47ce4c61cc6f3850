// The InferenceGraph the router serves: the InferenceGraphSpec JSON that KServe's controller
// passes as --graph-json, decoded as Go's encoding/json decodes it into the v1alpha1 types, then
// checked before the router starts (upstream starts anyway and then crashes or fails requests).
//
// Decoding follows encoding/json:
// - Unknown keys are ignored, at every level (resources, affinity, minReplicas, ... are not
//   read; the controller writes them from typed values).
// - Keys match field names exactly, else without regard to case as Go folds case (ASCII letters,
//   and "ſ" (U+017F) as "s", the only non-ASCII letter Go folds onto a letter of these names).
//   So `"StepName"` and `"stepName"` are unknown: the step's name is `name` (InferenceStep's Go
//   field StepName carries the tag json:"name"). The example
//   {"nodes":{"root":{"routerType":"Sequence","steps":[{"stepName":"model1","serviceUrl":
//   "http://localhost:8080/v1/models/model1:predict"}]}}}
//   therefore decodes to one unnamed step (stepName ignored), as it does upstream; it is valid.
// - A repeated key is decoded again into the same field: the last string, number or boolean
//   wins; a repeated routerTimeouts object is merged into the one already there; a repeated
//   steps array is decoded over the steps already there (each step's fields merged) and cut to
//   its own length; a repeated node name replaces the node.
// - null leaves strings and booleans as they were and clears steps, nodes, weight,
//   routerTimeouts and its fields.
// - A value of the wrong type (a weight given as a string, a number that is not an int64, ...)
//   is an error naming the field; as in Go, a syntax error anywhere is reported first.
// - Strings are decoded as Go decodes them: invalid UTF-8 and lone surrogate escapes become
//   U+FFFD.
//
// Checks (each failure is one line naming the node and the step, index and name):
// a node named "root"; routerType one of Sequence, Splitter, Ensemble, Switch; each step with
// exactly one target: nodeName, or serviceUrl (serviceName alone is refused, since the router
// calls serviceUrl, which the controller fills in for serviceName steps); nodeName naming a node
// of the graph; no cycle through nodeName; serviceUrl an absolute http or https URL with a host;
// dependency empty, Soft or Hard; step names unique within a node (empty names aside); in a
// Splitter, every step weighted, no weight negative, weights summing to 100. Conditions are not
// checked: gjson accepts any path. Nodes without steps are allowed (the router answers an error
// for them) and reported as warnings, with other things upstream ignores or fails on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace router {

enum class RouterType { Sequence, Splitter, Ensemble, Switch };

// A step's dependency: Soft when absent or empty.
enum class Dependency { Soft, Hard };

// Retrying a step's call (ours; the shape of upstream PR 5386's proposal): `retry` on a step,
// `defaultRetry` on the spec for every service step without one. Absent fields are nullopt;
// parseGraph checks them and fills in the defaults.
struct Retry {
  std::optional<std::int64_t> maxRetries;      // 0..10; 0 (the default): no retry
  std::optional<std::int64_t> initialDelayMs;  // the first wait, before jitter; default 100
  std::optional<std::int64_t> maxDelayMs;      // the cap of the doubling waits; default 5000
  // Also retry answers 429 and 5xx (the call went through, so the service saw the request);
  // without it only calls that got no answer (connection failures) are retried.
  bool retryOnStatus = false;
};

inline constexpr std::int64_t kMaxRetries = 10;

// One InferenceStep.
struct Step {
  std::string name;
  std::string nodeName;
  std::string serviceName;
  std::string serviceUrl;
  std::string data;
  bool mapPredictionsToInstances = false;
  std::optional<std::int64_t> weight;
  std::string condition;
  // As decoded: "", "Soft" or "Hard" once the graph is valid.
  std::string dependency;
  Dependency dependencyType = Dependency::Soft;
  // Ours: retries of this step's call (a step with a nodeName is not retried as a whole).
  std::optional<Retry> retry;
  // Ours, with data "$response": an Open Inference Protocol answer of the previous step goes
  // on as a v2 request (its outputs become the inputs).
  bool v2Chaining = false;
};

// One InferenceRouter (a node of the graph).
struct Node {
  // As decoded (case-sensitive); `type` holds its meaning once the graph is valid.
  std::string routerType;
  RouterType type = RouterType::Sequence;
  std::vector<Step> steps;
  // Ours, for a Sequence: the answer holds every step's output under its name.
  bool intermediateOutputs = false;
};

// spec.routerTimeouts, seconds; absent fields are nullopt.
struct RouterTimeouts {
  std::optional<std::int64_t> serverRead;
  std::optional<std::int64_t> serverWrite;
  std::optional<std::int64_t> serverIdle;
  std::optional<std::int64_t> serviceClient;
};

struct Graph {
  std::map<std::string, Node> nodes;
  std::optional<RouterTimeouts> routerTimeouts;
  // Ours: the retry of service steps that set none.
  std::optional<Retry> defaultRetry;
  // Ours: RE2 patterns of headers propagated to every step, besides PROPAGATE_HEADERS'.
  std::vector<std::string> propagateHeaders;
  // Things a valid graph has that upstream ignores or fails on at request time, one line each,
  // for the router to log.
  std::vector<std::string> warnings;
};

struct GraphResult {
  Graph graph;
  // Empty when the graph was decoded (and, for parseGraph, checked); otherwise one line per
  // problem, each starting with "graph: ".
  std::string error;

  bool ok() const { return error.empty(); }
};

// Decodes the JSON as Go's encoding/json decodes it into InferenceGraphSpec; no checks.
GraphResult decodeGraph(std::string_view json) noexcept;

// Decodes and checks the graph: what the router calls with --graph-json.
GraphResult parseGraph(std::string_view json) noexcept;

}  // namespace router
