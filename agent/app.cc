#include "agent/app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <cstdlib>
#include <memory>
#include <prometheus/registry.h>

#include "agent/metrics.h"
#include "agent/plugin.h"
#include "agent/probe.h"
#include "agent/server.h"
#include "agent/upstream.h"
#include "batcher/batcher.h"

namespace agent {

namespace {

void configureLogging(const Config& config) {
  auto logger = spdlog::stderr_logger_st("kserve-agent");
  // One line per event, in JSON, as structured log collectors expect.
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(config.logLevel));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

struct Loop {
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    // Whatever is still open is closed here and its close callbacks run, so the loop closes.
    uv_walk(
        &loop,
        [](uv_handle_t* handle, void*) {
          if (!uv_is_closing(handle)) uv_close(handle, nullptr);
        },
        nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  uv_loop_t loop;
};

// The agent on one loop: listeners, upstream pool, module chain, probes, metrics, signals and
// the drain sequence (quiet period, stop accepting, finish in-flight exchanges, flush modules).
class App {
 public:
  App(const Config& config, ReadinessSpec readiness)
      : config_(config),
        pool_(&loop_.loop,
              UpstreamOptions{config.componentPort, config.maxUpstreamConnections,
                              config.upstreamConnectTimeout, config.upstreamTimeout}),
        context_(config, &loop_.loop, pool_),
        prober_(&loop_.loop, std::move(readiness)),
        probes_(prober_),
        tcp_(context_),
        unix_(context_),
        metricsContext_(config, &loop_.loop, pool_),
        metricsListener_(metricsContext_) {}

  int run() {
    if (!buildModules()) return 1;
    context_.intercept = [this](const ExchangePtr& exchange) {
      if (probes_.intercept(exchange)) return true;
      // Every ordinary request during the quiet period restarts it (as Knative's drainer).
      if (stage_ == Stage::Quiet) restartQuietTimer();
      return false;
    };
    context_.onExchangeDone = [this](const Exchange&, int status,
                                     std::chrono::steady_clock::duration elapsed) {
      if (proxyMetrics_) proxyMetrics_->observe(status, elapsed);
      if (stage_ == Stage::Finishing) advanceDrain();
    };
    int rc = tcp_.listenTcp(config_.port, config_.threads > 1);
    if (rc != 0) {
      spdlog::error("cannot listen on port {}: {}", config_.port, uv_strerror(rc));
      return 1;
    }
    if (!config_.unixSocket.empty()) {
      rc = unix_.listenUnix(config_.unixSocket);
      if (rc != 0) {
        spdlog::warn("cannot listen on unix socket {}: {}", config_.unixSocket, uv_strerror(rc));
      }
    }
    if (config_.metricsPort != 0 && !startMetrics()) return 1;
    uv_timer_init(&loop_.loop, &drainTimer_);
    drainTimer_.data = this;
    setupSignals();
    spdlog::info("kserve-agent listening on port {}, forwarding to 127.0.0.1:{}", config_.port,
                 config_.componentPort);
    uv_run(&loop_.loop, UV_RUN_DEFAULT);
    shutdown();
    spdlog::info("Shutdown complete, exiting...");
    return 0;
  }

 private:
  enum class Stage { Serving, Quiet, Finishing, Done };

  bool buildModules() {
    ModuleContext moduleContext{&loop_.loop, &pool_, registry_.get(), config_.port};
    const ModulePlugin* plugin = nullptr;
    if (!config_.logUrl.empty() || config_.enablePuller) {
      std::string error;
      plugin = loadModulePlugin(error);
      if (plugin == nullptr) {
        spdlog::error("the logger and the puller are unavailable: {}", error);
        return false;
      }
    }
    std::vector<Module*> chain;
    // Upstream's order: the logger sees each caller's request and the batcher's reply to it.
    if (!config_.logUrl.empty()) {
      logger_ = plugin->makeLogger(moduleContext, config_);
      if (logger_ == nullptr) return false;
      chain.push_back(logger_.get());
    }
    if (config_.enableBatcher) {
      batcher_ = batcher::makeBatcher(
          moduleContext, batcher::Options{config_.maxBatchSize, config_.maxLatencyMs,
                                          config_.batcherTimeout, config_.maxBufferedBodyBytes});
      chain.push_back(batcher_.get());
    }
    context_.setModules(std::move(chain));
    if (config_.enablePuller) {
      puller_ = plugin->makePuller(config_);
      puller_->start();
      // As upstream, the agent is ready only once the initial models are in place.
      prober_.setGate([this] { return puller_->initialModelsReady(); });
    }
    return true;
  }

  bool startMetrics() {
    proxyMetrics_ = std::make_unique<ProxyMetrics>(*registry_);
    metricsContext_.intercept = [this](const ExchangePtr& exchange) {
      if (exchange->request().path() != "/metrics") {
        exchange->replyError(404, "not found: metrics are at /metrics");
        return true;
      }
      proxyMetrics_->sample(context_.stats, pool_);
      exchange->replyWith(200, "text/plain; version=0.0.4; charset=utf-8",
                          renderMetrics(*registry_));
      return true;
    };
    int rc = metricsListener_.listenTcp(config_.metricsPort, false);
    if (rc != 0) {
      spdlog::error("cannot listen on metrics port {}: {}", config_.metricsPort, uv_strerror(rc));
      return false;
    }
    return true;
  }

