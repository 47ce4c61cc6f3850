// One pool per origin: kept-alive HTTP/1.1 connections to one service (the agent's model server,
// a router step), each parsing responses with llhttp and handing them to the exchange or call
// that owns it for now. Names are resolved on the thread pool; each address is tried in turn.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/client/call.h"
#include "core/client/resolver.h"
#include "core/http/parser.h"
#include "core/http/url.h"
#include "core/uv/connection.h"

namespace core {

class UpstreamConnection;
class BufferedCall;

// The exchange side of an upstream connection.
class UpstreamSink {
 public:
  virtual ~UpstreamSink() = default;
  // A connection is ready for the request (only after UpstreamPool::open returned nullptr).
  virtual void onUpstreamReady(UpstreamConnection& connection) = 0;
  virtual void onUpstreamHead(ResponseHead& head) = 0;
  virtual void onUpstreamBody(const char* data, size_t length) = 0;
  // The response is complete; the connection is no longer the sink's.
  // `trailers`: the response's trailer fields (chunked responses only).
  virtual void onUpstreamComplete(const Headers& trailers) = 0;
  // The exchange failed: no usable response. `status` is the answer to give if no response
  // head was sent yet (502, 504). `retryable` when a reused connection failed before any
  // response byte (a stale keep-alive connection). The connection is no longer the sink's.
  virtual void onUpstreamError(int status, const std::string& reason, bool retryable) = 0;
  // The connection's unwritten request bytes drained (request-body backpressure relief).
  virtual void onUpstreamDrained() {}
  // Raw bytes from the model server after a 101 Switching Protocols.
  virtual void onUpstreamTunnelData(const char* data, size_t length) {
    (void)data;
    (void)length;
  }
  // The tunnel's model-server side closed.
  virtual void onUpstreamTunnelClosed() {}
};

struct UpstreamOptions {
  size_t maxConnections = 1000;
  // Resolving and connecting, every address tried included.
  std::chrono::milliseconds connectTimeout{5000};
  // The wait for the response head, or for the next bytes of its body; 0: none.
  std::chrono::milliseconds responseTimeout{300000};
  // How errors name the peer ("the model server did not answer in time").
  std::string peerName = "the model server";
};

class UpstreamPool;

class UpstreamConnection final : public Connection, private HttpParser::Delegate {
 public:
  explicit UpstreamConnection(UpstreamPool& pool);

  // Binds the connection to a sink for one exchange. `headRequest`: the response has no body.
  void attach(UpstreamSink* sink, bool headRequest);
  // Sends request bytes (held until connected).
  void send(const uv_buf_t* buffers, unsigned count);
  void send(std::string_view data);
  // The whole request has been sent.
  void requestComplete();
  // Unbinds the sink: the exchange was abandoned. The connection closes unless it was idle.
  void abandon();
  // Response-body backpressure.
  void pauseResponse();
  void resumeResponse();
  // After a 101 response: raw bytes in both directions.
  void startTunnel();
  size_t requestBytesPending() const { return unsentBytes() + pendingOut_.size(); }
  bool reused() const { return exchanges_ > 1; }

  // Resolves the origin and connects, trying each address in turn.
  void connect();

 private:
  friend class UpstreamPool;
  void onResolved(int status, const Addresses& addresses);
  void connectNext();
  void onSocketReplaced() override { connectNext(); }
  void onData(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onWriteDrained() override;
  void onWriteFailed(int status) override;
  void onTimeout() override;
  void onClosed() override;
  bool onParsedHead() override;
  void onParsedBody(const char* data, size_t length) override;
  bool onParsedMessageComplete() override;
  // The response is complete: hands the connection back to the pool (or closes it) and tells
  // the sink. `unsolicitedBytes`: more bytes followed the response.
  void completeResponse(bool unsolicitedBytes);
  // Closes the connection; the sink hears of the failure from onClosed.
  void fail(int status, const std::string& reason);
  void armResponseTimer();
  static void connectCallback(uv_connect_t* request, int status);

  UpstreamPool& pool_;
  HttpParser parser_;
  UpstreamSink* sink_ = nullptr;
  uv_connect_t connectRequest_;
  Addresses addresses_;     // where the origin's name led
  size_t nextAddress_ = 0;  // the address the next connect attempt takes
  uint64_t resolving_ = 0;  // the resolver's id while a lookup runs
  std::string pendingOut_;
  int failStatus_ = 502;  // the answer onClosed gives the sink
  std::string failure_;   // why the connection failed, for the sink; "" when it just closed
  uint64_t exchanges_ = 0;
  bool connected_ = false;
  bool headRequest_ = false;
  bool requestDone_ = false;
  bool responseStarted_ = false;
  bool interim_ = false;
  bool tunnel_ = false;
  bool paused_ = false;
};

class UpstreamPool final : public UpstreamClient {
 public:
  // `resolver` (shared by the pools of one loop) must outlive the pool.
  UpstreamPool(uv_loop_t* loop, Origin origin, UpstreamOptions options, Resolver& resolver);
  ~UpstreamPool() override;

  // A connection bound to `sink`: an idle pooled one, or a new one (connecting). nullptr when
  // the connection limit is reached: `sink->onUpstreamReady` follows when one frees up.
  // `fresh` forces a new connection (upgrades, retries).
  UpstreamConnection* open(UpstreamSink* sink, bool headRequest, bool fresh = false);
  // Withdraws a sink still waiting for a connection.
  void cancelWait(UpstreamSink* sink);

  // UpstreamClient: a whole request and its whole answer (the batcher's merged call, a step).
  UpstreamCall* send(UpstreamRequest request, UpstreamDone done) override;

  // Closes idle connections (shutdown).
  void closeIdle();
  // Ends every buffered call still out now: each callback runs with status 0 and `reason`
  // (shutdown, so that a hung model server cannot hold the loop open).
  void cancelCalls(const std::string& reason);

  uv_loop_t* loop() const { return loop_; }
  const Origin& origin() const { return origin_; }
  // The Host header for requests that carry none.
  const std::string& authority() const { return authority_; }
  const UpstreamOptions& options() const { return options_; }
  Resolver& resolver() { return resolver_; }
  // Read by metrics from another loop's thread.
  size_t openConnections() const { return open_.load(std::memory_order_relaxed); }
  size_t idleConnections() const { return idleCount_.load(std::memory_order_relaxed); }
  size_t connectionsCreated() const { return created_.load(std::memory_order_relaxed); }

 private:
  friend class UpstreamConnection;
  friend class BufferedCall;
  struct Waiter {
    UpstreamSink* sink;
    bool headRequest;
  };
  void release(UpstreamConnection* connection);
  void closed(UpstreamConnection* connection);
  void serveWaiter();

  uv_loop_t* loop_;
  Origin origin_;
  std::string authority_;
  UpstreamOptions options_;
  Resolver& resolver_;
  std::vector<UpstreamConnection*> idle_;
  std::deque<Waiter> waiters_;
  std::unordered_set<BufferedCall*> calls_;
  std::atomic<size_t> open_{0};
  std::atomic<size_t> created_{0};
  std::atomic<size_t> idleCount_{0};
};

// Serialises a request head for a service.
std::string serializeRequestHead(const RequestHead& head);

}  // namespace core
