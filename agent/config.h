// Command-line flags and environment: every upstream agent flag (same names, types and
// defaults) plus ours, parsed and validated before anything starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "batcher/batcher.h"
#include "core/server/limits.h"
#include "core/util/duration.h"
#include "logger/logger.h"
#include "puller/puller.h"

namespace agent {

using Duration = std::chrono::milliseconds;

// The logger's flags are its Options (upstream's, then ours); the rest are the agent's.
struct Config : logger::Options {
  // Proxy (upstream flags).
  uint16_t port = 9081;
  uint16_t componentPort = 8080;

  // Batcher (upstream flags; --max-batchsize and --max-latency are strings upstream).
  bool enableBatcher = false;
  int maxBatchSize = 32;
  int maxLatencyMs = 5000;
  Duration batcherTimeout{std::chrono::seconds(60)};

  // Puller (upstream flags).
  bool enablePuller = false;
  std::string configDir = "/mnt/configs";
  std::string modelDir = "/mnt/models";
  int pullerConcurrency = 4;
  int pullerRetries = 5;

  // Operations (ours).
  Duration quietPeriod{std::chrono::seconds(30)};
  Duration drainTimeout{std::chrono::seconds(30)};
  std::string unixSocket = "@/kserve/agent.sock";
  uint16_t metricsPort = 0;  // 0: no metrics listener
  std::string logLevel = "info";
  int threads = 1;
  bool ioUring = true;  // --io-uring=false: one write system call per peer

  // Limits and timeouts (ours).
  size_t maxHeaderBytes = 64 * 1024;
  size_t maxHeaderCount = 100;
  size_t maxRequestBodyBytes = size_t{1} << 30;
  size_t maxBufferedBodyBytes = size_t{64} << 20;  // bodies a module reads whole (batcher)
  size_t maxConnections = 10000;
  size_t maxUpstreamConnections = 1000;
  Duration headerTimeout{std::chrono::seconds(60)};
  Duration idleTimeout{std::chrono::seconds(180)};
  Duration writeTimeout{std::chrono::seconds(60)};
  Duration upstreamConnectTimeout{std::chrono::seconds(5)};
  Duration upstreamTimeout{std::chrono::seconds(300)};
};

// The outcome of parsing: a config to run with, or an exit code and text to print.
struct ParseResult {
  std::optional<Config> config;
  int exitCode = 0;
  std::string message;  // for stdout when exitCode == 0 (help, version), else for stderr
};

// Parses argv and the environment; never exits the process itself.
ParseResult parseConfig(int argc, const char* const* argv);

// The settings of each part the agent composes, from its flags. `metrics`: where the part's
// metrics go (null: none).
core::ServerLimits serverLimits(const Config& config);
batcher::Options batcherOptions(const Config& config, prometheus::Registry* metrics);
logger::Options loggerOptions(const Config& config, prometheus::Registry* metrics);
puller::Options pullerOptions(const Config& config, prometheus::Registry* metrics);

using core::parseDuration;

}  // namespace agent
