// Built into libkserve-agent-modules.so: adapts the logger and the puller to the core's view.
#include "agent/plugin.h"

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

std::unique_ptr<core::Filter> makeLogger(const core::FilterContext& context,
                                         const logger::Options& options) {
  return logger::makeLogger(context, options);
}

std::unique_ptr<agent::ModelPuller> makePuller(const puller::Options& options) {
  return std::make_unique<PullerAdapter>(options);
}

const agent::ModulePlugin kPlugin{makeLogger, makePuller};

}  // namespace

extern "C" __attribute__((visibility("default"))) const agent::ModulePlugin* ksa_module_plugin() {
  return &kPlugin;
}
