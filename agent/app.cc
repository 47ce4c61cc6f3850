#include "agent/app.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <prometheus/registry.h>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/marshaller.h"
#include "agent/metrics.h"
#include "agent/plugin.h"
#include "agent/probe.h"
#include "batcher/batcher.h"
#include "core/client/client.h"
#include "core/client/pool.h"
#include "core/proxy/proxy.h"
#include "core/server/drain.h"
#include "core/server/server.h"
#include "core/util/assert.h"
#include "core/util/logging.h"
#include "core/uv/handle.h"
#include "core/uv/loop.h"
#include "core/uv/send_ring.h"
#include "core/uv/signals.h"

namespace agent {

using namespace core;

namespace {

size_t shareOf(size_t limit, int threads) {
  return std::max<size_t>(
      1, (limit + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads));
}

// What every loop shares: the flags, the metrics registry and the puller.
struct Shared {
  const Config& config;
  const ModulePlugin* plugin = nullptr;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ProxyMetrics> proxyMetrics;
  std::unique_ptr<ModelPuller> puller;
  // Every loop's logger settings; a blob sink's upload thread is made once, in them.
  logger::Options loggerOptions;
};

// One event loop serving client connections: its listeners (SO_REUSEPORT when there are
// several loops), upstream pool and proxy, filter chain (probes first) and drain sequence.
class Worker final : private ServerObserver, private DrainCallbacks {
 public:
  Worker(Shared& shared, int index, ReadinessSpec readiness)
      : shared_(shared),
        config_(shared.config),
        index_(index),
        client_(loop_.get(),
                UpstreamOptions{shareOf(config_.maxUpstreamConnections, config_.threads),
                                config_.upstreamConnectTimeout, config_.upstreamTimeout}),
        pool_(client_.pool(Origin{false, "127.0.0.1", config_.componentPort})),
        proxy_(pool_),
        limits_(serverLimits(config_)),
        context_(limits_, loop_.get(), proxy_, shareOf(config_.maxConnections, config_.threads)),
        drain_(context_, config_.quietPeriod, config_.drainTimeout, *this),
        prober_(loop_.get(), client_, std::move(readiness)),
        probes_(prober_, drain_),
        tcp_(context_),
        unix_(context_),
        metricsTerminal_([this] { return renderAllMetrics(); }),
        metricsContext_(limits_, loop_.get(), metricsTerminal_, 64),
        metricsListener_(metricsContext_),
        wake_(
            [this](uv_async_t* handle) {
              return uv_async_init(loop_.get(), handle,
                                   [](uv_async_t* a) { static_cast<Worker*>(a->data)->onWake(); });
            },
            this) {
    context_.observer = this;
  }

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uv_loop_t* loop() { return loop_.get(); }
  ProxyMetrics::LoopFigures figures() const { return {&context_.stats, &pool_}; }

  // Builds the chain and listens; false (with the reason logged) when the agent cannot start.
  bool start(const std::vector<Worker*>& allWorkers) {
    workers_ = allWorkers;
    if (shared_.puller) {
      // As upstream, the agent is ready only once the initial models are in place.
      prober_.setGate([this] { return shared_.puller->initialModelsReady(); });
    }
    if (!buildChain()) return false;
    int rc = tcp_.listenTcp(config_.port, config_.threads > 1);
    if (rc != 0) {
      spdlog::error("cannot listen on port {}: {}", config_.port, uv_strerror(rc));
      return false;
    }
    // The unix socket and the metrics listener belong to the first loop.
    if (index_ == 0 && !config_.unixSocket.empty()) {
      rc = unix_.listenUnix(config_.unixSocket);
      if (rc != 0) {
        spdlog::warn("cannot listen on unix socket {}: {}", config_.unixSocket, uv_strerror(rc));
      }
    }
    if (index_ == 0 && shared_.loggerOptions.blobUploads != nullptr) listenMarshaller();
    if (index_ == 0 && config_.metricsPort != 0) {
      rc = metricsListener_.listenTcp(config_.metricsPort, false);
      if (rc != 0) {
        spdlog::error("cannot listen on metrics port {}: {}", config_.metricsPort, uv_strerror(rc));
        return false;
      }
    }
    return true;
  }

