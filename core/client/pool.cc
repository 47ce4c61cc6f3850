#include "core/client/pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/util/assert.h"
#include "core/uv/timer.h"

namespace core {

using namespace std::string_view_literals;

namespace {

// As Go's dialer words it: "dial tcp 127.0.0.1:8080: connect: connection refused".
std::string dialError(const sockaddr_storage& address, int status) {
  return "dial tcp " + addressText(address) + ": connect: " + uv_strerror(status);
}

}  // namespace

std::string serializeRequestHead(const RequestHead& head) {
  std::string out;
  out.reserve(256 + head.headers.size() * 48);
  out += head.method;
  out += ' ';
  out += head.target;
  out += " HTTP/1.1\r\n"sv;
  appendHeaderLines(out, head.headers);
  out += "\r\n"sv;
  return out;
}

// ---------------------------------------------------------------------------------------------
// UpstreamConnection

namespace {

// The model server is trusted as Go's transport trusts it: a response head may take up to
// 10 MiB (Go's default MaxResponseHeaderBytes), in as many fields as fit.
constexpr size_t kMaxResponseHeadBytes = size_t{10} << 20;

}  // namespace

UpstreamConnection::UpstreamConnection(UpstreamPool& pool)
    : Connection(pool.loop(), Kind::Tcp),
      pool_(pool),
      parser_(HTTP_RESPONSE, *this, ParserLimits{kMaxResponseHeadBytes, kMaxResponseHeadBytes}) {
  connectRequest_.data = this;
}

void UpstreamConnection::connect() {
  if (pool_.options().connectTimeout.count() > 0) armTimer(pool_.options().connectTimeout);
  const Origin& origin = pool_.origin();
  resolving_ = pool_.resolver().resolve(
      origin.host, origin.port,
      [this](int status, const Addresses& addresses) { onResolved(status, addresses); });
}

void UpstreamConnection::onResolved(int status, const Addresses& addresses) {
  resolving_ = 0;
  if (closing()) return;
  if (status != 0) {
    fail(502, "dial tcp: lookup " + pool_.origin().host + ": " + uv_strerror(status));
    return;
  }
  addresses_ = addresses;
  nextAddress_ = 0;
  connectNext();
}

void UpstreamConnection::connectNext() {
  const sockaddr_storage& address = addresses_[nextAddress_++];
  uv_tcp_nodelay(tcp(), 1);
  int rc = uv_tcp_connect(&connectRequest_, tcp(), reinterpret_cast<const sockaddr*>(&address),
                          connectCallback);
  if (rc != 0) fail(502, dialError(address, rc));
}

void UpstreamConnection::connectCallback(uv_connect_t* request, int status) {
  auto* self = static_cast<UpstreamConnection*>(request->data);
  if (status == UV_ECANCELED || self->closing()) return;
  if (status != 0) {
    if (self->nextAddress_ < self->addresses_.size()) {
      // As Go's dialer: the next address of the name, on a fresh socket.
      self->replaceSocket();
      return;
    }
    // Every address failed: the next connection asks the resolver again.
    self->pool_.resolver().forget(self->pool_.origin().host);
    self->fail(502, dialError(self->addresses_[self->nextAddress_ - 1], status));
    return;
  }
  self->connected_ = true;
  self->cancelTimer();
  self->startReading();
  if (!self->pendingOut_.empty()) {
    std::string out = std::move(self->pendingOut_);
    self->pendingOut_.clear();
    self->Connection::write(out);
    // The client may have been paused for what waited here (over the high-water mark); when
    // the socket took it all at once, no write callback will say it drained.
    if (self->unsentBytes() == 0 && !self->closing()) self->onWriteDrained();
  }
  if (self->requestDone_) self->armResponseTimer();
}

void UpstreamConnection::attach(UpstreamSink* sink, bool headRequest) {
  // A connection serves one exchange at a time: handing it to a second one would mix answers.
  KSA_ASSERT(sink_ == nullptr && sink != nullptr);
  sink_ = sink;
  headRequest_ = headRequest;
  requestDone_ = false;
  responseStarted_ = false;
  interim_ = false;
  ++exchanges_;
  if (paused_) resumeResponse();
}

void UpstreamConnection::send(const uv_buf_t* buffers, unsigned count) {
  if (connected_) {
    Connection::write(buffers, count);
    return;
  }
  for (unsigned i = 0; i < count; ++i)
    pendingOut_.append(buffers[i].base, buffers[i].len);
}

void UpstreamConnection::send(std::string_view data) {
  uv_buf_t buffer = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  send(&buffer, 1);
}

void UpstreamConnection::requestComplete() {
  requestDone_ = true;
  if (connected_) armResponseTimer();
}

void UpstreamConnection::armResponseTimer() {
  if (pool_.options().responseTimeout.count() > 0) armTimer(pool_.options().responseTimeout);
}

void UpstreamConnection::abandon() {
  sink_ = nullptr;
  close();
}

// While the agent holds the response back, the model server is not late: its timer waits.
void UpstreamConnection::pauseResponse() {
  paused_ = true;
  stopReading();
  cancelTimer();
}

void UpstreamConnection::resumeResponse() {
  paused_ = false;
  if (!connected_) return;
  startReading();
  if (requestDone_ && sink_ != nullptr) armResponseTimer();
}

void UpstreamConnection::startTunnel() {
  tunnel_ = true;
  if (connected_) cancelTimer();  // a connect still has its timeout
}

void UpstreamConnection::onData(const char* data, size_t length) {
  if (tunnel_) {
    if (sink_ != nullptr) sink_->onUpstreamTunnelData(data, length);
    return;
  }
  if (sink_ == nullptr) {
    // Bytes on an idle connection: the server broke the protocol; do not reuse it.
    close();
    return;
  }
  if (requestDone_) armResponseTimer();
  HttpParser::Result result = parser_.execute(data, length);
  if (closing() || result.status == HttpParser::Status::Ok) return;
  if (result.status == HttpParser::Status::Paused) {
    // Bytes after a complete response answer nothing the agent asked: the model server broke
    // the protocol, so the connection is not reused (and the bytes reach no one).
    completeResponse(result.consumed < length);
    return;
  }
  if (result.status == HttpParser::Status::Upgrade) {
    // A 101 response: anything after its head already belongs to the tunnel.
    if (sink_ != nullptr && result.consumed < length) {
      sink_->onUpstreamTunnelData(data + result.consumed, length - result.consumed);
    }
    return;
  }
  if (result.status == HttpParser::Status::Error) {
    fail(502, "malformed response from " + pool_.options().peerName);
  }
}

void UpstreamConnection::onReadEnd(int status) {
  if (tunnel_) {
    UpstreamSink* sink = sink_;
    sink_ = nullptr;
    close();
    if (sink != nullptr) sink->onUpstreamTunnelClosed();
    return;
  }
  if (sink_ != nullptr && responseStarted_ && status == UV_EOF && parser_.inMessage()) {
    // A response delimited by the connection closing ends here.
    if (parser_.finish().status == HttpParser::Status::Paused) {
      completeResponse(false);
      return;
    }
  }
  if (sink_ == nullptr) {
    close();
    return;
  }
  fail(502, status == UV_EOF
                ? pool_.options().peerName + " closed the connection"
                : "connection to " + pool_.options().peerName + " failed: " + uv_strerror(status));
}

void UpstreamConnection::onWriteDrained() {
  if (sink_ != nullptr) sink_->onUpstreamDrained();
}

void UpstreamConnection::onWriteFailed(int status) {
  if (failure_.empty()) {
    failure_ = "writing to " + pool_.options().peerName + " failed: " + uv_strerror(status);
  }
}

void UpstreamConnection::onTimeout() {
  if (!connected_) {
    const Origin& origin = pool_.origin();
    fail(502, "timed out dialing " + origin.host + ":" + std::to_string(origin.port));
  } else {
    fail(504, pool_.options().peerName + " did not answer in time");
  }
}

void UpstreamConnection::fail(int status, const std::string& reason) {
  if (closing()) return;
  failStatus_ = status;
  failure_ = reason;
  close();
}

void UpstreamConnection::onClosed() {
  if (resolving_ != 0) pool_.resolver().cancel(resolving_);
  // Every failure reaches the exchange from here, never from inside the call that found it
  // (a write can fail inside send(), while the exchange is still using this connection).
  UpstreamSink* sink = std::exchange(sink_, nullptr);
  pool_.closed(this);
  if (sink != nullptr) {
    sink->onUpstreamError(
        failStatus_,
        failure_.empty() ? "the connection to " + pool_.options().peerName + " closed" : failure_,
        reused() && !responseStarted_);
  }
  delete this;
}

bool UpstreamConnection::onParsedHead() {
  ResponseHead& head = parser_.response();
  if (head.status >= 100 && head.status < 200 && head.status != 101) {
    // Interim responses (100 Continue, 103) are not relayed: the agent answers Expect itself.
    interim_ = true;
    return true;
  }
  responseStarted_ = true;
  if (sink_ != nullptr) sink_->onUpstreamHead(head);
  return headRequest_;
}

void UpstreamConnection::onParsedBody(const char* data, size_t length) {
  if (sink_ != nullptr && !interim_) sink_->onUpstreamBody(data, length);
}

bool UpstreamConnection::onParsedMessageComplete() {
  if (interim_) {
    interim_ = false;
    return false;
  }
  if (parser_.upgrade()) return false;
  // Parsing stops here: the connection is released (and may take the next request) only
  // once llhttp has returned, and what follows the response in the same read is seen.
  return true;
}

void UpstreamConnection::completeResponse(bool unsolicitedBytes) {
  parser_.resume();
  cancelTimer();
  UpstreamSink* sink = std::exchange(sink_, nullptr);
  Headers trailers = parser_.takeTrailers();
  if (unsolicitedBytes) {
    spdlog::warn("{} sent bytes after a complete response; closing the connection",
                 pool_.options().peerName);
  }
  bool reusable = parser_.keepAlive() && requestDone_ && !closing() && !unsolicitedBytes;
  if (reusable) {
    pool_.release(this);
  } else {
    close();
  }
  if (sink != nullptr) sink->onUpstreamComplete(trailers);
}

// ---------------------------------------------------------------------------------------------
// UpstreamPool

UpstreamPool::UpstreamPool(uv_loop_t* loop, Origin origin, UpstreamOptions options,
                           Resolver& resolver)
    : loop_(loop),
      origin_(std::move(origin)),
      authority_(origin_.hostPort()),
      options_(std::move(options)),
      resolver_(resolver) {}

UpstreamPool::~UpstreamPool() = default;

UpstreamConnection* UpstreamPool::open(UpstreamSink* sink, bool headRequest, bool fresh) {
  if (!fresh) {
    while (!idle_.empty()) {
      UpstreamConnection* connection = idle_.back();
      idle_.pop_back();
      idleCount_ = idle_.size();
      if (connection->closing()) continue;
      connection->attach(sink, headRequest);
      return connection;
    }
  }
  if (open_ >= options_.maxConnections) {
    waiters_.push_back({sink, headRequest});
    return nullptr;
  }
  auto* connection = new UpstreamConnection(*this);
  ++open_;
  ++created_;
  connection->attach(sink, headRequest);
  connection->connect();
  return connection;
}

void UpstreamPool::cancelWait(UpstreamSink* sink) {
  std::erase_if(waiters_, [&](const Waiter& w) { return w.sink == sink; });
}

void UpstreamPool::release(UpstreamConnection* connection) {
  if (!waiters_.empty()) {
    Waiter waiter = waiters_.front();
    waiters_.pop_front();
    connection->attach(waiter.sink, waiter.headRequest);
    waiter.sink->onUpstreamReady(*connection);
    return;
  }
  connection->cancelTimer();
  // Pooled twice, the next two exchanges would share one connection.
  KSA_ASSERT(std::find(idle_.begin(), idle_.end(), connection) == idle_.end());
  idle_.push_back(connection);
  idleCount_ = idle_.size();
}

void UpstreamPool::closed(UpstreamConnection* connection) {
  std::erase(idle_, connection);
  idleCount_ = idle_.size();
  KSA_ASSERT(open_ > 0);
  --open_;
  serveWaiter();
}

void UpstreamPool::serveWaiter() {
  if (waiters_.empty() || open_ >= options_.maxConnections) return;
  Waiter waiter = waiters_.front();
  waiters_.pop_front();
  auto* connection = new UpstreamConnection(*this);
  ++open_;
  ++created_;
  connection->attach(waiter.sink, waiter.headRequest);
  connection->connect();
  waiter.sink->onUpstreamReady(*connection);
}

void UpstreamPool::closeIdle() {
  std::vector<UpstreamConnection*> idle = std::move(idle_);
  idle_.clear();
  idleCount_ = 0;
  for (auto* connection : idle)
    connection->close();
}

// ---------------------------------------------------------------------------------------------
// Buffered calls (UpstreamClient::send)

// One buffered request/response through the pool, with its own deadline. Frees itself when
// it ends (its timer's handle goes in its own close callback).
class BufferedCall final : public UpstreamSink, public UpstreamCall {
 public:
  BufferedCall(UpstreamPool& pool, UpstreamRequest request, UpstreamDone done)
      : pool_(pool), request_(std::move(request)), done_(std::move(done)), timer_(pool.loop()) {
    pool_.calls_.insert(this);
  }

