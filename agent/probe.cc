#include "agent/probe.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/forwarded.h"
#include "core/client/dial.h"

namespace agent {

using namespace core;

namespace {

using nlohmann::json;

constexpr auto kAggressiveInterval = std::chrono::milliseconds(50);
constexpr auto kAggressiveAttemptTimeout = std::chrono::milliseconds(100);
constexpr auto kAggressiveBudget = std::chrono::seconds(10);
// A probe with timeoutSeconds 0 still ends: the agent never hangs a kubelet probe forever.
constexpr auto kDefaultAttemptTimeout = std::chrono::seconds(10);

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::optional<uint16_t> portOf(const json& value, uint16_t componentPort) {
  if (value.is_number_integer()) {
    int port = value.get<int>();
    if (port > 0 && port < 65536) return static_cast<uint16_t>(port);
    return std::nullopt;
  }
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    int port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec == std::errc() && end == text.data() + text.size() && port > 0 && port < 65536) {
      return static_cast<uint16_t>(port);
    }
    // A named port ("http") names the model server's port in the pod spec.
    return componentPort;
  }
  return std::nullopt;
}

// A whole-number field of a probe (an int32 in the pod spec): `fallback` when absent or null,
// nullopt with `error` when it is anything but a number from 0 to 2^31-1.
std::optional<int> intField(const json& object, const char* name, int fallback,
                            std::string& error) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) {
    auto value = it->get<int64_t>();
    if (value >= 0 && value <= std::numeric_limits<int32_t>::max()) return static_cast<int>(value);
  }
  error = std::string("probe field ") + name + " must be a whole number from 0 to 2147483647";
  return std::nullopt;
}

// A text field of a probe: `fallback` when absent or null, nullopt with `error` when not text.
std::optional<std::string> stringField(const json& object, const char* name, std::string fallback,
                                       std::string& error) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  error = std::string("probe field ") + name + " must be a string";
  return std::nullopt;
}

std::optional<ProbeSpec> parseProbe(const json& j, uint16_t componentPort, std::string& error) {
  if (!j.is_object()) {
    error = "a probe must be a JSON object";
    return std::nullopt;
  }
  ProbeSpec spec;
  auto timeout = intField(j, "timeoutSeconds", 0, error);
  auto period = intField(j, "periodSeconds", 10, error);
  auto threshold = intField(j, "successThreshold", 1, error);
  if (!timeout || !period || !threshold) return std::nullopt;
  spec.timeoutSeconds = *timeout;
  spec.periodSeconds = *period;
  spec.successThreshold = std::max(1, *threshold);
  const json* handler = nullptr;
  if (j.contains("tcpSocket")) {
    spec.kind = ProbeSpec::Kind::Tcp;
    handler = &j["tcpSocket"];
  } else if (j.contains("httpGet")) {
    spec.kind = ProbeSpec::Kind::Http;
    handler = &j["httpGet"];
  } else if (j.contains("grpc")) {
    spec.kind = ProbeSpec::Kind::Grpc;
    handler = &j["grpc"];
  } else if (j.contains("exec")) {
    spec.kind = ProbeSpec::Kind::Exec;
    return spec;
  } else {
    spec.kind = ProbeSpec::Kind::None;
    return spec;
  }
  if (!handler->is_object()) {
    error = "probe handler must be a JSON object";
    return std::nullopt;
  }
  auto port = portOf(handler->value("port", json(componentPort)), componentPort);
  if (!port) {
    error = "probe port must be 1-65535";
    return std::nullopt;
  }
  spec.port = *port;
  auto host = stringField(*handler, "host", "", error);
  if (!host) return std::nullopt;
  if (!host->empty()) spec.host = *host;
  if (spec.kind == ProbeSpec::Kind::Http) {
    auto path = stringField(*handler, "path", "/", error);
    auto scheme = stringField(*handler, "scheme", "HTTP", error);
    if (!path || !scheme) return std::nullopt;
    spec.path = path->empty() || (*path)[0] != '/' ? "/" + *path : *path;
    spec.scheme = *scheme;
    auto headers = handler->find("httpHeaders");
    if (headers != handler->end() && headers->is_array()) {
      for (const auto& h : *headers) {
        if (!h.is_object()) {
          error = "probe httpHeaders entries must be objects with a name and a value";
          return std::nullopt;
        }
        auto name = stringField(h, "name", "", error);
        auto value = stringField(h, "value", "", error);
        if (!name || !value) return std::nullopt;
        spec.headers.push_back({std::move(*name), std::move(*value)});
      }
    }
  }
  return spec;
}

