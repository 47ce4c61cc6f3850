#include "router/engine.h"

#include <spdlog/spdlog.h>

#include <unordered_map>

#include "core/http/url.h"
#include "core/util/backoff.h"
#include "core/uv/timer.h"
#include "router/gjson.h"
#include "router/json_text.h"

namespace router {

namespace {

constexpr auto kMeshProbeTimeout = std::chrono::seconds(3);

bool success(int status) {
  return status >= 200 && status < 300;
}

// The answers `retryOnStatus` retries: the service is overloaded or failed on its side.
bool retryableStatus(int status) {
  return status == 429 || (status >= 500 && status <= 599);
}

// The wait before a retry, cancelled with its scope's calls.
class RetryWait final : public core::UpstreamCall {
 public:
  explicit RetryWait(uv_loop_t* loop) : timer_(loop) {}
  void start(std::chrono::milliseconds delay, std::function<void()> fire) {
    timer_.start(delay, [this, fire = std::move(fire)] {
      auto then = fire;
      delete this;
      then();
    });
  }
  void cancel() override { delete this; }

 private:
  ~RetryWait() = default;
  core::Timer timer_;
};

Outcome failure(int status, std::string cause) {
  Outcome outcome;
  outcome.status = status;
  outcome.error = std::move(cause);
  return outcome;
}

}  // namespace

std::string describeStep(const std::string& node, size_t index, const Step& step) {
  std::string text = "step " + std::to_string(index);
  if (!step.name.empty()) text += " (\"" + step.name + "\")";
  return text + " of node \"" + node + "\"";
}

// What a step's answer is keyed by (an Ensemble's merged answer, a Sequence's intermediate
// outputs) and its metrics label: its name, else its index in the node.
std::string stepKey(const Step& step, size_t index) {
  return step.name.empty() ? std::to_string(index) : step.name;
}

// A serviceUrl taken apart once: where the call goes, its target, and the Host header as the
// URL writes it (Go sends URL.Host).
struct Engine::Target {
  std::string url;
  core::Origin origin;
  std::string target;
  std::string host;
  // The step's retry, else the graph's default; nullptr when the call is not retried.
  const Retry* retry = nullptr;
  StepMetrics* metrics = nullptr;  // nullptr without metrics
};

Engine::Engine(uv_loop_t* loop, Graph graph, HeaderPropagation propagation, EngineOptions options,
               core::Client& client, RouterMetrics* metrics)
    : loop_(loop),
      graph_(std::move(graph)),
      propagation_(std::move(propagation)),
      options_(std::move(options)),
      client_(client),
      random_(std::random_device{}()) {
  for (const auto& [name, node] : graph_.nodes) {
    auto& targets = targets_[name];
    if (metrics != nullptr) nodeMetrics_[name] = metrics->node(name);
    for (const Step& step : node.steps) {
      auto target = std::make_unique<Target>();
      if (metrics != nullptr && step.nodeName.empty()) {
        target->metrics = metrics->step(name, stepKey(step, targets.size()));
      }
      if (step.nodeName.empty()) {
        // The graph was checked at start: every service step's URL splits.
        auto split = core::splitOriginUrl(step.serviceUrl);
        auto parts = core::splitHttpUrl(step.serviceUrl);
        if (split && parts) {
          target->url = step.serviceUrl;
          target->origin = split->origin;
          target->target = split->target;
          target->host = std::string(parts->authority);
        }
        const std::optional<Retry>& retry = step.retry ? step.retry : graph_.defaultRetry;
        if (retry && retry->maxRetries.value_or(0) > 0) target->retry = &*retry;
      }
      targets.push_back(std::move(target));
    }
  }
}

Engine::~Engine() = default;

std::unique_ptr<GraphRun> Engine::run(const core::Headers& incoming, std::string input, Done done,
                                      AnswerStream* stream) {
  core::Headers propagated = propagation_.select(incoming);
  std::optional<TraceParent> trace;
  if (options_.traceContext) {
    // The router owns these: each step call gets its own traceparent (a pattern that picked
    // the client's would make every step claim the client's span as its parent), tracestate
    // only with a valid traceparent (W3C), the request id once.
    core::removeHeader(propagated, "Traceparent");
    core::removeHeader(propagated, "Tracestate");
    if (const std::string* parent = core::findHeader(incoming, "traceparent")) {
      trace = TraceParent::parse(*parent);
    }
    if (trace) {
      // Several tracestate fields are one list (RFC 9110 §5.3).
      std::string state;
      for (const core::Header& header : incoming) {
        if (!core::iequals(header.name, "tracestate")) continue;
        if (!state.empty()) state += ',';
        state += header.value;
      }
      if (!state.empty()) propagated.push_back({"tracestate", std::move(state)});
    }
    if (core::findHeader(propagated, "X-Request-Id") == nullptr) {
      if (const std::string* id = core::findHeader(incoming, "X-Request-Id")) {
        propagated.push_back({"X-Request-Id", *id});
      }
    }
  }
  if (core::findHeader(propagated, "Content-Type") == nullptr) {
    propagated.push_back({"Content-Type", "application/json"});
  }
  if (core::findHeader(propagated, "User-Agent") == nullptr) {
    propagated.push_back({"User-Agent", options_.userAgent});
  }
  std::unique_ptr<GraphRun> run(
      new GraphRun(*this, std::move(propagated), std::move(trace), std::move(done), stream));
  run->start(std::move(input));
  return run;
}

void Engine::whenMeshKnown(std::function<void()> then, const std::shared_ptr<bool>& alive) {
  if (mesh_ == Mesh::Inside || mesh_ == Mesh::Outside) {
    then();
    return;
  }
  meshWaiters_.emplace_back(alive, std::move(then));
  if (mesh_ == Mesh::Probing) return;
  mesh_ = Mesh::Probing;
  auto probe = core::splitOriginUrl(options_.istioProbeUrl);
  auto settle = [this](bool inside) {
    mesh_ = inside ? Mesh::Inside : Mesh::Outside;
    spdlog::info("router: {} (probed {}): https steps are called {}",
                 inside ? "in an Istio mesh" : "not in an Istio mesh", options_.istioProbeUrl,
                 inside ? "as http" : "over TLS");
    auto waiters = std::move(meshWaiters_);
    meshWaiters_.clear();
    for (auto& [weak, waiter] : waiters) {
      if (weak.lock()) waiter();
    }
  };
  if (!probe) {
    settle(false);
    return;
  }
  core::UpstreamRequest request;
  request.method = "GET";
  request.target = probe->target;
  request.timeout = kMeshProbeTimeout;
  request.maxResponseBytes = 64 * 1024;
  // As upstream: a 200 from the sidecar's admin port means the mesh carries TLS. Any other
  // outcome (refused, an error, a timeout) means it does not; upstream fails its first request
  // when the probe errs, this router calls over TLS instead.
  client_.send(probe->origin, std::move(request),
               [settle](core::UpstreamResult result) { settle(result.status == 200); });
}

// A part of a run whose calls can be cancelled together: the run's root, and each Ensemble
// (whose other branches stop when it answers early). Cancelling a scope cancels its children.
struct GraphRun::Scope {
  struct Out {
    core::UpstreamCall* call;
    StepMetrics* metrics;  // a step call counted in flight; nullptr for a retry's wait
  };
  ScopePtr parent;
  bool cancelled = false;
  std::unordered_map<uint64_t, Out> calls;
  std::vector<std::weak_ptr<Scope>> children;

