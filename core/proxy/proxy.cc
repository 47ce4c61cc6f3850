#include "core/proxy/proxy.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <utility>

#include "core/util/recycle.h"

namespace core {

using namespace std::string_view_literals;

namespace {

// Proxy errors come in floods when the service is down: one line per second at most, with the
// number of lines left out.
void warnProxyError(const std::string& text) {
  thread_local std::chrono::steady_clock::time_point lastLogged;
  thread_local uint64_t suppressed = 0;
  auto now = std::chrono::steady_clock::now();
  if (now - lastLogged < std::chrono::seconds(1)) {
    ++suppressed;
    return;
  }
  if (suppressed > 0) {
    spdlog::warn("{} (and {} similar errors in the last second)", text, suppressed);
  } else {
    spdlog::warn("{}", text);
  }
  lastLogged = now;
  suppressed = 0;
}

// Removes hop-by-hop headers and those the Connection header names. The value of a Trailer
// field removed is left in `trailer`.
void stripHopByHop(Headers& headers, bool keepUpgrade, std::string& trailer) {
  std::vector<std::string> named = connectionOptions(headers);
  std::string te;
  if (const std::string* v = findHeader(headers, "TE");
      v != nullptr && headerHasToken(*v, "trailers")) {
    te = "trailers";
  }
  std::erase_if(headers, [&](const Header& h) {
    if (keepUpgrade && (iequals(h.name, "Upgrade") || iequals(h.name, "Connection"))) return false;
    if (isHopByHopHeader(h.name)) {
      if (iequals(h.name, "Trailer")) trailer = h.value;
      return true;
    }
    for (const auto& n : named) {
      if (iequals(h.name, n) && !(keepUpgrade && iequals(n, "Upgrade"))) return true;
    }
    return false;
  });
  if (!te.empty()) headers.push_back({"TE", te});
}

// One exchange on its way to the service and back.
class ProxyStream final : public TerminalStream, private UpstreamSink {
 public:
  // One per proxied exchange: the block is recycled like the exchange's own.
  static void* operator new(size_t size) { return recycledBlock(size); }
  static void operator delete(void* block, size_t size) { recycleBlock(block, size); }

  ProxyStream(UpstreamPool& pool, Downstream& downstream) : pool_(pool), downstream_(downstream) {}

  void start() {
    const std::string* buffered = downstream_.bufferedBody();
    chunked_ = buffered == nullptr && downstream_.chunkedBody();
    openConnection(downstream_.upgrade());
  }

  // An HTTP/2 connection: `preface` and everything after it go to a fresh connection as they are.
  void startH2(std::string preface) {
    h2_ = true;
    pending_ = std::move(preface);
    openConnection(true);
  }

  // TerminalStream
  void onRequestBody(const char* data, size_t length) override { forwardBody(data, length); }
  void onRequestEnd() override {
    if (upstream_ != nullptr) endRequest();
  }
  void onDownstreamDrained() override {
    if (paused_ && upstream_ != nullptr) {
      paused_ = false;
      upstream_->resumeResponse();
    }
  }
  void onTunnelData(const char* data, size_t length) override {
    if (upstream_ != nullptr) {
      upstream_->send(std::string_view(data, length));
    } else if (h2_) {
      pending_.append(data, length);
    }
  }
  void onTunnelClosed() override { cancel(); }
  void cancel() override {
    cancelled_ = true;
    if (upstream_ != nullptr) std::exchange(upstream_, nullptr)->abandon();
    if (waiting_) {
      pool_.cancelWait(this);
      waiting_ = false;
    }
  }

 private:
  void openConnection(bool fresh) {
    upstream_ = pool_.open(this, downstream_.request().method == "HEAD", fresh);
    if (upstream_ != nullptr) {
      sendStart();
    } else {
      waiting_ = true;
      downstream_.pauseRequestBody();
    }
  }

  void sendStart() {
    if (h2_) {
      upstream_->startTunnel();
      upstream_->send(std::exchange(pending_, {}));
    } else {
      sendRequestHead();
    }
  }

