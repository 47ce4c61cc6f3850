#include "agent/app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <memory>
#include <prometheus/registry.h>

#include "agent/server.h"
#include "agent/upstream.h"

namespace agent {

namespace {

void configureLogging(const Config& config) {
  auto logger = spdlog::stderr_logger_st("kserve-agent");
  // One line per event: time, level, message (JSON-friendly fields are in the message).
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(config.logLevel));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// The agent on one loop: listeners, upstream pool, module chain, signals and the drain
// sequence (quiet period, stop accepting, finish in-flight exchanges, flush modules, exit).
class App {
 public:
  explicit App(const Config& config)
      : config_(config),
        pool_(&loop_.loop,
              UpstreamOptions{config.componentPort, config.maxUpstreamConnections,
                              config.upstreamConnectTimeout, config.upstreamTimeout}),
        context_(config, &loop_.loop, pool_),
        tcp_(context_),
        unix_(context_) {}

  int run() {
    context_.setModules({});
    context_.intercept = [this](const ExchangePtr& exchange) { return intercept(exchange); };
    context_.onExchangeDone = [this](const Exchange&, int, std::chrono::steady_clock::duration) {
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
    setupSignals();
    uv_timer_init(&loop_.loop, &drainTimer_);
    drainTimer_.data = this;
    spdlog::info("kserve-agent listening on port {}, forwarding to 127.0.0.1:{}", config_.port,
                 config_.componentPort);
    uv_run(&loop_.loop, UV_RUN_DEFAULT);
    spdlog::info("Shutdown complete, exiting...");
    return exitCode_;
  }

  ~App() {
    tcp_.close();
    unix_.close();
    pool_.closeIdle();
  }

 private:
  enum class Stage { Serving, Quiet, Finishing, Done };

  bool intercept(const ExchangePtr& exchange) {
    (void)exchange;
    if (stage_ == Stage::Quiet) restartQuietTimer();
    return false;
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
    uv_timer_stop(&drainTimer_);
    pool_.closeIdle();
    uv_stop(&loop_.loop);
  }

  struct Loop {
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
      // Close whatever is left and let the close callbacks run, so the loop closes cleanly.
      uv_walk(
          &loop,
          [](uv_handle_t* handle, void*) {
            if (!uv_is_closing(handle)) uv_close(handle, nullptr);
          },
          nullptr);
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    }
    uv_loop_t loop;
  };

  Loop loop_;
  const Config& config_;
  UpstreamPool pool_;
  ServerContext context_;
  Listener tcp_;
  Listener unix_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_timer_t drainTimer_;
  Stage stage_ = Stage::Serving;
  size_t nextModule_ = 0;
  bool moduleDraining_ = false;
  bool inAdvance_ = false;
  std::chrono::steady_clock::time_point deadline_;
  int exitCode_ = 0;
};

}  // namespace

int runAgent(const Config& config) {
  // A peer that vanished must surface as EPIPE on the write, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  configureLogging(config);
  App app(config);
  return app.run();
}

}  // namespace agent
