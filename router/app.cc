#include "router/app.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>

#include "core/client/client.h"
#include "core/http/url.h"
#include "core/server/drain.h"
#include "core/server/server.h"
#include "core/util/logging.h"
#include "core/util/version.h"
#include "core/uv/loop.h"
#include "core/uv/signals.h"
#include "router/engine.h"
#include "router/graph.h"
#include "router/https.h"
#include "router/metrics.h"
#include "router/propagation.h"
#include "router/server.h"

namespace router {

namespace {

using namespace std::chrono_literals;

// Go's default for an unset server timeout is none; a timeout of 0 or less in routerTimeouts
// means none as well. A day stands for "none" where the server needs a bound.
constexpr std::chrono::milliseconds kNoTimeout = std::chrono::hours(24);

std::chrono::milliseconds seconds(const std::optional<int64_t>& value,
                                  std::chrono::milliseconds absent,
                                  std::chrono::milliseconds none) {
  if (!value) return absent;
  if (*value <= 0) return none;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(*value));
}

class Router final : private core::ServerObserver, private core::DrainCallbacks {
 public:
  // `https`: the https transport's plugin, null when the graph calls no https service.
  Router(const RouterConfig& config, Graph graph, HeaderPropagation propagation,
         const HttpsPlugin* https, std::shared_ptr<const std::string> caBundle)
      : config_(config),
        timeouts_(graph.routerTimeouts.value_or(RouterTimeouts{})),
        https_(https == nullptr
                   ? nullptr
                   : https->makeTransport(
                         &loop_,
                         HttpsSettings{.maxConnectionsPerHost = config.maxStepConnections,
                                       .maxResponseBytes = config.maxStepResponseBytes,
                                       .userAgent = "kserve-router/" + std::string(core::kVersion),
                                       .connectTimeout = config.stepConnectTimeout,
                                       .caBundle = std::move(caBundle)})),
        client_(&loop_,
                core::UpstreamOptions{config.maxStepConnections, config.stepConnectTimeout,
                                      std::chrono::milliseconds(0), "the step's service"},
                https_.get()),
        metrics_(config.metricsPort != 0 ? std::make_unique<RouterMetrics>() : nullptr),
        engine_(&loop_, std::move(graph), std::move(propagation), engineOptions(config), client_,
                metrics_.get()),
        terminal_(&loop_, engine_, seconds(timeouts_.serverWrite, 60s, 0ms), config.streamResponses,
                  metrics_.get()),
        limits_(serverLimits(config, timeouts_)),
        context_(limits_, &loop_, terminal_, config.maxConnections),
        listener_(context_),
        drain_(context_, config.drainPeriod, config.drainTimeout, *this) {
    if (metrics_) {
      metricsTerminal_ = std::make_unique<MetricsTerminal>(*metrics_);
      metricsContext_ =
          std::make_unique<core::ServerContext>(limits_, &loop_, *metricsTerminal_, 64);
      metricsListener_ = std::make_unique<core::Listener>(*metricsContext_);
    }
    context_.observer = this;
    context_.chain.setFilters({&readyz_});
  }

  int run() {
    int rc = listener_.listenTcp(config_.port, false);
    if (rc != 0) {
      spdlog::error("cannot listen on port {}: {}", config_.port, uv_strerror(rc));
      return 1;
    }
    if (metricsListener_) {
      rc = metricsListener_->listenTcp(config_.metricsPort, false);
      if (rc != 0) {
        spdlog::error("cannot listen on metrics port {}: {}", config_.metricsPort, uv_strerror(rc));
        return 1;
      }
    }
    signals_ =
        std::make_unique<core::ShutdownSignals>(&loop_, [this](int signum) { onSignal(signum); });
    spdlog::info("kserve-router {} listening on port {}", core::kVersion, config_.port);
    core::Connection::gatherWritesPerPollPhase(&loop_);
    uv_run(&loop_, UV_RUN_DEFAULT);
    shutdown();
    spdlog::info("Shutdown complete, exiting...");
    return 0;
  }

 private:
  EngineOptions engineOptions(const RouterConfig& config) {
    EngineOptions options;
    options.stepTimeout = seconds(timeouts_.serviceClient, 0ms, 0ms);
    options.maxStepResponseBytes = config.maxStepResponseBytes;
    options.istioProbeUrl = config.istioProbeUrl;
    options.userAgent = "kserve-router/" + std::string(core::kVersion);
    options.traceContext = config.traceContext;
    return options;
  }

  static core::ServerLimits serverLimits(const RouterConfig& config,
                                         const RouterTimeouts& timeouts) {
    core::ServerLimits limits;
    limits.maxRequestBodyBytes = config.maxRequestBodyBytes;
    limits.maxBufferedBodyBytes = config.maxRequestBodyBytes;
    limits.headerTimeout = seconds(timeouts.serverRead, 60s, kNoTimeout);
    limits.idleTimeout = seconds(timeouts.serverIdle, 180s, kNoTimeout);
    return limits;
  }

  void onSignal(int signum) {
    spdlog::info("received signal {}: failing /readyz, serving {} ms more", signum,
                 config_.drainPeriod.count());
    readyz_.setDraining();
    drain_.begin();
  }

