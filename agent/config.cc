#include "agent/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>

#include "core/http/head.h"
#include "core/http/url.h"
#include "core/util/version.h"

namespace agent {

using namespace core;

namespace {

// Bool flags that upstream's webhook may pass as two words ("--flag false").
const std::set<std::string, std::less<>> kBoolFlags = {"--enable-batcher", "--enable-puller",
                                                       "--logger-tls-skip-verify",
                                                       "--log-all-responses", "--io-uring"};

// Joins "--bool-flag true|false" into "--bool-flag=true|false" (DECISIONS §1), and splits
// "--name=" into "--name" "" (CLI11 would otherwise take the next argument's value).
std::vector<std::string> normaliseArgs(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() > 3 && arg.starts_with("--") && arg.back() == '=' &&
        arg.find('=') == arg.size() - 1) {
      arg.pop_back();
      args.push_back(std::move(arg));
      args.emplace_back();
      continue;
    }
    if (kBoolFlags.contains(arg) && i + 1 < argc) {
      std::string next = argv[i + 1];
      if (next == "true" || next == "false") {
        arg += "=" + next;
        ++i;
      }
    }
    args.push_back(std::move(arg));
  }
  return args;
}

std::optional<long long> parseInt(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

struct Failure {
  std::string message;
};

int positiveInt(const std::string& flag, const std::string& text) {
  auto v = parseInt(text);
  if (!v || *v <= 0 || *v > 1'000'000'000) {
    throw Failure{"invalid value \"" + text + "\" for " + flag + ": must be a positive integer"};
  }
  return static_cast<int>(*v);
}

Duration duration(const std::string& flag, const std::string& text) {
  auto d = parseDuration(text);
  if (!d || d->count() < 0) {
    throw Failure{"invalid value \"" + text + "\" for " + flag +
                  ": must be a duration such as 500ms, 30s or 1m30s"};
  }
  return *d;
}

uint16_t port(const std::string& flag, long long value, bool zeroAllowed) {
  if (value < (zeroAllowed ? 0 : 1) || value > 65535) {
    throw Failure{"invalid value \"" + std::to_string(value) + "\" for " + flag +
                  ": must be a TCP port (1-65535)"};
  }
  return static_cast<uint16_t>(value);
}

// Splits comma-separated values as pflag's string slices do (repeatable flags accumulate).
std::vector<std::string> splitList(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (const auto& item : raw) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t comma = item.find(',', start);
      std::string part =
          item.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace

ParseResult parseConfig(int argc, const char* const* argv) {
  Config c;
  CLI::App app{"kserve-agent: the KServe model-server sidecar (proxy, batcher, logger, puller)",
               "kserve-agent"};
  app.set_help_flag("-h,--help", "Print every flag with its default and exit");
  app.set_version_flag("--version", std::string(kVersion));
  app.allow_extras(false);
  app.option_defaults()->always_capture_default();

  std::string portText = "9081";
  long long componentPort = c.componentPort;
  std::string maxBatchSize = "32";
  std::string maxLatency = "5000";
  std::string batcherTimeout = "60s";
  std::string logBatchInterval = "0";
  std::vector<std::string> metadataHeaders;
  std::vector<std::string> metadataAnnotations;
  std::string quietPeriod = "30s";
  std::string drainTimeout = "30s";
  long long metricsPort = 0;
  std::string headerTimeout = "60s";
  std::string idleTimeout = "180s";
  std::string writeTimeout = "60s";
  std::string upstreamConnectTimeout = "5s";
  std::string upstreamTimeout = "300s";
  std::string logTimeout = "10s";

  // Upstream flags: names, types and defaults as the Go agent.
  app.add_option("--port", portText, "Agent port")->group("Proxy");
  app.add_option("--component-port", componentPort, "Model server port (on 127.0.0.1)")
      ->group("Proxy");
  app.add_flag("--enable-batcher", c.enableBatcher, "Batch :predict requests")->group("Batcher");
  app.add_option("--max-batchsize", maxBatchSize, "Flush a batch at this many instances")
      ->group("Batcher");
  app.add_option("--max-latency", maxLatency, "Flush a batch this many ms after its first request")
      ->group("Batcher");
  app.add_flag("--enable-puller", c.enablePuller, "Pull models listed in models.json")
      ->group("Puller");
  app.add_option("--config-dir", c.configDir, "Directory holding models.json")->group("Puller");
  app.add_option("--model-dir", c.modelDir, "Directory models are downloaded into")
      ->group("Puller");
  app.add_option("--log-url", c.logUrl, "CloudEvents sink URL; empty disables the logger")
      ->group("Logger");
  app.add_option("--workers", c.workers, "Concurrent event deliveries")->group("Logger");
  app.add_option("--source-uri", c.sourceUri,
                 "CloudEvent source (default http://localhost:<port>/)")
      ->group("Logger");
  app.add_option("--log-mode", c.logMode, "all, request or response")->group("Logger");
  app.add_option("--log-store-path", c.logStorePath, "Blob store path (accepted; not supported)")
      ->group("Logger");
  app.add_option("--log-store-format", c.logStoreFormat, "Blob store format (accepted)")
      ->group("Logger");
  app.add_option("--log-marshaller-url", c.logMarshallerUrl, "Marshaller URL (accepted)")
      ->group("Logger");
  app.add_option("--log-marshaller-port", c.logMarshallerPort, "Marshaller port (accepted)")
      ->group("Logger");
  app.add_option("--log-batch-size", c.logBatchSize, "Blob batch size (accepted)")->group("Logger");
  app.add_option("--log-batch-interval", logBatchInterval, "Blob batch interval (accepted)")
      ->group("Logger");
  app.add_option("--inference-service", c.inferenceService, "CloudEvent inferenceservicename")
      ->group("Logger");
  app.add_option("--namespace", c.namespace_, "CloudEvent namespace")->group("Logger");
  app.add_option("--endpoint", c.endpoint, "CloudEvent endpoint")->group("Logger");
  app.add_option("--component", c.component, "CloudEvent component")->group("Logger");
  app.add_option("--metadata-headers", metadataHeaders,
                 "Request headers copied into the CloudEvent metadata (comma-separated)")
      ->group("Logger");
  app.add_option("--metadata-annotations", metadataAnnotations,
                 "key=value pairs sent as CloudEvent annotations (comma-separated)")
      ->group("Logger");
  app.add_option("--logger-ca-cert-file", c.loggerCaCertFile,
                 "CA bundle file name under /etc/tls/logger")
      ->group("Logger");
  app.add_flag("--logger-tls-skip-verify", c.loggerTlsSkipVerify,
               "Do not verify the sink's TLS certificate")
      ->group("Logger");

  // Ours.
  app.add_option("--batcher-timeout", batcherTimeout, "Timeout of one merged model call")
      ->group("Batcher");
  app.add_option("--puller-concurrency", c.pullerConcurrency, "Models downloaded in parallel")
      ->group("Puller");
  app.add_option("--puller-retries", c.pullerRetries,
                 "Retries of a failed model operation, after the first attempt")
      ->check(CLI::NonNegativeNumber)
      ->group("Puller");
  app.add_flag("--log-all-responses", c.logAllResponses,
               "Log non-200 responses too, with a statuscode extension")
      ->group("Logger");
  app.add_option("--log-queue-events", c.logQueueEvents, "Events held for delivery at most")
      ->check(CLI::PositiveNumber)
      ->group("Logger");
  app.add_option("--log-queue-bytes", c.logQueueBytes, "Event bytes held for delivery at most")
      ->check(CLI::PositiveNumber)
      ->group("Logger");
  app.add_option("--log-timeout", logTimeout, "Timeout of one event delivery")->group("Logger");
  app.add_option("--log-retries", c.logRetries, "Delivery attempts per event")->group("Logger");
  app.add_option("--logger-ca-cert-dir", c.loggerCaCertDir, "Directory of the CA bundle file")
      ->group("Logger");
  app.add_option("--quiet-period", quietPeriod,
                 "After SIGTERM, wait this long without new requests before closing")
      ->group("Operations");
  app.add_option("--drain-timeout", drainTimeout,
                 "After the quiet period, bound for in-flight requests and module flushes")
      ->group("Operations");
  app.add_option("--unix-socket", c.unixSocket, "Unix socket ('@' = abstract); empty disables")
      ->group("Operations");
  app.add_option("--metrics-port", metricsPort, "Prometheus metrics port; 0 disables")
      ->group("Operations");
  app.add_option("--log-level", c.logLevel, "trace, debug, info, warn, error (env KSA_LOG_LEVEL)")
      ->group("Operations");
  app.add_option("--threads", c.threads, "Event loops (SO_REUSEPORT listeners)")
      ->group("Operations");
  app.add_flag("--io-uring", c.ioUring,
               "Send each poll phase's writes in one io_uring call where the kernel allows it")
      ->group("Operations");
  app.add_option("--max-header-bytes", c.maxHeaderBytes, "Request head size limit (431)")
      ->check(CLI::PositiveNumber)
      ->group("Limits");
  app.add_option("--max-header-count", c.maxHeaderCount, "Request header count limit (431)")
      ->check(CLI::PositiveNumber)
      ->group("Limits");
  app.add_option("--max-request-body-bytes", c.maxRequestBodyBytes, "Request body limit (413)")
      ->check(CLI::PositiveNumber)
      ->group("Limits");
  app.add_option("--max-buffered-body-bytes", c.maxBufferedBodyBytes,
                 "Limit for bodies a module reads whole, e.g. batched requests (413)")
      ->check(CLI::PositiveNumber)
      ->group("Limits");
  app.add_option("--max-connections", c.maxConnections, "Concurrent client connections")
      ->check(CLI::PositiveNumber)
      ->group("Limits");
  app.add_option("--max-upstream-connections", c.maxUpstreamConnections,
                 "Connections to the model server")
      ->check(CLI::PositiveNumber)
      ->group("Limits");
  app.add_option("--header-timeout", headerTimeout, "Time to receive a request head")
      ->group("Limits");
  app.add_option("--idle-timeout", idleTimeout, "Idle keep-alive client connections close after")
      ->group("Limits");
  app.add_option("--write-timeout", writeTimeout, "Client write stall limit")->group("Limits");
  app.add_option("--upstream-connect-timeout", upstreamConnectTimeout,
                 "Connect timeout to the model server (502)")
      ->group("Limits");
  app.add_option("--upstream-timeout", upstreamTimeout,
                 "Wait for the model server's response head or next body bytes (504); 0: none")
      ->group("Limits");

  // pflag's rule: a flag given again overrides the earlier value; lists accumulate.
  for (CLI::Option* option : app.get_options()) {
    if (option->get_items_expected_max() <= 1) {
      option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }

  std::vector<std::string> args = normaliseArgs(argc, argv);
  std::reverse(args.begin(), args.end());
  ParseResult result;
  try {
    app.parse(args);
    c.port = port("--port", parseInt(portText).value_or(-1), false);
    c.componentPort = port("--component-port", componentPort, false);
    c.metricsPort = port("--metrics-port", metricsPort, true);
    // Upstream validates these only when the batcher is on; we always do (DECISIONS §1).
    c.maxBatchSize = positiveInt("--max-batchsize", maxBatchSize);
    c.maxLatencyMs = positiveInt("--max-latency", maxLatency);
    c.batcherTimeout = duration("--batcher-timeout", batcherTimeout);
    c.logBatchInterval = duration("--log-batch-interval", logBatchInterval);
    c.quietPeriod = duration("--quiet-period", quietPeriod);
    c.drainTimeout = duration("--drain-timeout", drainTimeout);
    c.headerTimeout = duration("--header-timeout", headerTimeout);
    c.idleTimeout = duration("--idle-timeout", idleTimeout);
    c.writeTimeout = duration("--write-timeout", writeTimeout);
    c.upstreamConnectTimeout = duration("--upstream-connect-timeout", upstreamConnectTimeout);
    c.upstreamTimeout = duration("--upstream-timeout", upstreamTimeout);
    c.logTimeout = duration("--log-timeout", logTimeout);
    if (c.logMode != "all" && c.logMode != "request" && c.logMode != "response") {
      throw Failure{"invalid value \"" + c.logMode +
                    "\" for --log-mode: must be all, request or response"};
    }
    if (c.workers < 1 || c.workers > 1000) {
      throw Failure{"invalid value \"" + std::to_string(c.workers) +
                    "\" for --workers: must be between 1 and 1000"};
    }
    if (c.threads < 1 || c.threads > 256) {
      throw Failure{"invalid value \"" + std::to_string(c.threads) +
                    "\" for --threads: must be between 1 and 256"};
    }
    if (c.pullerConcurrency < 1) {
      throw Failure{"invalid value for --puller-concurrency: must be at least 1"};
    }
    if (c.logRetries < 1) throw Failure{"invalid value for --log-retries: must be at least 1"};
    static const std::set<std::string, std::less<>> kLevels = {"trace", "debug", "info",
                                                               "warn",  "error", "off"};
    if (const char* env = std::getenv("KSA_LOG_LEVEL"); env != nullptr && *env != '\0') {
      c.logLevel = env;
    }
    if (!kLevels.contains(c.logLevel)) {
      throw Failure{"invalid value \"" + c.logLevel +
                    "\" for --log-level: must be trace, debug, info, warn, error or off"};
    }
    c.metadataHeaders = splitList(metadataHeaders);
    c.metadataAnnotations = splitList(metadataAnnotations);
    for (const auto& item : c.metadataAnnotations) {
      if (item.find('=') == std::string::npos) {
        throw Failure{"invalid value \"" + item +
                      "\" for --metadata-annotations: expected key=value"};
      }
    }
    if (!c.logUrl.empty()) {
      if (std::string problem = httpUrlProblem(c.logUrl); !problem.empty()) {
        throw Failure{"invalid value \"" + c.logUrl + "\" for --log-url: " + problem};
      }
    }
    if (c.sourceUri.empty()) c.sourceUri = "http://localhost:" + std::to_string(c.port) + "/";
    result.config = std::move(c);
  } catch (const CLI::CallForHelp&) {
    result.message = app.help();
  } catch (const CLI::CallForVersion&) {
    result.message = std::string("kserve-agent ") + std::string(kVersion) + "\n";
  } catch (const CLI::ParseError& e) {
    result.exitCode = 2;
    result.message = std::string("kserve-agent: ") + e.what() + "\nRun with --help for usage.";
  } catch (const Failure& f) {
    result.exitCode = 2;
    result.message = "kserve-agent: " + f.message + "\nRun with --help for usage.";
  }
  return result;
}

core::ServerLimits serverLimits(const Config& config) {
  core::ServerLimits limits;
  limits.maxHeaderBytes = config.maxHeaderBytes;
  limits.maxHeaderCount = config.maxHeaderCount;
  limits.maxRequestBodyBytes = config.maxRequestBodyBytes;
  limits.maxBufferedBodyBytes = config.maxBufferedBodyBytes;
  limits.headerTimeout = config.headerTimeout;
  limits.idleTimeout = config.idleTimeout;
  limits.writeTimeout = config.writeTimeout;
  return limits;
}

batcher::Options batcherOptions(const Config& config, prometheus::Registry* metrics) {
  batcher::Options options;
  options.maxBatchSize = config.maxBatchSize;
  options.maxLatencyMs = config.maxLatencyMs;
  options.timeout = config.batcherTimeout;
  options.maxBodyBytes = config.maxBufferedBodyBytes;
  options.metrics = metrics;
  return options;
}

logger::Options loggerOptions(const Config& config, prometheus::Registry* metrics) {
  logger::Options options;
  options.logUrl = config.logUrl;
  options.workers = config.workers;
  options.sourceUri = config.sourceUri;
  options.logMode = config.logMode;
  options.inferenceService = config.inferenceService;
  options.namespace_ = config.namespace_;
  options.endpoint = config.endpoint;
  options.component = config.component;
  options.metadataHeaders = config.metadataHeaders;
  options.metadataAnnotations = config.metadataAnnotations;
  options.loggerCaCertFile = config.loggerCaCertFile;
  options.loggerCaCertDir = config.loggerCaCertDir;
  options.loggerTlsSkipVerify = config.loggerTlsSkipVerify;
  options.logAllResponses = config.logAllResponses;
  options.logQueueEvents = config.logQueueEvents;
  options.logQueueBytes = config.logQueueBytes;
  options.logTimeout = config.logTimeout;
  options.logRetries = config.logRetries;
  options.listenPort = config.port;
  options.metrics = metrics;
  return options;
}

puller::Options pullerOptions(const Config& config, prometheus::Registry* metrics) {
  puller::Options options;
  options.configDir = config.configDir;
  options.modelDir = config.modelDir;
  options.componentPort = config.componentPort;
  options.concurrency = config.pullerConcurrency;
  options.retries = config.pullerRetries;
  options.metrics = metrics;
  return options;
}

}  // namespace agent
