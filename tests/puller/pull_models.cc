#include "tests/puller/pull_models.h"

#include <chrono>
#include <thread>

#include "puller/puller.h"

namespace storagetest {

bool pullInitialModels(const std::string& root, uint16_t port) {
  puller::Options options;
  options.configDir = root + "/configs";
  options.modelDir = root + "/models";
  options.componentPort = port;
  options.retries = 0;
  puller::Puller puller(options);
  puller.start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!puller.initialModelsReady() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  bool ready = puller.initialModelsReady();
  puller.stop();
  return ready;
}

}  // namespace storagetest
