// The payload logger (--log-url): one CloudEvent per logged request and per logged response,
// delivered off the request path. The module only observes; requests and responses stream
// through untouched.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/module.h"

namespace logger {

// Every logger setting, named and defaulted as in agent::Config.
struct Options {
  std::string logUrl;
  int workers = 5;
  std::string sourceUri;        // empty: http://localhost:<listen port>/
  std::string logMode = "all";  // all, request or response
  std::string inferenceService;
  std::string namespace_;
  std::string endpoint;
  std::string component;
  std::vector<std::string> metadataHeaders;
  std::vector<std::string> metadataAnnotations;  // "key=value" items
  std::string loggerCaCertFile = "service-ca.crt";
  std::string loggerCaCertDir = "/etc/tls/logger";
  bool loggerTlsSkipVerify = false;
  bool logAllResponses = false;
  size_t logQueueEvents = 10000;
  size_t logQueueBytes = size_t{64} << 20;
  std::chrono::milliseconds logTimeout{std::chrono::seconds(10)};
  int logRetries = 5;  // delivery attempts per event, the first included
};

// The logger fields of a parsed command line.
Options optionsFrom(const agent::Config& config);

// The logger module for one loop; nullptr when options.logUrl is empty (the logger is off).
std::unique_ptr<agent::Module> makeLogger(const agent::ModuleContext& context,
                                          const Options& options);

}  // namespace logger