  void start() {
    if (request_.timeout.count() > 0) {
      timer_.start(request_.timeout, [this] {
        result_.timedOut = true;
        finish(0, "timed out after " + std::to_string(request_.timeout.count()) +
                      "ms waiting for " + pool_.options().peerName);
      });
    }
    connection_ = pool_.open(this, request_.method == "HEAD");
    if (connection_ != nullptr) sendRequest();
  }

  // UpstreamCall: ends the call without its callback.
  void cancel() override {
    done_ = nullptr;
    finish(0, "cancelled");
  }
  // Ends the call with an error (shutdown).
  void abort(const std::string& reason) { finish(0, reason); }
  void resume() override {
    if (connection_ != nullptr) connection_->resumeResponse();
  }

 private:
  void onUpstreamReady(UpstreamConnection& connection) override {
    connection_ = &connection;
    sendRequest();
  }

  void sendRequest() {
    RequestHead head;
    head.method = request_.method;
    head.target = request_.target;
    head.headers = request_.headers;
    setHeader(head.headers, "Content-Length", std::to_string(request_.body.size()));
    removeHeader(head.headers, "Transfer-Encoding");
    if (findHeader(head.headers, "Host") == nullptr) {
      head.headers.insert(head.headers.begin(), {"Host", pool_.authority()});
    }
    std::string out = serializeRequestHead(head);
    uv_buf_t buffers[2] = {
        uv_buf_init(out.data(), static_cast<unsigned>(out.size())),
        uv_buf_init(request_.body.data(), static_cast<unsigned>(request_.body.size()))};
    connection_->send(buffers, 2);
    connection_->requestComplete();
  }