  // ServerObserver
  void onExchangeDone(const core::Exchange&, int, std::chrono::steady_clock::duration) override {
    drain_.progress();
  }
  void onClientSettled() override { drain_.progress(); }

  // DrainCallbacks
  void stopAccepting() override { listener_.close(); }
  void drained(bool) override { uv_stop(&loop_); }

  void shutdown() {
    listener_.close();
    if (metricsListener_) {
      metricsListener_->close();
      core::closeClients(*metricsContext_);
    }
    core::closeClients(context_);
    client_.cancelCalls("the router shut down before the step answered");
    client_.closeIdle();
    signals_.reset();
    context_.chain.setFilters({});
    core::Connection::stopGatheringPerPollPhase();
    uv_run(&loop_, UV_RUN_DEFAULT);
  }

  const RouterConfig& config_;
  RouterTimeouts timeouts_;
  core::OwnedLoop loopHolder_;
  uv_loop_t& loop_ = *loopHolder_.get();
  std::unique_ptr<core::HttpsTransport> https_;
  core::Client client_;
  std::unique_ptr<RouterMetrics> metrics_;
  Engine engine_;
  ReadyzFilter readyz_;
  GraphTerminal terminal_;
  core::ServerLimits limits_;
  core::ServerContext context_;
  core::Listener listener_;
  core::DrainSequence drain_;
  std::unique_ptr<core::ShutdownSignals> signals_;
  // With --metrics-port only.
  std::unique_ptr<MetricsTerminal> metricsTerminal_;
  std::unique_ptr<core::ServerContext> metricsContext_;
  std::unique_ptr<core::Listener> metricsListener_;
};

// A step that calls this router itself (localhost or a loopback address on the router's own
// port) sends every request round again until the write timeout answers it: the seed's example
// graph does that inside a container, where localhost:8080 is the router.
void warnAboutSelfCalls(const Graph& graph, uint16_t port) {
  for (const auto& [name, node] : graph.nodes) {
    for (size_t i = 0; i < node.steps.size(); ++i) {
      auto target = core::splitOriginUrl(node.steps[i].serviceUrl);
      if (!target || target->origin.port != port) continue;
      const std::string& host = target->origin.host;
      if (host == "localhost" || host == "::1" || host.starts_with("127.") || host == "0.0.0.0") {
        spdlog::warn(
            "{} calls this router's own port {}: each request would come back to the "
            "router until routerTimeouts.serverWrite answers it",
            describeStep(name, i, node.steps[i]), port);
      }
    }
  }
}

// Whether a step calls an https service (before the Istio rule, which may turn them into http:
// the plugin is loaded either way, since the probe runs later).
bool callsHttps(const Graph& graph) {
  for (const auto& [name, node] : graph.nodes) {
    for (const auto& step : node.steps) {
      auto target = core::splitOriginUrl(step.serviceUrl);
      if (target && target->origin.https) return true;
    }
  }
  return false;
}

}  // namespace

int runRouter(const RouterConfig& config) {
  // A peer that vanished must surface as EPIPE on the write, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  GraphResult parsed = parseGraph(config.graphJson);
  if (!parsed.ok()) {
    std::fprintf(stderr, "kserve-router: %s\n", parsed.error.c_str());
    return 2;
  }
  core::configureJsonLogging("kserve-router", config.logLevel);
  for (const std::string& warning : parsed.graph.warnings)
    spdlog::warn("{}", warning);
  warnAboutSelfCalls(parsed.graph, config.port);
  std::vector<std::string> problems;
  const char* patterns = std::getenv("PROPAGATE_HEADERS");
  HeaderPropagation propagation =
      HeaderPropagation::parse(patterns != nullptr ? patterns : "", problems);
  for (const std::string& problem : problems)
    spdlog::error("PROPAGATE_HEADERS: {}", problem);
  // The graph's own patterns add to the environment's. Unlike those (upstream logs and skips a
  // bad one), a bad one is refused at start like any other graph problem.
  const std::vector<std::string>& graphPatterns = parsed.graph.propagateHeaders;
  for (size_t i = 0; i < graphPatterns.size(); ++i) {
    std::string problem;
    if (!graphPatterns[i].empty() && !propagation.addPattern(graphPatterns[i], problem)) {
      std::fprintf(stderr,
                   "kserve-router: graph: propagateHeaders[%zu] \"%s\" is not a valid "
                   "regular expression (%s)\n",
                   i, graphPatterns[i].c_str(), problem.c_str());
      return 2;
    }
  }
  const HttpsPlugin* https = nullptr;
  if (callsHttps(parsed.graph) || !config.caFile.empty()) {
    std::string error;
    https = loadHttpsPlugin(error);
    if (https == nullptr) {
      std::fprintf(stderr, "kserve-router: https steps need the https plugin: %s\n", error.c_str());
      return 2;
    }
  }
  std::shared_ptr<const std::string> caBundle;
  if (!config.caFile.empty()) {
    caBundle = https->readCaBundle(config.caFile);
    if (caBundle == nullptr) {
      std::fprintf(stderr, "kserve-router: --ca-file %s holds no PEM certificate\n",
                   config.caFile.c_str());
      return 2;
    }
  }
  Router router(config, std::move(parsed.graph), std::move(propagation), https,
                std::move(caBundle));
  return router.run();
}

}  // namespace router