  bool dead() const {
    for (const Scope* scope = this; scope != nullptr; scope = scope->parent.get()) {
      if (scope->cancelled) return true;
    }
    return false;
  }
  static ScopePtr childOf(const ScopePtr& parent) {
    auto child = std::make_shared<Scope>();
    child->parent = parent;
    parent->children.push_back(child);
    return child;
  }
  void cancel() {
    cancelled = true;
    auto pending = std::move(calls);
    calls.clear();
    for (auto& [id, out] : pending) {
      if (out.metrics != nullptr) {
        --out.metrics->inFlight;
        ++out.metrics->cancellations;
      }
      out.call->cancel();
    }
    for (auto& weak : children) {
      if (auto child = weak.lock()) child->cancel();
    }
  }
};

GraphRun::GraphRun(Engine& engine, core::Headers propagated, std::optional<TraceParent> trace,
                   Engine::Done done, AnswerStream* stream)
    : engine_(engine),
      propagated_(std::move(propagated)),
      trace_(std::move(trace)),
      done_(std::move(done)),
      stream_(stream),
      root_(std::make_shared<Scope>()),
      alive_(std::make_shared<bool>(true)) {}

GraphRun::~GraphRun() {
  cancel();
}

void GraphRun::cancel() {
  streaming_ = nullptr;
  root_->cancel();
  alive_.reset();
  done_ = nullptr;
}

void GraphRun::resume() {
  if (streaming_ != nullptr) streaming_->resume();
}

void GraphRun::start(std::string input) {
  starting_ = true;
  runNode(root_, "root", std::move(input), stream_ != nullptr, [this](Outcome outcome) {
    if (!starting_) {
      Engine::Done done = std::move(done_);
      done(std::move(outcome));
      return;
    }
    // Answered without a call: the answer goes out on the next loop turn, not inside run().
    auto shared = std::make_shared<Outcome>(std::move(outcome));
    later(root_, [this, shared] {
      Engine::Done done = std::move(done_);
      done(std::move(*shared));
    });
  });
  starting_ = false;
}

void GraphRun::later(const ScopePtr& scope, std::function<void()> then) {
  struct Deferred {
    explicit Deferred(uv_loop_t* loop) : timer(loop) {}
    core::Timer timer;
  };
  auto* deferred = new Deferred(engine_.loop_);
  deferred->timer.start(std::chrono::milliseconds(0), [deferred, scope, then = std::move(then)] {
    delete deferred;
    if (!scope->dead()) then();
  });
}

void GraphRun::runNode(const ScopePtr& scope, const std::string& name, std::string input, bool tail,
                       Next next) {
  auto it = engine_.graph_.nodes.find(name);
  if (it == engine_.graph_.nodes.end()) {
    next(failure(500, "invalid route type: "));
    return;
  }
  if (!engine_.nodeMetrics_.empty()) {
    NodeMetrics* metrics = engine_.nodeMetrics_.at(name);
    next = [metrics, next = std::move(next)](Outcome outcome) {
      ++metrics->answers[outcome.status];
      next(std::move(outcome));
    };
  }
  switch (it->second.type) {
    case RouterType::Sequence:
      sequence(scope, name, std::move(input), tail, std::move(next));
      break;
    case RouterType::Switch:
      switchNode(scope, name, std::move(input), tail, std::move(next));
      break;
    case RouterType::Splitter:
      splitter(scope, name, std::move(input), tail, std::move(next));
      break;
    case RouterType::Ensemble:
      ensemble(scope, name, std::move(input), std::move(next));
      break;
  }
}

void GraphRun::runStep(const ScopePtr& scope, const std::string& node, size_t index,
                       std::string input, bool tail, Next next) {
  const Step& step = engine_.graph_.nodes.at(node).steps.at(index);
  if (!step.nodeName.empty()) {
    runNode(scope, step.nodeName, std::move(input), tail, std::move(next));
  } else {
    callService(scope, node, index, std::move(input), tail, std::move(next));
  }
}

void GraphRun::callService(const ScopePtr& scope, const std::string& node, size_t index,
                           std::string input, bool tail, Next next) {
  const Engine::Target& target = *engine_.targets_.at(node).at(index);
  if (target.origin.https && engine_.mesh_ != Engine::Mesh::Inside &&
      engine_.mesh_ != Engine::Mesh::Outside) {
    auto shared = std::make_shared<std::string>(std::move(input));
    engine_.whenMeshKnown(
        [this, scope, node, index, shared, tail, next = std::move(next)]() mutable {
          if (!scope->dead()) {
            callService(scope, node, index, std::move(*shared), tail, std::move(next));
          }
        },
        alive_);
    return;
  }
  auto call = std::make_shared<StepCall>();
  call->node = node;
  call->index = index;
  call->origin = target.origin;
  if (call->origin.https && engine_.mesh_ == Engine::Mesh::Inside) call->origin.https = false;
  call->input = std::move(input);
  call->tail = tail;
  call->next = std::move(next);
  attempt(scope, call);
}

void GraphRun::attempt(const ScopePtr& scope, const std::shared_ptr<StepCall>& call) {
  const std::string& node = call->node;
  size_t index = call->index;
  const Engine::Target& target = *engine_.targets_.at(node).at(index);
  const Retry* retry = target.retry;
  // Whether this attempt may be followed by another: then the input stays for it.
  bool more = retry != nullptr && call->retries < *retry->maxRetries;
  bool onStatus = more && retry->retryOnStatus;
  core::UpstreamRequest request;
  request.method = "POST";
  request.target = target.target;
  request.headers.reserve(propagated_.size() + 2);
  request.headers.push_back({"Host", target.host});
  request.headers.insert(request.headers.end(), propagated_.begin(), propagated_.end());
  if (trace_) {
    // A fresh parent id per call (retries included): W3C asks for one per outgoing request.
    uint64_t parentId = engine_.random_();
    request.headers.push_back({"traceparent", trace_->child(parentId != 0 ? parentId : 1)});
  }
  request.body = more ? call->input : std::move(call->input);
  request.timeout = engine_.options_.stepTimeout;
  request.maxResponseBytes = engine_.options_.maxStepResponseBytes;
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("router: calling {} for {}{}", target.url,
                  describeStep(node, index, engine_.graph_.nodes.at(node).steps.at(index)),
                  call->retries > 0 ? " (retry " + std::to_string(call->retries) + ")" : "");
  }
  uint64_t id = nextCall_++;
  if (call->tail && stream_ != nullptr) {
    // A step that does not name its Content-Type is buffered, so that the answer gets the
    // type sniffed from the whole body, as when nothing streams.
    request.stream.head = [this, scope, id, onStatus](int status, const core::Headers& headers) {
      if (scope->dead() || core::findHeader(headers, "Content-Type") == nullptr) return false;
      // An answer that is going to be retried stays with the router: the client sees nothing
      // of it, so the retry's answer can still be the one it gets.
      if (onStatus && retryableStatus(status)) return false;
      auto out = scope->calls.find(id);
      if (out != scope->calls.end()) streaming_ = out->second.call;
      stream_->head(status, headers);
      return true;
    };
    request.stream.body = [this](std::string_view data) { return stream_->body(data); };
  }
  StepMetrics* metrics = target.metrics;
  std::chrono::steady_clock::time_point started;
  if (metrics != nullptr) {
    started = std::chrono::steady_clock::now();
    ++metrics->inFlight;
  }
  core::UpstreamCall* sent = engine_.client_.send(
      call->origin, std::move(request),
      [this, scope, id, call, more, onStatus, target = &target, metrics,
       started](core::UpstreamResult result) {
        scope->calls.erase(id);
        if (metrics != nullptr) {
          --metrics->inFlight;
          ++metrics->calls[result.status != 0 ? result.status : result.timedOut ? 504 : 502];
          metrics->latency.observe(std::chrono::steady_clock::now() - started);
        }
        if (scope->dead()) return;
        if (result.streamed) streaming_ = nullptr;
        // A call that got no answer at all (refused, reset or closed before a response head,
        // name or connect failures; not serviceClient's timeout, which is the step's budget),
        // or, with retryOnStatus, an answer 429 or 5xx. Never one that streamed: the client
        // has its head. The body is the router's own copy, so it can always be sent again.
        bool noAnswer = result.status == 0 && !result.answered && !result.timedOut;
        if (more && !result.streamed &&
            (noAnswer || (onStatus && retryableStatus(result.status)))) {
          ++call->retries;
          if (metrics != nullptr) ++metrics->retries;
          core::Backoff backoff{std::chrono::milliseconds(*target->retry->initialDelayMs),
                                std::chrono::milliseconds(*target->retry->maxDelayMs)};
          std::chrono::milliseconds delay = backoff.delay(static_cast<int>(call->retries));
          spdlog::debug("router: retry {} of {} in {} ms ({})", call->retries, target->url,
                        delay.count(),
                        result.status == 0 ? result.error : std::to_string(result.status));
          uint64_t waitId = nextCall_++;
          auto* wait = new RetryWait(engine_.loop_);
          scope->calls.emplace(waitId, Scope::Out{wait, nullptr});
          wait->start(delay, [this, scope, call, waitId] {
            scope->calls.erase(waitId);
            if (!scope->dead()) attempt(scope, call);
          });
          return;
        }
        Outcome outcome;
        if (result.status == 0) {
          const Step& step = engine_.graph_.nodes.at(call->node).steps.at(call->index);
          outcome = failure(result.timedOut ? 504 : 502,
                            "Post \"" + target->url + "\": " + result.error + " (" +
                                describeStep(call->node, call->index, step) + ")");
        } else {
          outcome.status = result.status;
          outcome.body = std::move(result.body);
        }
        outcome.streamed = result.streamed;
        Next next = std::move(call->next);
        next(std::move(outcome));
      });
  scope->calls.emplace(id, Scope::Out{sent, metrics});
}