  // Runs the loop until the drain sequence has finished.
  void run() {
    Connection::gatherWritesPerPollPhase(loop_.get());
    uv_run(loop_.get(), UV_RUN_DEFAULT);
    shutdown();
  }

  // From any thread: begin the drain sequence.
  void requestDrain() {
    drainRequested_ = true;
    uv_async_send(wake_.get());
  }

 private:
  void onWake() {
    if (drainRequested_ && drain_.stage() == DrainSequence::Stage::Serving) {
      probes_.setDraining();
      drain_.begin();
    }
  }

  bool buildChain() {
    FilterContext filterContext{loop_.get(), &pool_};
    // The probe filter first: probes reach no other filter. Then upstream's order: the logger
    // sees each caller's request and the batcher's reply to it.
    std::vector<Filter*> chain{&probes_};
    if (!config_.logUrl.empty()) {
      filterContext.slot = chain.size();
      logger_ = shared_.plugin->makeLogger(filterContext, shared_.loggerOptions);
      if (logger_ == nullptr) return false;
      chain.push_back(logger_.get());
    }
    if (config_.enableBatcher) {
      filterContext.slot = chain.size();
      batcher_ =
          batcher::makeBatcher(filterContext, batcherOptions(config_, shared_.registry.get()));
      chain.push_back(batcher_.get());
    }
    context_.chain.setFilters(std::move(chain));
    return true;
  }

  // The embedded marshaller on --log-marshaller-port, as upstream's (blob sinks only). As
  // upstream, a port that cannot be bound is reported and the agent carries on: its own
  // batches never go through this server.
  void listenMarshaller() {
    const int port = config_.logMarshallerPort;
    if (port < 1 || port > 65535) {
      spdlog::warn("logger: no embedded marshaller: --log-marshaller-port {} is not a port", port);
      return;
    }
    // parseConfig refused any other format.
    auto format = logger::blob::parseFormat(config_.logStoreFormat);
    KSA_RELEASE_ASSERT(format.has_value());
    marshallerFilter_ = std::make_unique<MarshallerFilter>(*format);
    marshallerContext_ = std::make_unique<ServerContext>(limits_, loop_.get(), noTerminal_, 64);
    marshallerContext_->chain.setFilters({marshallerFilter_.get()});
    marshallerListener_ = std::make_unique<Listener>(*marshallerContext_);
    int rc = marshallerListener_->listenTcp(static_cast<uint16_t>(port), false);
    if (rc != 0) {
      spdlog::warn("logger: cannot listen on --log-marshaller-port {}: {}", port, uv_strerror(rc));
      marshallerListener_.reset();
    }
  }

  std::string renderAllMetrics() {
    std::vector<ProxyMetrics::LoopFigures> figures;
    for (const Worker* worker : workers_)
      figures.push_back(worker->figures());
    shared_.proxyMetrics->sample(figures);
    return renderMetrics(*shared_.registry);
  }

  // ServerObserver
  void onExchangeDone(const Exchange&, int status,
                      std::chrono::steady_clock::duration elapsed) override {
    if (shared_.proxyMetrics) shared_.proxyMetrics->observe(status, elapsed);
    drain_.progress();
  }
  void onClientSettled() override { drain_.progress(); }

  // DrainCallbacks
  void stopAccepting() override {
    tcp_.close();
    unix_.close();
  }
  void drained(bool) override { uv_stop(loop_.get()); }

  // Closes every handle the worker owns and lets their close callbacks run.
  void shutdown() {
    tcp_.close();
    unix_.close();
    metricsListener_.close();
    if (marshallerListener_) marshallerListener_->close();
    if (marshallerContext_) closeClients(*marshallerContext_);
    closeClients(context_);
    proxy_.shutdown();
    wake_.close();
    context_.chain.setFilters({});
    batcher_.reset();
    logger_.reset();
    Connection::stopGatheringPerPollPhase();
    uv_run(loop_.get(), UV_RUN_DEFAULT);
  }

