// Built into libkserve-agent-modules.so: adapts the logger and the puller to the core's view.
#include "agent/plugin.h"

#include "logger/logger.h"
#include "puller/puller.h"

namespace {

class PullerAdapter final : public agent::ModelPuller {
 public:
  explicit PullerAdapter(puller::Options options) : puller_(std::move(options)) {}
  void start() override { puller_.start(); }
  bool initialModelsReady() const override { return puller_.initialModelsReady(); }
  void stop() override { puller_.stop(); }

 private:
  puller::Puller puller_;
};

std::unique_ptr<agent::Module> makeLogger(const agent::ModuleContext& context,
                                          const agent::Config& config) {
  return logger::makeLogger(context, config);
}

std::unique_ptr<agent::ModelPuller> makePuller(const agent::Config& config,
                                               prometheus::Registry* metrics) {
  puller::Options options;
  options.configDir = config.configDir;
  options.modelDir = config.modelDir;
  options.componentPort = config.componentPort;
  options.concurrency = config.pullerConcurrency;
  options.retries = config.pullerRetries;
  options.metrics = metrics;
  return std::make_unique<PullerAdapter>(std::move(options));
}

const agent::ModulePlugin kPlugin{makeLogger, makePuller};

}  // namespace

extern "C" __attribute__((visibility("default"))) const agent::ModulePlugin* ksa_module_plugin() {
  return &kPlugin;
}