void GraphRun::sequence(const ScopePtr& scope, const std::string& name, std::string input,
                        bool tail, Next next) {
  const Node& node = engine_.graph_.nodes.at(name);
  if (node.steps.empty()) {
    // Upstream writes status 0, which makes Go drop the connection.
    next(failure(500, "node \"" + name + "\" has no steps"));
    return;
  }
  Outputs outputs;
  if (node.intermediateOutputs) {
    outputs = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    outputs->reserve(node.steps.size());
  }
  sequenceStep(scope, name, 0, std::make_shared<const std::string>(std::move(input)), Outcome{},
               tail, std::move(outputs), std::move(next));
}

void GraphRun::sequenceStep(const ScopePtr& scope, const std::string& name, size_t index,
                            std::shared_ptr<const std::string> input, Outcome previous, bool tail,
                            Outputs outputs, Next next) {
  const std::vector<Step>& steps = engine_.graph_.nodes.at(name).steps;
  // The Sequence's answer: the last step's, or with intermediateOutputs every step's that ran.
  auto answer = [&outputs, &next](Outcome outcome) {
    if (outputs) outcome.body = sequenceOutputs(*outputs);
    next(std::move(outcome));
  };
  if (index == steps.size()) {
    answer(std::move(previous));
    return;
  }
  const Step& step = steps[index];
  if (!step.condition.empty()) {
    // The condition gates on the previous step's answer; on the first step there is none, which
    // upstream reports as an invalid response.
    if (!gjson::validBytes(previous.body)) {
      next(failure(500, "invalid response"));
      return;
    }
    if (!gjson::get(previous.body, step.condition).exists()) {
      previous.status = 200;
      answer(std::move(previous));
      return;
    }
  }
  // The previous answer is not needed past here: it moves into the input that takes it.
  std::string stepInput = step.data == "$response" && index > 0 ? std::move(previous.body) : *input;
  if (step.v2Chaining && step.data == "$response" && index > 0) {
    if (auto request = v2ResponseAsRequest(stepInput)) stepInput = std::move(*request);
  }
  if (step.mapPredictionsToInstances) stepInput = mapPredictionsToInstances(stepInput);
  bool hard = step.dependencyType == Dependency::Hard;
  bool last = index + 1 == steps.size();
  runStep(scope, name, index, std::move(stepInput), tail && last && !outputs,
          [this, scope, name, index, input, hard, tail, outputs,
           next = std::move(next)](Outcome outcome) mutable {
            if (outcome.failed()) {
              next(std::move(outcome));
              return;
            }
            if (outputs) {
              const Step& done = engine_.graph_.nodes.at(name).steps[index];
              outputs->emplace_back(stepKey(done, index), outcome.body);
            }
            if (hard && !success(outcome.status)) {
              if (outputs) outcome.body = sequenceOutputs(*outputs);
              next(std::move(outcome));
              return;
            }
            sequenceStep(scope, name, index + 1, std::move(input), std::move(outcome), tail,
                         std::move(outputs), std::move(next));
          });
}