  OwnedLoop loop_;
  Shared& shared_;
  const Config& config_;
  int index_;
  std::vector<Worker*> workers_;
  Client client_;
  UpstreamPool& pool_;  // to the model server
  ProxyTerminal proxy_;
  ServerLimits limits_;
  ServerContext context_;
  DrainSequence drain_;
  ReadinessProber prober_;
  ProbeFilter probes_;
  Listener tcp_;
  Listener unix_;
  MetricsTerminal metricsTerminal_;
  ServerContext metricsContext_;
  Listener metricsListener_;
  NoTerminal noTerminal_;
  std::unique_ptr<MarshallerFilter> marshallerFilter_;
  std::unique_ptr<ServerContext> marshallerContext_;
  std::unique_ptr<Listener> marshallerListener_;
  std::unique_ptr<Filter> logger_;
  std::unique_ptr<Filter> batcher_;
  OwnedHandle<uv_async_t> wake_;
  std::atomic<bool> drainRequested_{false};
};

// The process: loops (the first on the main thread, which also takes the signals), the puller
// and what the loops share.
class App {
 public:
  explicit App(const Config& config) : shared_{config} {}

  int run(const ReadinessSpec& readiness) {
    const Config& config = shared_.config;
    if (!config.logUrl.empty() || config.enablePuller) {
      std::string error;
      shared_.plugin = loadModulePlugin(error);
      if (shared_.plugin == nullptr) {
        spdlog::error("the logger and the puller are unavailable: {}", error);
        return 1;
      }
    }
    if (!config.logUrl.empty()) {
      shared_.loggerOptions = loggerOptions(config, shared_.registry.get());
      std::string error;
      if (!shared_.plugin->prepareLogger(shared_.loggerOptions, error)) {
        std::fprintf(stderr, "kserve-agent: blob log sink: %s\n", error.c_str());
        return 2;
      }
    }
    if (config.metricsPort != 0) {
      shared_.proxyMetrics = std::make_unique<ProxyMetrics>(*shared_.registry);
    }
    if (config.enablePuller) {
      shared_.puller = shared_.plugin->makePuller(pullerOptions(config, shared_.registry.get()));
      shared_.puller->start();
    }
    SendRing::setEnabled(config.ioUring);
    for (int i = 0; i < config.threads; ++i) {
      workers_.push_back(std::make_unique<Worker>(shared_, i, readiness));
      pointers_.push_back(workers_.back().get());
    }
    for (auto& worker : workers_) {
      if (!worker->start(pointers_)) return 1;
    }
    signals_ = std::make_unique<ShutdownSignals>(workers_[0]->loop(),
                                                 [this](int signum) { onSignal(signum); });
    spdlog::info("kserve-agent listening on port {} ({} event loop{}), forwarding to 127.0.0.1:{}",
                 config.port, config.threads, config.threads > 1 ? "s" : "", config.componentPort);
    std::vector<std::thread> threads;
    for (size_t i = 1; i < workers_.size(); ++i) {
      threads.emplace_back([worker = workers_[i].get()] { worker->run(); });
    }
    workers_[0]->run();
    for (auto& thread : threads)
      thread.join();
    signals_.reset();
    uv_run(workers_[0]->loop(), UV_RUN_DEFAULT);
    if (shared_.puller) shared_.puller->stop();
    spdlog::info("Shutdown complete, exiting...");
    return 0;
  }

 private:
  void onSignal(int signum) {
    spdlog::info("received signal {}: failing probes, waiting {} ms without new requests", signum,
                 shared_.config.quietPeriod.count());
    for (auto& worker : workers_)
      worker->requestDrain();
  }

  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> pointers_;
  std::unique_ptr<ShutdownSignals> signals_;
};

}  // namespace

int runAgent(const Config& config) {
  // A peer that vanished must surface as EPIPE on the write, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  configureJsonLogging("kserve-agent", config.logLevel);
  const char* multi = std::getenv("ENABLE_MULTI_CONTAINER_PROBES");
  std::string error;
  auto readiness = parseReadiness(std::getenv("SERVING_READINESS_PROBE"),
                                  multi != nullptr && std::string_view(multi) == "true",
                                  config.componentPort, error);
  if (!readiness) {
    std::fprintf(stderr, "kserve-agent: invalid SERVING_READINESS_PROBE: %s\n", error.c_str());
    return 2;
  }
  App app(config);
  return app.run(*readiness);
}

}  // namespace agent