  // UpstreamSink
  void onUpstreamReady(UpstreamConnection& connection) override {
    waiting_ = false;
    upstream_ = &connection;
    downstream_.resumeRequestBody();
    sendStart();
  }
  void onUpstreamHead(ResponseHead& head) override;
  void onUpstreamBody(const char* data, size_t length) override {
    if (!downstream_.sendResponseBody(data, length) && upstream_ != nullptr && !cancelled_) {
      paused_ = true;
      upstream_->pauseResponse();
    }
  }
  void onUpstreamComplete(const Headers& trailers) override {
    upstream_ = nullptr;
    downstream_.endResponse(trailers);
  }
  void onUpstreamError(int status, const std::string& reason, bool retryable) override;
  void onUpstreamDrained() override { downstream_.resumeRequestBody(); }
  void onUpstreamTunnelData(const char* data, size_t length) override {
    downstream_.tunnelWrite(data, length);
  }
  void onUpstreamTunnelClosed() override {
    upstream_ = nullptr;
    downstream_.endTunnel();
  }

  void sendRequestHead();
  void forwardBody(const char* data, size_t length);
  void endRequest();

  UpstreamPool& pool_;
  Downstream& downstream_;
  UpstreamConnection* upstream_ = nullptr;
  std::string pending_;  // body bytes (or HTTP/2 bytes) waiting for a connection
  bool waiting_ = false;
  bool chunked_ = false;  // the body goes to the service chunked
  bool paused_ = false;   // the service's response is held back for a slow client
  bool retried_ = false;
  bool h2_ = false;
  bool cancelled_ = false;
};

void ProxyStream::sendRequestHead() {
  // The head is written straight from the client's request, leaving out what is hop-by-hop
  // (RFC 9110 §7.6.1) or replaced here: framing, Expect (answered by the server) and
  // X-Forwarded-For (appended to).
  const RequestHead& request = downstream_.request();
  std::string* buffered = downstream_.bufferedBody();
  bool upgrade = downstream_.upgrade();
  std::vector<std::string> named = connectionOptions(request.headers);
  bool replaceLength = buffered != nullptr || chunked_;
  bool hasHost = false;
  bool teTrailers = false;
  std::string priorForwardedFor;
  ScratchString scratch;
  std::string& out = *scratch;
  out.reserve(256 + request.headers.size() * 64);
  out += request.method;
  out += ' ';
  out += request.target;
  out += " HTTP/1.1\r\n"sv;
  for (const auto& h : request.headers) {
    const std::string& name = h.name;
    if (iequals(name, "X-Forwarded-For")) {
      if (!priorForwardedFor.empty()) priorForwardedFor += ", ";
      priorForwardedFor += h.value;
      continue;
    }
    bool upgradeHeader = upgrade && (iequals(name, "Upgrade") || iequals(name, "Connection"));
    if (!upgradeHeader) {
      if (iequals(name, "TE")) {
        teTrailers = teTrailers || headerHasToken(h.value, "trailers");
        continue;
      }
      // The Trailer field announces the trailers relayed after a chunked body.
      bool announcement = chunked_ && iequals(name, "Trailer");
      if ((isHopByHopHeader(name) && !announcement) || iequals(name, "Expect")) continue;
      if (replaceLength && iequals(name, "Content-Length")) continue;
      bool isNamed = false;
      for (const std::string& token : named)
        isNamed = isNamed || iequals(name, token);
      if (isNamed) continue;
    }
    hasHost = hasHost || iequals(name, "Host");
    appendHeaderLine(out, h);
  }
  if (!hasHost) {
    out += "Host: "sv;
    out += pool_.authority();
    out += "\r\n"sv;
  }
  if (teTrailers) out += "TE: trailers\r\n"sv;
  if (buffered != nullptr && (downstream_.hasBody() || !buffered->empty())) {
    out += "Content-Length: "sv;
    out += std::to_string(buffered->size());
    out += "\r\n"sv;
  } else if (chunked_) {
    out += "Transfer-Encoding: chunked\r\n"sv;
  }
  const std::string& clientAddress = downstream_.clientAddress();
  if (!clientAddress.empty()) {
    out += "X-Forwarded-For: "sv;
    if (!priorForwardedFor.empty()) {
      out += priorForwardedFor;
      out += ", "sv;
    }
    out += clientAddress;
    out += "\r\n"sv;
  } else if (!priorForwardedFor.empty()) {
    out += "X-Forwarded-For: "sv;
    out += priorForwardedFor;
    out += "\r\n"sv;
  }
  out += "\r\n"sv;
  if (buffered != nullptr) {
    uv_buf_t buffers[2] = {uv_buf_init(out.data(), static_cast<unsigned>(out.size())),
                           uv_buf_init(buffered->data(), static_cast<unsigned>(buffered->size()))};
    upstream_->send(buffers, 2);
  } else {
    upstream_->send(out);
    if (!pending_.empty()) {
      std::string pending = std::move(pending_);
      pending_.clear();
      forwardBody(pending.data(), pending.size());
    }
  }
  if (downstream_.requestReceived() || upgrade) endRequest();
}

void ProxyStream::forwardBody(const char* data, size_t length) {
  if (upstream_ == nullptr) {
    pending_.append(data, length);
    return;
  }
  if (chunked_) {
    char sizeLine[24];
    int n = std::snprintf(sizeLine, sizeof sizeLine, "%zx\r\n", length);
    uv_buf_t buffers[3] = {uv_buf_init(sizeLine, static_cast<unsigned>(n)),
                           uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(length)),
                           uv_buf_init(const_cast<char*>("\r\n"), 2)};
    upstream_->send(buffers, 3);
  } else {
    uv_buf_t buffer = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(length));
    upstream_->send(&buffer, 1);
  }
  if (upstream_->requestBytesPending() > kBackpressureHighWater) downstream_.pauseRequestBody();
}