void GraphRun::switchNode(const ScopePtr& scope, const std::string& name, std::string input,
                          bool tail, Next next) {
  const std::vector<Step>& steps = engine_.graph_.nodes.at(name).steps;
  if (gjson::validBytes(input)) {
    for (size_t i = 0; i < steps.size(); ++i) {
      if (!steps[i].condition.empty() && gjson::get(input, steps[i].condition).exists()) {
        runStep(scope, name, i, std::move(input), tail, std::move(next));
        return;
      }
    }
  }
  next(failure(404, "None of the routes matched with the switch condition"));
}

void GraphRun::splitter(const ScopePtr& scope, const std::string& name, std::string input,
                        bool tail, Next next) {
  const std::vector<Step>& steps = engine_.graph_.nodes.at(name).steps;
  // Weights were checked at start (each >= 0, summing to 100), so a draw in [0, 100) always
  // lands on a step.
  int64_t draw = std::uniform_int_distribution<int64_t>(0, 99)(engine_.random_);
  int64_t cumulative = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    cumulative += steps[i].weight.value_or(0);
    if (draw < cumulative) {
      runStep(scope, name, i, std::move(input), tail, std::move(next));
      return;
    }
  }
  next(failure(500, "no route was selected by the splitter"));
}

void GraphRun::ensemble(const ScopePtr& scope, const std::string& name, std::string input,
                        Next next) {
  const std::vector<Step>& steps = engine_.graph_.nodes.at(name).steps;
  if (steps.empty()) {
    next(Outcome{"{}", 200, {}});
    return;
  }
  // Results are taken in step order (the first Hard failure in that order answers); an error
  // in any step answers at once. Either way the steps still out are cancelled.
  struct State {
    std::vector<std::optional<Outcome>> results;
    size_t next = 0;
    bool answered = false;
    ScopePtr branches;
    Next done;
  };
  auto state = std::make_shared<State>();
  state->results.resize(steps.size());
  state->branches = Scope::childOf(scope);
  state->done = std::move(next);
  auto answer = [state](Outcome outcome) {
    state->answered = true;
    state->branches->cancel();
    Next done = std::move(state->done);
    done(std::move(outcome));
  };
  auto shared = std::make_shared<const std::string>(std::move(input));
  for (size_t i = 0; i < steps.size() && !state->answered; ++i) {
    runStep(
        state->branches, name, i, *shared, false, [this, state, name, i, answer](Outcome outcome) {
          if (state->answered) return;
          const std::vector<Step>& all = engine_.graph_.nodes.at(name).steps;
          if (outcome.failed()) {
            answer(std::move(outcome));
            return;
          }
          if (auto problem = ensembleResultProblem(outcome.body)) {
            answer(failure(500, *problem + " (" + describeStep(name, i, all[i]) + ")"));
            return;
          }
          state->results[i] = std::move(outcome);
          while (state->next < all.size() && state->results[state->next]) {
            const Outcome& result = *state->results[state->next];
            if (all[state->next].dependencyType == Dependency::Hard && !success(result.status)) {
              answer(result);
              return;
            }
            ++state->next;
          }
          if (state->next < all.size()) return;
          std::vector<std::pair<std::string, std::string>> merged;
          for (size_t k = 0; k < all.size(); ++k) {
            merged.emplace_back(stepKey(all[k], k), std::move(state->results[k]->body));
          }
          answer(Outcome{mergeEnsemble(std::move(merged)), 200, {}});
        });
  }
}

}  // namespace router
