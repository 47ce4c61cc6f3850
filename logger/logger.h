// The payload logger (--log-url): one CloudEvent per logged request and per logged response,
// delivered off the request path. The module only observes; requests and responses stream
// through untouched.
#pragma once

#include <memory>

#include "agent/config.h"
#include "agent/module.h"

namespace logger {

// The logger's settings: the logger part of the command line (agent::Config is one).
using Options = agent::LoggerConfig;

// The logger module for one loop; nullptr when options.logUrl is empty (the logger is off).
std::unique_ptr<agent::Module> makeLogger(const agent::ModuleContext& context,
                                          const Options& options);

}  // namespace logger