// The address a probe goes to: its host when that is an IP literal; a name (localhost
// included) is probed at 127.0.0.1, since the model server shares the pod's network and no name
// is resolved on the probe path.
std::string probeHost(const ProbeSpec& spec) {
  return core::literalAddress(spec.host, spec.port) ? spec.host : "127.0.0.1";
}

// One probe attempt: a TCP connect, or for HTTP a GET whose status decides (200-399 is ready).
void attempt(uv_loop_t* loop, core::Client& client, const ProbeSpec& spec,
             std::chrono::milliseconds timeout, std::function<void(bool)> done) {
  std::string host = probeHost(spec);
  if (spec.kind != ProbeSpec::Kind::Http) {
    core::dialOnce(loop, *core::literalAddress(host, spec.port), timeout, std::move(done));
    return;
  }
  core::UpstreamRequest request;
  request.method = "GET";
  request.target = spec.path;
  // As kubelet's prober: its User-Agent, the probe's host as written, and a connection that is
  // not kept (each probe dials anew, so a model server that stopped accepting is noticed).
  request.headers = {{"Host", spec.host + ":" + std::to_string(spec.port)},
                     {"User-Agent", "kube-probe//"},
                     {"Connection", "close"}};
  request.headers.insert(request.headers.end(), spec.headers.begin(), spec.headers.end());
  request.timeout = timeout;
  request.maxResponseBytes = 64 * 1024;
  client.send(core::Origin{false, host, spec.port}, std::move(request),
              [done = std::move(done)](core::UpstreamResult result) {
                done(result.status >= 200 && result.status < 400);
              });
}

// Runs every probe of a round in parallel; all must pass.
struct Round {
  size_t pending;
  bool ok = true;
  std::function<void(bool)> done;
};

}  // namespace

std::optional<ReadinessSpec> parseReadiness(const char* value, bool multiContainer,
                                            uint16_t componentPort, std::string& error) {
  ReadinessSpec spec;
  if (value == nullptr) {
    ProbeSpec tcp;
    tcp.port = componentPort;
    tcp.timeoutSeconds = 1;
    spec.probes.push_back(tcp);
    return spec;
  }
  if (*value == '\0') {
    spec.alwaysReady = true;
    return spec;
  }
  json parsed = json::parse(value, nullptr, false);
  if (parsed.is_discarded()) {
    error = "not valid JSON";
    return std::nullopt;
  }
  std::vector<json> items;
  if (multiContainer) {
    if (!parsed.is_array()) {
      error = "expected a JSON array of probes (ENABLE_MULTI_CONTAINER_PROBES=true)";
      return std::nullopt;
    }
    items.assign(parsed.begin(), parsed.end());
  } else {
    items.push_back(parsed);
  }
  for (const auto& item : items) {
    auto probe = parseProbe(item, componentPort, error);
    if (!probe) return std::nullopt;
    spec.probes.push_back(*probe);
  }
  return spec;
}

ReadinessProber::ReadinessProber(uv_loop_t* loop, core::Client& client, ReadinessSpec spec)
    : loop_(loop), client_(client), spec_(std::move(spec)), retryTimer_(loop) {}

void ReadinessProber::check(std::function<void(bool)> done) {
  if (gate_ && !gate_()) {
    done(false);
    return;
  }
  if (spec_.alwaysReady) {
    done(true);
    return;
  }
  waiters_.push_back(std::move(done));
  if (inFlight_) return;
  inFlight_ = true;
  aggressiveDeadline_ = std::chrono::steady_clock::now() + kAggressiveBudget;
  runRound();
}

