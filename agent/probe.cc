#include "agent/probe.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/forwarded.h"

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

// One probe attempt: a TCP connect, and for HTTP a GET whose status line decides.
class Attempt {
 public:
  Attempt(uv_loop_t* loop, const ProbeSpec& spec, std::chrono::milliseconds timeout,
          std::function<void(bool)> done)
      : spec_(spec), done_(std::move(done)) {
    uv_tcp_init(loop, &tcp_);
    uv_timer_init(loop, &timer_);
    tcp_.data = this;
    timer_.data = this;
    connect_.data = this;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Attempt*>(t->data)->finish(false); },
        static_cast<uint64_t>(timeout.count()), 0);
    sockaddr_storage addr{};
    if (uv_ip4_addr(spec.host.c_str(), spec.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(spec.host.c_str(), spec.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      uv_ip4_addr("127.0.0.1", spec.port, reinterpret_cast<sockaddr_in*>(&addr));
    }
    if (uv_tcp_connect(&connect_, &tcp_, reinterpret_cast<sockaddr*>(&addr), onConnect) != 0) {
      finish(false);
    }
  }

 private:
  static void onConnect(uv_connect_t* request, int status) {
    auto* self = static_cast<Attempt*>(request->data);
    if (status == UV_ECANCELED || self->finished_) return;
    if (status != 0) return self->finish(false);
    if (self->spec_.kind != ProbeSpec::Kind::Http) return self->finish(true);
    self->request_ = "GET " + self->spec_.path + " HTTP/1.1\r\nHost: " + self->spec_.host + ":" +
                     std::to_string(self->spec_.port) +
                     "\r\nUser-Agent: kube-probe//\r\nConnection: close\r\n";
    for (const auto& h : self->spec_.headers)
      self->request_ += h.name + ": " + h.value + "\r\n";
    self->request_ += "\r\n";
    uv_buf_t buffer =
        uv_buf_init(self->request_.data(), static_cast<unsigned>(self->request_.size()));
    self->write_.data = self;
    uv_write(&self->write_, reinterpret_cast<uv_stream_t*>(&self->tcp_), &buffer, 1,
             [](uv_write_t* w, int rc) {
               if (rc != 0) static_cast<Attempt*>(w->data)->finish(false);
             });
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&self->tcp_),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* a = static_cast<Attempt*>(h->data);
          *b = uv_buf_init(a->readBuffer_, sizeof a->readBuffer_);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
          auto* a = static_cast<Attempt*>(s->data);
          if (n < 0) return a->finish(false);
          a->response_.append(b->base, static_cast<size_t>(n));
          // "HTTP/1.1 200 ..." — the status decides: 200-399 is ready.
          if (a->response_.size() >= 12) {
            int code = 0;
            std::from_chars(a->response_.data() + 9, a->response_.data() + 12, code);
            a->finish(startsWith(a->response_, "HTTP/1.") && code >= 200 && code < 400);
          }
        });
  }

  void finish(bool ok) {
    if (finished_) return;
    finished_ = true;
    auto done = std::move(done_);
    uv_timer_stop(&timer_);
    pendingCloses_ = 2;
    auto onClose = [](uv_handle_t* h) {
      auto* a = static_cast<Attempt*>(h->data);
      if (--a->pendingCloses_ == 0) delete a;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onClose);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), onClose);
    done(ok);
  }

  ProbeSpec spec_;
  std::function<void(bool)> done_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_connect_t connect_;
  uv_write_t write_;
  std::string request_;
  std::string response_;
  char readBuffer_[512];
  int pendingCloses_ = 0;
  bool finished_ = false;
};

// Runs every probe of a round in parallel; all must pass.
struct Round {
  size_t pending;
  bool ok = true;
  std::function<void(bool)> done;
};

// A one-shot timer that frees itself after firing.
void after(uv_loop_t* loop, std::chrono::milliseconds delay, std::function<void()> fn) {
  struct Delay {
    uv_timer_t timer;
    std::function<void()> fn;
  };
  auto* d = new Delay{{}, std::move(fn)};
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  uv_timer_start(
      &d->timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<Delay*>(t->data);
        auto callback = std::move(self->fn);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Delay*>(h->data); });
        callback();
      },
      static_cast<uint64_t>(delay.count()), 0);
}

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

ReadinessProber::ReadinessProber(uv_loop_t* loop, ReadinessSpec spec)
    : loop_(loop), spec_(std::move(spec)) {}

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
    after(loop_, kAggressiveInterval, [this] { runRound(); });
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
    new Attempt(loop_, probe, timeout, [round](bool ok) {
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
