#include "agent/app.h"

#include <spdlog/spdlog.h>

namespace agent {

int runAgent(const Config& config) {
  spdlog::info("kserve-agent on port {} for component port {}", config.port, config.componentPort);
  return 0;
}

}  // namespace agent
