// The modules that need libcurl, libarchive and OpenSSL (the logger and the puller) are built
// into libkserve-agent-modules.so, loaded only when one of them is enabled: mapping those
// libraries and running their initialisers would double the plain proxy's idle memory.
#pragma once

#include <memory>
#include <string>

#include "core/chain/filter.h"
#include "logger/logger.h"
#include "puller/puller.h"

namespace agent {

// The model puller as the core sees it (it runs on its own threads).
class ModelPuller {
 public:
  virtual ~ModelPuller() = default;
  virtual void start() = 0;
  // True once the operations of the initial models.json have finished. Thread-safe.
  virtual bool initialModelsReady() const = 0;
  virtual void stop() = 0;
};

struct ModulePlugin {
  // Once per process, before the loops' loggers: for a blob --log-url, makes the uploader
  // (credentials and endpoint from the environment) and the upload thread into
  // options.blobUploads. False, with `error` set, when the sink cannot work.
  bool (*prepareLogger)(logger::Options& options, std::string& error);
  // The logger for one loop (nullptr when --log-url is empty).
  std::unique_ptr<core::Filter> (*makeLogger)(const core::FilterContext& context,
                                              const logger::Options& options);
  std::unique_ptr<ModelPuller> (*makePuller)(const puller::Options& options);
};

// Loads the plugin from the executable's directory (or $KSA_MODULES_DIR); nullptr with `error`
// set when it cannot be loaded. The library stays loaded for the life of the process.
const ModulePlugin* loadModulePlugin(std::string& error);

}  // namespace agent

// The plugin's one exported symbol.
extern "C" const agent::ModulePlugin* ksa_module_plugin();
