// A puller in its own process, so a test can kill it with SIGKILL half way through a download:
// puller_runner CONFIG_DIR MODEL_DIR COMPONENT_PORT. Runs until killed.
#include <unistd.h>

#include <cstdlib>

#include "puller/puller.h"

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  puller::Options options;
  options.configDir = argv[1];
  options.modelDir = argv[2];
  options.componentPort = static_cast<uint16_t>(std::atoi(argv[3]));
  puller::Puller puller(options);
  puller.start();
  for (;;)
    ::pause();
}
