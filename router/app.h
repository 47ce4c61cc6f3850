// kserve-router's composition root: the graph checked, one event loop with the server (readyz
// filter, graph terminal), the client to the steps (https through core_curl), signals and the
// drain.
#pragma once

#include "router/config.h"

namespace router {

// Runs the router until it is stopped; returns the process exit status.
int runRouter(const RouterConfig& config);

}  // namespace router
