#include "agent/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <limits>
#include <set>

#include "core/http/head.h"
#include "core/http/url.h"
#include "core/util/version.h"
#include "logger/blob/format.h"
#include "logger/blob/key.h"

namespace agent {

using namespace core;

namespace {

struct Failure {
  std::string message;
};

[[noreturn]] void invalid(const std::string& flag, const std::string& text,
                          const std::string& what) {
  throw Failure{"invalid value \"" + text + "\" for " + flag + ": must be " + what};
}

// A blob --log-url (s3://, gs://, abfs://) and its flags, checked as far as they can be without
// the storage library (credentials are checked when the logger starts). Upstream started and
// then discarded every batch with an error when these were wrong.
void checkBlobSink(const Config& c) {
  if (c.logStorePath.empty()) {
    throw Failure{"--log-url " + std::string(c.logUrl.substr(0, c.logUrl.find(':'))) +
                  ":// needs --log-store-path"};
  }
  logger::blob::BlobLocation location;
  std::string error;
  if (!logger::blob::parseBlobUrl(c.logUrl, location, error)) {
    throw Failure{"invalid value \"" + c.logUrl + "\" for --log-url: " + error};
  }
  if (!logger::blob::parseFormat(c.logStoreFormat)) {
    invalid("--log-store-format", c.logStoreFormat, "json, csv or parquet");
  }
  std::string directory;
  if (!logger::blob::objectDirectory(location.prefix, c.namespace_, c.inferenceService, c.component,
                                     c.logStorePath, directory, error)) {
    throw Failure{"invalid value \"" + c.logStorePath + "\" for --log-store-path: " + error};
  }
}

// A decimal integer in [min, max], or a Failure naming the text as typed.
long long integer(const std::string& flag, const std::string& text, long long min, long long max,
                  const std::string& what) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || stop != end || value < min || value > max) {
    invalid(flag, text, what);
  }
  return value;
}

size_t positiveSize(const std::string& flag, const std::string& text) {
  return static_cast<size_t>(
      integer(flag, text, 1, std::numeric_limits<long long>::max(), "a positive integer"));
}

uint16_t port(const std::string& flag, const std::string& text, bool zeroAllowed) {
  return static_cast<uint16_t>(
      integer(flag, text, zeroAllowed ? 0 : 1, 65535,
              zeroAllowed ? "a TCP port (0-65535)" : "a TCP port (1-65535)"));
}

Duration duration(const std::string& flag, const std::string& text) {
  auto d = parseDuration(text);
  if (!d || d->count() < 0) invalid(flag, text, "a duration such as 500ms, 30s or 1m30s");
  return *d;
}

// Exactly what Go's strconv.ParseBool takes, as upstream's pflag bool flags do.
bool boolean(const std::string& flag, const std::string& text) {
  static const std::set<std::string, std::less<>> kTrue = {"1", "t", "T", "TRUE", "true", "True"};
  static const std::set<std::string, std::less<>> kFalse = {"0",     "f",     "F",
                                                            "FALSE", "false", "False"};
  if (kTrue.contains(text)) return true;
  if (kFalse.contains(text)) return false;
  invalid(flag, text, "a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)");
}