  void onUpstreamHead(ResponseHead& head) override {
    result_.status = head.status;
    result_.headers = head.headers;
    result_.answered = true;
    if (request_.stream.head) {
      dispatching_ = true;
      result_.streamed = request_.stream.head(head.status, result_.headers);
      dispatching_ = false;
      if (finished_) delete this;
    }
  }
  void onUpstreamBody(const char* data, size_t length) override {
    if (result_.streamed) {
      dispatching_ = true;
      bool more = request_.stream.body(std::string_view(data, length));
      dispatching_ = false;
      if (finished_) {
        delete this;
      } else if (!more && connection_ != nullptr) {
        connection_->pauseResponse();
      }
      return;
    }
    if (request_.maxResponseBytes != 0 &&
        result_.body.size() + length > request_.maxResponseBytes) {
      finish(0, "the response body of " + pool_.options().peerName + " is larger than " +
                    std::to_string(request_.maxResponseBytes) + " bytes");
      return;
    }
    result_.body.append(data, length);
  }
  void onUpstreamComplete(const Headers&) override {
    connection_ = nullptr;
    finish(result_.status, "");
  }
  void onUpstreamError(int, const std::string& reason, bool retryable) override {
    connection_ = nullptr;
    // A pooled connection the service had closed: only a request that is safe to repeat is
    // sent again, since the service may have seen it.
    if (retryable && isIdempotentMethod(request_.method) && !retried_) {
      retried_ = true;
      result_ = {};
      connection_ = pool_.open(this, request_.method == "HEAD", true);
      if (connection_ != nullptr) sendRequest();
      return;
    }
    finish(0, reason);
  }

