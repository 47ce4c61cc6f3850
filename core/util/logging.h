// Logging as both binaries do it: one JSON object per line on stderr (as structured log
// collectors expect), from any thread.
#pragma once

#include <string>

namespace core {

// Makes the default spdlog logger write JSON lines named `name` at `level` ("info", "debug",
// ...); info and above are flushed at once.
void configureJsonLogging(const std::string& name, const std::string& level);

}  // namespace core