std::string durationText(Duration d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                               : std::to_string(d.count()) + "ms";
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

// One flag: what --help says of it, and how a value given on the command line is taken. Each
// value is converted when it is met, so a malformed one fails even when the flag is given again
// later (as with pflag).
struct Flag {
  std::string name;
  std::string group;
  std::string help;
  std::string type;  // what it takes, as --help shows it
  std::string defaultText;
  std::function<void(Config&, const std::string& flag, const std::string& value)> set;
  bool isBool() const { return type == "BOOL"; }
};

// The lists accumulate here before they are split.
struct Lists {
  std::vector<std::string> metadataHeaders;
  std::vector<std::string> metadataAnnotations;
};

std::vector<Flag> flagTable(Lists& lists) {
  const Config d;
  using F = std::function<void(Config&, const std::string&, const std::string&)>;
  auto text = [](std::string Config::*member) -> F {
    return [member](Config& c, const std::string&, const std::string& v) { c.*member = v; };
  };
  auto flagBool = [](bool Config::*member) -> F {
    return [member](Config& c, const std::string& f, const std::string& v) {
      c.*member = boolean(f, v);
    };
  };
  auto positive = [](size_t Config::*member) -> F {
    return [member](Config& c, const std::string& f, const std::string& v) {
      c.*member = positiveSize(f, v);
    };
  };
  auto time = [](Duration Config::*member) -> F {
    return [member](Config& c, const std::string& f, const std::string& v) {
      c.*member = duration(f, v);
    };
  };
  auto list = [](std::vector<std::string>& into) -> F {
    return [&into](Config&, const std::string&, const std::string& v) { into.push_back(v); };
  };
  auto whole = [](int Config::*member, long long min, long long max, const char* what) -> F {
    return [=](Config& c, const std::string& f, const std::string& v) {
      c.*member = static_cast<int>(integer(f, v, min, max, what));
    };
  };
  auto tcpPort = [](uint16_t Config::*member, bool zeroAllowed) -> F {
    return [=](Config& c, const std::string& f, const std::string& v) {
      c.*member = port(f, v, zeroAllowed);
    };
  };
  constexpr long long kMaxCount = 1'000'000'000;
  constexpr long long kIntMin = std::numeric_limits<int>::min();
  constexpr long long kIntMax = std::numeric_limits<int>::max();
  const std::string ints = "INT";
  return {
      // Upstream flags: names and defaults as the Go agent.
      {"--port", "Proxy", "Agent port", "PORT", std::to_string(d.port),
       tcpPort(&Config::port, false)},
      {"--component-port", "Proxy", "Model server port (on 127.0.0.1)", "PORT",
       std::to_string(d.componentPort), tcpPort(&Config::componentPort, false)},
      {"--enable-batcher", "Batcher", "Batch :predict requests", "BOOL", "false",
       flagBool(&Config::enableBatcher)},
      {"--max-batchsize", "Batcher", "Flush a batch at this many instances", ints,
       std::to_string(d.maxBatchSize),
       whole(&Config::maxBatchSize, 1, kMaxCount, "a positive integer")},
      {"--max-latency", "Batcher", "Flush a batch this many ms after its first request", ints,
       std::to_string(d.maxLatencyMs),
       whole(&Config::maxLatencyMs, 1, kMaxCount, "a positive integer")},
      {"--enable-puller", "Puller", "Pull models listed in models.json", "BOOL", "false",
       flagBool(&Config::enablePuller)},
      {"--config-dir", "Puller", "Directory holding models.json", "DIR", d.configDir,
       text(&Config::configDir)},
      {"--model-dir", "Puller", "Directory models are downloaded into", "DIR", d.modelDir,
       text(&Config::modelDir)},
      {"--log-url", "Logger",
       "CloudEvents sink (http, https) or blob store (s3, gs, abfs) URL; empty: no logger", "URL",
       "", text(&Config::logUrl)},
      {"--workers", "Logger", "Concurrent event deliveries (1-1000)", ints,
       std::to_string(d.workers),
       whole(&Config::workers, 1, 1000, "an integer between 1 and 1000")},
      {"--source-uri", "Logger", "CloudEvent source (default http://localhost:<port>/)", "URI", "",
       text(&Config::sourceUri)},
      {"--log-mode", "Logger", "all, request or response", "MODE", d.logMode,
       text(&Config::logMode)},
      {"--log-store-path", "Logger", "Blob sinks: path below the URL's prefix (required)", "TEXT",
       "", text(&Config::logStorePath)},
      {"--log-store-format", "Logger", "Blob sinks: json, csv or parquet", "TEXT", d.logStoreFormat,
       text(&Config::logStoreFormat)},
      {"--log-marshaller-url", "Logger", "Blob sinks: marshaller to POST batches to", "URL",
       d.logMarshallerUrl, text(&Config::logMarshallerUrl)},
      {"--log-marshaller-port", "Logger", "Blob sinks: the embedded marshaller's port", ints,
       std::to_string(d.logMarshallerPort),
       whole(&Config::logMarshallerPort, kIntMin, kIntMax, "an integer")},
      {"--log-batch-size", "Logger", "Blob sinks: records per object", ints,
       std::to_string(d.logBatchSize),
       whole(&Config::logBatchSize, kIntMin, kIntMax, "an integer")},
      {"--log-batch-interval", "Logger", "Blob sinks: longest wait of a partial batch", "DURATION",
       "0", time(&Config::logBatchInterval)},
      {"--inference-service", "Logger", "CloudEvent inferenceservicename", "TEXT", "",
       text(&Config::inferenceService)},
      {"--namespace", "Logger", "CloudEvent namespace", "TEXT", "", text(&Config::namespace_)},
      {"--endpoint", "Logger", "CloudEvent endpoint", "TEXT", "", text(&Config::endpoint)},
      {"--component", "Logger", "CloudEvent component", "TEXT", "", text(&Config::component)},
      {"--metadata-headers", "Logger",
       "Request headers copied into the CloudEvent metadata (comma-separated; repeatable)", "LIST",
       "", list(lists.metadataHeaders)},
      {"--metadata-annotations", "Logger",
       "key=value pairs sent as CloudEvent annotations (comma-separated; repeatable)", "LIST", "",
       list(lists.metadataAnnotations)},
      {"--logger-ca-cert-file", "Logger", "CA bundle file name under --logger-ca-cert-dir", "FILE",
       d.loggerCaCertFile, text(&Config::loggerCaCertFile)},
      {"--logger-tls-skip-verify", "Logger", "Do not verify the sink's TLS certificate", "BOOL",
       "false", flagBool(&Config::loggerTlsSkipVerify)},

      // Ours.
      {"--batcher-timeout", "Batcher", "Timeout of one merged model call", "DURATION",
       durationText(d.batcherTimeout), time(&Config::batcherTimeout)},
      {"--puller-concurrency", "Puller", "Models downloaded in parallel (at least 1)", ints,
       std::to_string(d.pullerConcurrency),
       whole(&Config::pullerConcurrency, 1, kIntMax, "an integer of at least 1")},
      {"--puller-retries", "Puller", "Retries of a failed model operation, after the first attempt",
       ints, std::to_string(d.pullerRetries),
       whole(&Config::pullerRetries, 0, kIntMax, "an integer of at least 0")},
      {"--log-all-responses", "Logger", "Log non-200 responses too, with a statuscode extension",
       "BOOL", "false", flagBool(&Config::logAllResponses)},
      {"--log-queue-events", "Logger", "Events held for delivery at most", ints,
       std::to_string(d.logQueueEvents), positive(&Config::logQueueEvents)},
      {"--log-queue-bytes", "Logger", "Event body bytes held for delivery at most", ints,
       std::to_string(d.logQueueBytes), positive(&Config::logQueueBytes)},
      {"--log-timeout", "Logger", "Timeout of one event delivery", "DURATION",
       durationText(d.logTimeout), time(&Config::logTimeout)},
      {"--log-retries", "Logger", "Delivery attempts per event (at least 1)", ints,
       std::to_string(d.logRetries),
       whole(&Config::logRetries, 1, kIntMax, "an integer of at least 1")},
      {"--logger-ca-cert-dir", "Logger", "Directory of the CA bundle file", "DIR",
       d.loggerCaCertDir, text(&Config::loggerCaCertDir)},
      {"--quiet-period", "Operations",
       "After SIGTERM, wait this long without new requests before closing", "DURATION",
       durationText(d.quietPeriod), time(&Config::quietPeriod)},
      {"--drain-timeout", "Operations",
       "After the quiet period, bound for in-flight requests and module flushes", "DURATION",
       durationText(d.drainTimeout), time(&Config::drainTimeout)},
      {"--unix-socket", "Operations", "Unix socket ('@' = abstract); empty disables", "PATH",
       d.unixSocket, text(&Config::unixSocket)},
      {"--metrics-port", "Operations", "Prometheus metrics port; 0 disables", "PORT",
       std::to_string(d.metricsPort), tcpPort(&Config::metricsPort, true)},
      {"--log-level", "Operations", "trace, debug, info, warn, error, off (env KSA_LOG_LEVEL)",
       "LEVEL", d.logLevel, text(&Config::logLevel)},
      {"--threads", "Operations", "Event loops (SO_REUSEPORT listeners; 1-256)", ints,
       std::to_string(d.threads), whole(&Config::threads, 1, 256, "an integer between 1 and 256")},
      {"--io-uring", "Operations",
       "Send each poll phase's writes in one io_uring call where the kernel allows it", "BOOL",
       "true", flagBool(&Config::ioUring)},
      {"--max-header-bytes", "Limits", "Request head size limit (431)", ints,
       std::to_string(d.maxHeaderBytes), positive(&Config::maxHeaderBytes)},
      {"--max-header-count", "Limits", "Request header count limit (431)", ints,
       std::to_string(d.maxHeaderCount), positive(&Config::maxHeaderCount)},
      {"--max-request-body-bytes", "Limits", "Request body limit (413)", ints,
       std::to_string(d.maxRequestBodyBytes), positive(&Config::maxRequestBodyBytes)},
      {"--max-buffered-body-bytes", "Limits",
       "Limit for bodies a module reads whole, e.g. batched requests (413)", ints,
       std::to_string(d.maxBufferedBodyBytes), positive(&Config::maxBufferedBodyBytes)},
      {"--max-connections", "Limits", "Concurrent client connections", ints,
       std::to_string(d.maxConnections), positive(&Config::maxConnections)},
      {"--max-upstream-connections", "Limits", "Connections to the model server", ints,
       std::to_string(d.maxUpstreamConnections), positive(&Config::maxUpstreamConnections)},
      {"--header-timeout", "Limits", "Time to receive a request head", "DURATION",
       durationText(d.headerTimeout), time(&Config::headerTimeout)},
      {"--idle-timeout", "Limits", "Idle keep-alive client connections close after", "DURATION",
       durationText(d.idleTimeout), time(&Config::idleTimeout)},
      {"--write-timeout", "Limits", "Client write stall limit", "DURATION",
       durationText(d.writeTimeout), time(&Config::writeTimeout)},
      {"--upstream-connect-timeout", "Limits", "Connect timeout to the model server (502)",
       "DURATION", durationText(d.upstreamConnectTimeout), time(&Config::upstreamConnectTimeout)},
      {"--upstream-timeout", "Limits",
       "Wait for the model server's response head or next body bytes (504); 0: none", "DURATION",
       durationText(d.upstreamTimeout), time(&Config::upstreamTimeout)},
  };
}

// --help, formatted by CLI11 from the table (CLI11 parses nothing: its conversions would name
// the value it made of the text, or word errors its own way).
std::string helpText(const std::vector<Flag>& flags) {
  CLI::App app{"kserve-agent: the KServe model-server sidecar (proxy, batcher, logger, puller)",
               "kserve-agent"};
  app.set_help_flag("-h,--help", "Print every flag with its default and exit");
  app.set_version_flag("--version", std::string(kVersion));
  for (const Flag& flag : flags) {
    app.add_option(flag.name, flag.help)
        ->type_name(flag.type)
        ->default_str(flag.defaultText)
        ->group(flag.group);
  }
  app.footer(
      "Values: --name VALUE or --name=VALUE; a flag given twice takes the last value, LIST flags\n"
      "accumulate. A BOOL flag alone means true; --name=VALUE takes 1, t, T, TRUE, true, True,\n"
      "0, f, F, FALSE, false or False, and --name true or --name false as two words also work.\n"
      "DURATION: 500ms, 30s, 1m30s, 2h (0: none where the flag says so).");
  return app.help();
}

}  // namespace