  void finish(int status, const std::string& error) {
    if (finished_) return;
    finished_ = true;
    pool_.calls_.erase(this);
    if (connection_ != nullptr) {
      connection_->abandon();
      connection_ = nullptr;
    }
    pool_.cancelWait(this);
    UpstreamResult result = std::move(result_);
    result.status = status;
    if (status == 0) {
      result.error = error;
      result.headers.clear();
      result.body.clear();
    }
    auto done = std::move(done_);
    // Inside a stream hook the call is deleted once the hook returns.
    if (!dispatching_) delete this;
    if (done) done(std::move(result));
  }

  UpstreamPool& pool_;
  UpstreamRequest request_;
  UpstreamDone done_;
  UpstreamResult result_;
  UpstreamConnection* connection_ = nullptr;
  Timer timer_;
  bool finished_ = false;
  bool retried_ = false;
  bool dispatching_ = false;  // inside a ResponseStream hook
};

void UpstreamPool::cancelCalls(const std::string& reason) {
  std::vector<BufferedCall*> calls(calls_.begin(), calls_.end());
  for (auto* call : calls)
    call->abort(reason);
}

UpstreamCall* UpstreamPool::send(UpstreamRequest request, UpstreamDone done) {
  auto* call = new BufferedCall(*this, std::move(request), std::move(done));
  call->start();
  return call;
}

}  // namespace core