void ProxyStream::endRequest() {
  const Headers& trailers = downstream_.requestTrailers();
  if (chunked_ && !trailers.empty()) {
    ScratchString scratch;
    appendLastChunk(*scratch, trailers);
    upstream_->send(*scratch);
  } else if (chunked_) {
    upstream_->send("0\r\n\r\n");
  }
  upstream_->requestComplete();
}

void ProxyStream::onUpstreamHead(ResponseHead& head) {
  bool upgrade = downstream_.upgrade();
  if (head.status == 101 && !upgrade) {
    // A switch the client did not ask for: what follows is not HTTP (Go's proxy answers 502).
    std::exchange(upstream_, nullptr)->abandon();
    downstream_.replyError(502, "the model server switched protocols without being asked to");
    return;
  }
  bool switching = head.status == 101 && upgrade;
  std::string trailer;
  stripHopByHop(head.headers, switching, trailer);
  // Raw bytes may follow at once: the service side is a tunnel before the client side is.
  if (switching) upstream_->startTunnel();
  downstream_.sendResponseHead(head, std::move(trailer), switching);
}

void ProxyStream::onUpstreamError(int status, const std::string& reason, bool retryable) {
  upstream_ = nullptr;
  if (cancelled_) return;
  if (h2_) {
    // An HTTP/1.1 answer would mean nothing to an HTTP/2 client: the connection closes.
    warnProxyError("proxy error for an HTTP/2 connection: " + reason);
    downstream_.abortResponse();
    return;
  }
  const RequestHead& request = downstream_.request();
  bool bodyReplayable = downstream_.bufferedBody() != nullptr || !downstream_.hasBody();
  if (retryable && !retried_ && bodyReplayable && isIdempotentMethod(request.method) &&
      !downstream_.upgrade()) {
    // A pooled connection the service had closed: try once more on a fresh one.
    retried_ = true;
    upstream_ = pool_.open(this, request.method == "HEAD", true);
    if (upstream_ != nullptr) {
      sendRequestHead();
    } else {
      waiting_ = true;  // withdrawn from the pool's queue if the client goes
    }
    return;
  }
  if (!downstream_.responseStarted()) {
    warnProxyError("proxy error for " + request.method + " " + request.target + ": " + reason);
    downstream_.replyError(status, reason);
  } else {
    warnProxyError("proxy error after the response started for " + request.method + " " +
                   request.target + ": " + reason);
    downstream_.abortResponse();
  }
}

}  // namespace

TerminalStreamPtr ProxyTerminal::start(Downstream& exchange) {
  auto stream = std::make_unique<ProxyStream>(pool_, exchange);
  stream->start();
  return stream;
}

TerminalStreamPtr ProxyTerminal::startH2(Downstream& exchange, std::string preface) {
  auto stream = std::make_unique<ProxyStream>(pool_, exchange);
  stream->startH2(std::move(preface));
  return stream;
}

void ProxyTerminal::shutdown() {
  // Merged calls to a service that has not answered by now are not waited for.
  pool_.cancelCalls("the agent shut down before the model server answered");
  pool_.closeIdle();
}

}  // namespace core