  void setupSignals() {
    for (auto [handle, signum] : {std::pair{&sigterm_, SIGTERM}, std::pair{&sigint_, SIGINT}}) {
      uv_signal_init(&loop_.loop, handle);
      handle->data = this;
      uv_signal_start(
          handle, [](uv_signal_t* h, int sig) { static_cast<App*>(h->data)->onSignal(sig); },
          signum);
    }
  }

  void onSignal(int signum) {
    if (stage_ != Stage::Serving) {
      spdlog::warn("second signal {}: exiting now", signum);
      std::_Exit(1);
    }
    spdlog::info("received signal {}: failing probes, waiting {} ms without new requests",
                 signum, config_.quietPeriod.count());
    stage_ = Stage::Quiet;
    probes_.setDraining();
    restartQuietTimer();
  }

  void restartQuietTimer() {
    uv_timer_start(
        &drainTimer_, [](uv_timer_t* t) { static_cast<App*>(t->data)->startFinishing(); },
        static_cast<uint64_t>(config_.quietPeriod.count()), 0);
  }

  // The quiet period is over: stop accepting, let in-flight exchanges finish, flush modules.
  void startFinishing() {
    stage_ = Stage::Finishing;
    context_.draining = true;
    tcp_.close();
    unix_.close();
    deadline_ = std::chrono::steady_clock::now() + config_.drainTimeout;
    uv_timer_start(
        &drainTimer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<App*>(t->data);
          spdlog::warn("drain timeout: {} exchanges still in flight",
                       self->context_.stats.exchangesInFlight);
          self->stop();
        },
        static_cast<uint64_t>(config_.drainTimeout.count()), 0);
    nextModule_ = context_.modules.size();
    advanceDrain();
  }

  // Drains modules from the last to the first; a module that observes exchanges is drained
  // only once no exchange is in flight, so it sees every one of them.
  void advanceDrain() {
    if (stage_ != Stage::Finishing || moduleDraining_ || inAdvance_) return;
    inAdvance_ = true;
    closeIdleClients(context_);
    while (nextModule_ > 0) {
      Module* module = context_.modules[nextModule_ - 1];
      bool observer = (module->observes() & kObserveComplete) != 0;
      if (observer && context_.stats.exchangesInFlight > 0) break;
      --nextModule_;
      moduleDraining_ = true;
      module->drain(deadline_, [this]() {
        moduleDraining_ = false;
        advanceDrain();
      });
      if (moduleDraining_) break;
    }
    inAdvance_ = false;
    if (!moduleDraining_ && nextModule_ == 0 && context_.stats.exchangesInFlight == 0) stop();
  }

  void stop() {
    if (stage_ == Stage::Done) return;
    stage_ = Stage::Done;
    uv_stop(&loop_.loop);
  }

  // Closes every handle the app owns and lets their close callbacks run.
  void shutdown() {
    tcp_.close();
    unix_.close();
    metricsListener_.close();
    std::vector<Connection*> clients(context_.clients.begin(), context_.clients.end());
    for (Connection* client : clients) client->close();
    pool_.closeIdle();
    for (uv_handle_t* handle : {reinterpret_cast<uv_handle_t*>(&sigterm_),
                                reinterpret_cast<uv_handle_t*>(&sigint_),
                                reinterpret_cast<uv_handle_t*>(&drainTimer_)}) {
      if (uv_is_active(handle) || uv_has_ref(handle)) uv_close(handle, nullptr);
    }
    if (puller_) puller_->stop();
    context_.setModules({});
    batcher_.reset();
    logger_.reset();
    uv_run(&loop_.loop, UV_RUN_DEFAULT);
  }

  Loop loop_;
  const Config& config_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  UpstreamPool pool_;
  ServerContext context_;
  ReadinessProber prober_;
  ProbeHandler probes_;
  Listener tcp_;
  Listener unix_;
  ServerContext metricsContext_;
  Listener metricsListener_;
  std::unique_ptr<ProxyMetrics> proxyMetrics_;
  std::unique_ptr<Module> logger_;
  std::unique_ptr<Module> batcher_;
  std::unique_ptr<ModelPuller> puller_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_timer_t drainTimer_;
  Stage stage_ = Stage::Serving;
  size_t nextModule_ = 0;
  bool moduleDraining_ = false;
  bool inAdvance_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace

int runAgent(const Config& config) {
  // A peer that vanished must surface as EPIPE on the write, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  configureLogging(config);
  const char* multi = std::getenv("ENABLE_MULTI_CONTAINER_PROBES");
  std::string error;
  auto readiness = parseReadiness(std::getenv("SERVING_READINESS_PROBE"),
                                  multi != nullptr && std::string_view(multi) == "true",
                                  config.componentPort, error);
  if (!readiness) {
    std::fprintf(stderr, "kserve-agent: invalid SERVING_READINESS_PROBE: %s\n", error.c_str());
    return 2;
  }
  App app(config, std::move(*readiness));
  return app.run();
}

}  // namespace agent
