// The filter interface: how the batcher, the logger, probes and any later module plug into the
// request path. Envoy-style: each exchange (one request and its response) passes through the
// filters in order; every hook returns what the chain should do next. Filters never touch
// sockets.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/client/call.h"
#include "core/http/head.h"

struct uv_loop_s;

namespace core {

class Exchange;
using ExchangePtr = std::shared_ptr<Exchange>;

// The most modules one chain holds; each has the state slot of its position.
inline constexpr size_t kMaxFilters = 4;

// What a module keeps for one exchange (FilterContext::slot); destroyed with the exchange.
class ExchangeState {
 public:
  virtual ~ExchangeState() = default;
};

enum class Action {
  Continue,  // go on to the next module (the last one forwards to the model server)
  Buffer,    // the chain collects the whole request body, then calls onRequestBody
  Handled,   // the module has answered (or holds the exchange and will answer later)
  // As Buffer, but a body that outgrows --max-buffered-body-bytes goes on down the chain
  // unbuffered (as after Continue) instead of being answered 413.
  BufferOrContinue,
};

// One request and its response as the modules see it. It lives as long as anyone holds its
// ExchangePtr; once the client has gone, reply() and the body setters do nothing.
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const RequestHead& request() const = 0;
  // Headers may be edited by a module before the request is forwarded.
  virtual RequestHead& mutableRequest() = 0;
  // The client's IP address as text ("127.0.0.1", "::1"; "" for the unix socket).
  virtual const std::string& clientAddress() const = 0;
  // The response head, once the response has started (nullptr before).
  virtual const ResponseHead* response() const = 0;
  // A unique number for this exchange within the process.
  virtual uint64_t id() const = 0;
  // When the request head was complete.
  virtual std::chrono::system_clock::time_point startTime() const = 0;
  // True once the client disconnected or the exchange was answered and finished.
  virtual bool finished() const = 0;
  // True once the whole request (head and body) was received from the client.
  virtual bool requestReceived() const = 0;
  // The state the module with this slot keeps for this exchange (empty until it sets one).
  std::unique_ptr<ExchangeState>& state(size_t slot) { return states_.at(slot); }

  // Answers the client locally. Allowed once, at any time while the exchange is open (also from
  // a later loop callback, e.g. when a held batch returns). Modules before the answering one see
  // the response through their observer hooks.
  virtual void reply(ResponseHead head, std::string body) = 0;

  // Builds and sends a reply with a Content-Type and body.
  void replyWith(int status, std::string_view contentType, std::string body,
                 Headers extraHeaders = {});
  // A plain-text error reply: "<message>\n", text/plain; charset=utf-8, nosniff (as Go's
  // http.Error, which upstream clients see).
  void replyError(int status, std::string_view message);

 private:
  std::array<std::unique_ptr<ExchangeState>, kMaxFilters> states_;
};

// What a module may observe, as bits: the chain only calls hooks a module asks for, so modules
// that watch nothing cost nothing per chunk.
enum Observe : unsigned {
  kObserveNone = 0,
  kObserveRequestData = 1u << 0,
  kObserveResponse = 1u << 1,  // onResponseHeaders and onResponseData
  kObserveComplete = 1u << 2,
};

// What a filter gets when it is created: the loop it runs on and the client to the service
// behind the chain.
struct FilterContext {
  uv_loop_s* loop = nullptr;
  UpstreamClient* upstream = nullptr;
  size_t slot = 0;  // the filter's position in the chain: its Exchange::state slot
};

class Filter {
 public:
  virtual ~Filter() = default;

  // The observer hooks this module wants called (a combination of Observe bits).
  virtual unsigned observes() const { return kObserveNone; }

  // The request head is complete. Return Buffer to get the whole body in onRequestBody.
  virtual Action onRequestHeaders(const ExchangePtr& exchange) {
    (void)exchange;
    return Action::Continue;
  }
  // After Buffer: the whole request body. Continue forwards `body` (which the module may
  // replace); Handled means the module answered or holds the exchange.
  virtual Action onRequestBody(const ExchangePtr& exchange, std::string& body) {
    (void)exchange;
    (void)body;
    return Action::Continue;
  }

  // Observers (only when asked for in observes()). Chunks are views valid during the call.
  virtual void onRequestData(Exchange& exchange, std::string_view chunk) {
    (void)exchange;
    (void)chunk;
  }
  virtual void onResponseHeaders(Exchange& exchange) { (void)exchange; }
  virtual void onResponseData(Exchange& exchange, std::string_view chunk) {
    (void)exchange;
    (void)chunk;
  }
  // The exchange is over: the response was sent completely, or the client went away
  // (then exchange.response() may be null or the body incomplete; `complete` says which).
  virtual void onComplete(Exchange& exchange, bool complete) {
    (void)exchange;
    (void)complete;
  }

  // The agent is shutting down: finish pending work (flush batches, deliver queued events)
  // and call `done` once, within `deadline`. The loop keeps running until then.
  virtual void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done) {
    (void)deadline;
    done();
  }
};

}  // namespace core
