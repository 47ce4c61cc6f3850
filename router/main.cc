// kserve-router: KServe's InferenceGraph router (upstream's image entrypoint).
#include <cstdio>

#include "router/app.h"
#include "router/config.h"

int main(int argc, char** argv) {
  router::RouterParseResult parsed = router::parseRouterConfig(argc, argv);
  if (!parsed.config) {
    std::fputs(parsed.message.c_str(), parsed.exitCode == 0 ? stdout : stderr);
    return parsed.exitCode;
  }
  return router::runRouter(*parsed.config);
}
