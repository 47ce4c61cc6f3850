#include "router/config.h"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include "core/http/url.h"
#include "core/util/duration.h"
#include "core/util/version.h"

namespace router {

namespace {

struct Failure {
  std::string message;
};

[[noreturn]] void invalid(const std::string& flag, const std::string& text,
                          const std::string& what) {
  throw Failure{"invalid value \"" + text + "\" for " + flag + ": must be " + what};
}

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

struct Flag {
  std::string type;  // what --help shows
  std::string defaultText;
  std::string help;
  std::function<void(RouterConfig&, const std::string& flag, const std::string& value)> set;
  // A boolean flag alone means true (`--name`); `--name=false` turns it off, as Go's flags.
  bool boolean = false;
};

// Go's strconv.ParseBool spellings.
bool boolean(const std::string& flag, const std::string& text) {
  static const std::set<std::string, std::less<>> kTrue = {"1", "t", "T", "TRUE", "true", "True"};
  static const std::set<std::string, std::less<>> kFalse = {"0",     "f",     "F",
                                                            "FALSE", "false", "False"};
  if (kTrue.contains(text)) return true;
  if (!kFalse.contains(text)) invalid(flag, text, "true or false");
  return false;
}

std::string durationText(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                               : std::to_string(d.count()) + "ms";
}

std::map<std::string, Flag> flagTable() {
  RouterConfig defaults;
  auto size = [](size_t RouterConfig::*field) {
    return [field](RouterConfig& c, const std::string& flag, const std::string& value) {
      c.*field = static_cast<size_t>(
          integer(flag, value, 1, std::numeric_limits<long long>::max(), "a positive integer"));
    };
  };
  auto duration = [](std::chrono::milliseconds RouterConfig::*field, bool zeroAllowed) {
    return
        [field, zeroAllowed](RouterConfig& c, const std::string& flag, const std::string& value) {
          auto d = core::parseDuration(value);
          if (!d || d->count() < 0 || (!zeroAllowed && d->count() == 0)) {
            invalid(flag, value,
                    zeroAllowed ? "a duration such as 500ms, 30s or 1m30s"
                                : "a positive duration such as 500ms, 30s or 1m30s");
          }
          c.*field = *d;
        };
  };
  return {
      {"--graph-json",
       {"string", "", "the InferenceGraphSpec as JSON, as the KServe controller writes it",
        [](RouterConfig& c, const std::string&, const std::string& v) { c.graphJson = v; }}},
      {"--port",
       {"int", "8080", "listen port (all interfaces, IPv4 and IPv6)",
        [](RouterConfig& c, const std::string& flag, const std::string& v) {
          c.port = static_cast<uint16_t>(integer(flag, v, 1, 65535, "a TCP port (1-65535)"));
        }}},
      {"--drain-period",
       {"duration", durationText(defaults.drainPeriod),
        "after SIGTERM, /readyz fails while requests are still served this long",
        duration(&RouterConfig::drainPeriod, true)}},
      {"--drain-timeout",
       {"duration", durationText(defaults.drainTimeout),
        "then, how long in-flight requests may still take",
        duration(&RouterConfig::drainTimeout, false)}},
      {"--max-request-body-bytes",
       {"bytes", std::to_string(defaults.maxRequestBodyBytes), "request body limit (413)",
        size(&RouterConfig::maxRequestBodyBytes)}},
      {"--max-step-response-bytes",
       {"bytes", std::to_string(defaults.maxStepResponseBytes),
        "a step's answer longer than this fails the step (502)",
        size(&RouterConfig::maxStepResponseBytes)}},
      {"--max-connections",
       {"int", std::to_string(defaults.maxConnections), "concurrent client connections",
        size(&RouterConfig::maxConnections)}},
      {"--max-step-connections",
       {"int", std::to_string(defaults.maxStepConnections),
        "connections to one step service; more calls wait for one",
        size(&RouterConfig::maxStepConnections)}},
      {"--step-connect-timeout",
       {"duration", durationText(defaults.stepConnectTimeout),
        "resolving and connecting to a step service (502)",
        duration(&RouterConfig::stepConnectTimeout, false)}},
      {"--istio-probe-url",
       {"url", defaults.istioProbeUrl,
        "where the Istio sidecar answers 200 when the pod is in a mesh (https steps then go as "
        "http)",
        [](RouterConfig& c, const std::string& flag, const std::string& v) {
          if (std::string problem = core::httpUrlProblem(v); !problem.empty()) {
            invalid(flag, v, "an http URL (" + problem + ")");
          }
          c.istioProbeUrl = v;
        }}},
      {"--ca-file",
       {"path", "", "PEM certificates trusted for https steps besides the system's",
        [](RouterConfig& c, const std::string&, const std::string& v) { c.caFile = v; }}},
      {"--trace-context",
       {"bool", "true",
        "send the client's W3C traceparent (a fresh parent id per step call), tracestate and "
        "X-Request-Id to every step",
        [](RouterConfig& c, const std::string& flag, const std::string& v) {
          c.traceContext = boolean(flag, v);
        },
        true}},
      {"--metrics-port",
       {"int", "0", "serve Prometheus metrics at /metrics on this port (0: none)",
        [](RouterConfig& c, const std::string& flag, const std::string& v) {
          c.metricsPort = static_cast<uint16_t>(integer(flag, v, 0, 65535, "a TCP port (0-65535)"));
        }}},
      {"--stream-responses",
       {"bool", "false",
        "stream the answer of a step that is the graph's answer unchanged (SSE) with its "
        "Content-Type",
        [](RouterConfig& c, const std::string& flag, const std::string& v) {
          c.streamResponses = boolean(flag, v);
        },
        true}},
      {"--log-level",
       {"level", defaults.logLevel, "trace, debug, info, warn, error or off",
        [](RouterConfig& c, const std::string& flag, const std::string& v) {
          static const std::set<std::string, std::less<>> kLevels = {
              "trace", "debug", "info", "warn", "error", "critical", "off"};
          if (!kLevels.contains(v)) {
            invalid(flag, v, "one of trace, debug, info, warn, error, off");
          }
          c.logLevel = v;
        }}},
  };
}

std::string usage(const std::map<std::string, Flag>& flags) {
  std::string text =
      "Usage: kserve-router --graph-json '<InferenceGraphSpec JSON>' [flags]\n\n"
      "Runs a KServe InferenceGraph: every request (any path but /readyz) goes through the\n"
      "graph's root node. Environment: PROPAGATE_HEADERS (comma list of RE2 patterns).\n\nFlags:\n";
  for (const auto& [name, flag] : flags) {
    std::string left = "  " + name + " " + flag.type;
    left.resize(std::max<size_t>(left.size() + 2, 38), ' ');
    text += left + flag.help;
    if (!flag.defaultText.empty()) text += " (default " + flag.defaultText + ")";
    text += "\n";
  }
  text += "  -h, --help                          this text\n";
  text += "      --version                       the version\n";
  return text;
}

}  // namespace

RouterParseResult parseRouterConfig(int argc, const char* const* argv) {
  const std::map<std::string, Flag> flags = flagTable();
  RouterConfig config;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") return {std::nullopt, 0, usage(flags)};
      if (arg == "--version") {
        return {std::nullopt, 0, "kserve-router " + std::string(core::kVersion) + "\n"};
      }
      if (!arg.starts_with("--")) {
        throw Failure{"unexpected argument \"" + arg + "\": flags start with --"};
      }
      std::string name = arg;
      std::optional<std::string> value;
      if (size_t equals = arg.find('='); equals != std::string::npos) {
        name = arg.substr(0, equals);
        value = arg.substr(equals + 1);
      }
      auto flag = flags.find(name);
      if (flag == flags.end()) throw Failure{"unknown flag: " + name};
      if (!value && flag->second.boolean) value = "true";
      if (!value) {
        if (i + 1 >= argc) throw Failure{"flag needs a value: " + name};
        value = argv[++i];
      }
      flag->second.set(config, name, *value);
    }
    if (config.graphJson.empty()) throw Failure{"--graph-json is required"};
    // The environment overrides the flag, as the agent's KSA_LOG_LEVEL does, and is checked
    // the same way (spdlog would take an unknown level as "off").
    if (const char* level = std::getenv("KSR_LOG_LEVEL"); level != nullptr && *level != '\0') {
      flags.at("--log-level").set(config, "KSR_LOG_LEVEL", level);
    }
  } catch (const Failure& failure) {
    return {std::nullopt, 2,
            "kserve-router: " + failure.message + "\nRun 'kserve-router --help' for usage.\n"};
  }
  return {config, 0, ""};
}

}  // namespace router
