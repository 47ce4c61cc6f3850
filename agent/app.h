// The application: builds the loop, listeners, modules and signal handling from a Config.
#pragma once

#include "agent/config.h"

namespace agent {

// Runs the agent until it is stopped; returns the process exit status.
int runAgent(const Config& config);

}  // namespace agent