ParseResult parseConfig(int argc, const char* const* argv) {
  Config c;
  Lists lists;
  const std::vector<Flag> flags = flagTable(lists);
  ParseResult result;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        result.message = helpText(flags);
        return result;
      }
      if (arg == "--version") {
        result.message = std::string("kserve-agent ") + std::string(kVersion) + "\n";
        return result;
      }
      if (!arg.starts_with("-") || arg == "-" || arg == "--") {
        throw Failure{"unexpected argument \"" + arg + "\": every setting is a --flag"};
      }
      size_t equals = arg.find('=');
      std::string name = arg.substr(0, equals);
      const auto flag =
          std::find_if(flags.begin(), flags.end(), [&](const Flag& f) { return f.name == name; });
      if (flag == flags.end()) throw Failure{"unknown flag \"" + name + "\""};
      std::string value;
      if (equals != std::string::npos) {
        value = arg.substr(equals + 1);
      } else if (flag->isBool()) {
        // Upstream's webhook writes "--flag false" as two words and means false (DECISIONS §1).
        value = "true";
        if (i + 1 < argc &&
            (std::string_view(argv[i + 1]) == "true" || std::string_view(argv[i + 1]) == "false")) {
          value = argv[++i];
        }
      } else if (i + 1 < argc) {
        // As pflag: the next word is the value, whatever it looks like.
        value = argv[++i];
      } else {
        throw Failure{"missing value for " + name + " (" + flag->type + ")"};
      }
      flag->set(c, name, value);
    }
    if (c.logMode != "all" && c.logMode != "request" && c.logMode != "response") {
      invalid("--log-mode", c.logMode, "all, request or response");
    }
    static const std::set<std::string, std::less<>> kLevels = {"trace", "debug", "info",
                                                               "warn",  "error", "off"};
    if (const char* env = std::getenv("KSA_LOG_LEVEL"); env != nullptr && *env != '\0') {
      c.logLevel = env;
    }
    if (!kLevels.contains(c.logLevel)) {
      invalid("--log-level", c.logLevel, "trace, debug, info, warn, error or off");
    }
    c.metadataHeaders = splitList(lists.metadataHeaders);
    c.metadataAnnotations = splitList(lists.metadataAnnotations);
    for (const auto& item : c.metadataAnnotations) {
      if (item.find('=') == std::string::npos) invalid("--metadata-annotations", item, "key=value");
    }
    if (logger::blob::looksLikeBlobUrl(c.logUrl)) {
      checkBlobSink(c);
    } else if (!c.logUrl.empty()) {
      if (std::string problem = httpUrlProblem(c.logUrl); !problem.empty()) {
        throw Failure{"invalid value \"" + c.logUrl + "\" for --log-url: " + problem};
      }
    }
    if (c.sourceUri.empty()) c.sourceUri = "http://localhost:" + std::to_string(c.port) + "/";
    result.config = std::move(c);
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
  logger::Options options = config;
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