void ReadinessProber::runRound() {
  bool aggressive = spec_.probes.size() == 1 && spec_.probes[0].periodSeconds == 0;
  auto round = std::make_shared<Round>(Round{spec_.probes.size(), true, {}});
  round->done = [this, aggressive](bool ok) {
    if (!aggressive) return finishRound(ok);
    // Aggressive mode: retry every 50 ms until enough consecutive successes or 10 s pass.
    consecutiveSuccesses_ = ok ? consecutiveSuccesses_ + 1 : 0;
    if (consecutiveSuccesses_ >= spec_.probes[0].successThreshold) return finishRound(true);
    if (std::chrono::steady_clock::now() >= aggressiveDeadline_) return finishRound(false);
    retryTimer_.start(kAggressiveInterval, [this] { runRound(); });
  };
  for (const auto& probe : spec_.probes) {
    if (probe.kind == ProbeSpec::Kind::Exec || probe.kind == ProbeSpec::Kind::None) {
      spdlog::warn("readiness probe: {}", probe.kind == ProbeSpec::Kind::Exec
                                              ? "exec probe not supported"
                                              : "no probe found");
      round->ok = false;
      if (--round->pending == 0) round->done(false);
      continue;
    }
    std::chrono::milliseconds timeout =
        aggressive
            ? kAggressiveAttemptTimeout
            : (probe.timeoutSeconds > 0
                   ? std::chrono::milliseconds(std::chrono::seconds(probe.timeoutSeconds))
                   : std::chrono::duration_cast<std::chrono::milliseconds>(kDefaultAttemptTimeout));
    attempt(loop_, client_, probe, timeout, [round](bool ok) {
      round->ok = round->ok && ok;
      if (--round->pending == 0) round->done(round->ok);
    });
  }
}

void ReadinessProber::finishRound(bool ready) {
  inFlight_ = false;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& waiter : waiters)
    waiter(ready);
}

bool ProbeFilter::answerProbe(const ExchangePtr& exchange) {
  const RequestHead& request = exchange->request();
  const std::string* agent = findHeader(request.headers, "User-Agent");
  const std::string* networkProbe = findHeader(request.headers, "K-Network-Probe");
  bool healthCheck = agent != nullptr && (startsWith(*agent, "kube-probe/") ||
                                          startsWith(*agent, "Knative-Activator-Probe"));
  if (healthCheck) {
    if (draining_) {
      exchange->replyError(503, "shutting down");
      return true;
    }
    std::string value = networkProbe != nullptr ? *networkProbe : "";
    if (value != "queue") {
      exchange->replyError(400, "unexpected probe header value: " + value);
      return true;
    }
    prober_.check([exchange](bool ready) {
      if (ready) {
        exchange->replyWith(200, "text/plain; charset=utf-8", "queue");
      } else {
        exchange->replyWith(503, "", "");
      }
    });
    return true;
  }
  if (networkProbe != nullptr && *networkProbe == "probe") {
    if (draining_) {
      exchange->replyError(503, "shutting down");
      return true;
    }
    const std::string* hash = findHeader(request.headers, "K-Network-Hash");
    if (hash == nullptr || hash->empty()) {
      exchange->replyError(400,
                           "a probe request must contain a non-empty \"K-Network-Hash\" header");
      return true;
    }
    exchange->replyWith(200, "", "", {{"K-Network-Hash", *hash}});
    return true;
  }
  return false;
}

Action ProbeFilter::onRequestHeaders(const ExchangePtr& exchange) {
  if (answerProbe(exchange)) return Action::Handled;
  // Every ordinary request during the quiet period restarts it (as Knative's drainer).
  drain_.noteRequest();
  applyForwardedShim(exchange->mutableRequest().headers);
  return Action::Continue;
}

}  // namespace agent
