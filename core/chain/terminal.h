// The end of the chain: what produces the response once every filter let a request through. The
// agent's is the proxy to the model server; the router's runs an inference graph. A terminal
// starts one TerminalStream per exchange, which talks to the exchange through Downstream.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/chain/filter.h"
#include "core/http/head.h"

namespace core {

// Bytes queued toward one side before the other side stops reading (backpressure), both ways:
// a client's response queue and a request body waiting for the service.
inline constexpr size_t kBackpressureHighWater = size_t{1} << 20;

// The exchange as its terminal sees it: the request, and the way back to the client.
class Downstream : public Exchange {
 public:
  // The request body is sent with chunked framing (the terminal may relay it so).
  virtual bool chunkedBody() const = 0;
  // The request has a body (chunked, or a Content-Length above 0).
  virtual bool hasBody() const = 0;
  // The client asked to switch protocols (Upgrade, CONNECT).
  virtual bool upgrade() const = 0;
  // The body a filter read whole (the chain's), or nullptr when the body streams through
  // TerminalStream::onRequestBody.
  virtual std::string* bufferedBody() = 0;
  // The request's trailer fields (chunked bodies, once the request is received).
  virtual const Headers& requestTrailers() const = 0;
  // True while the response has not started: an error may still be answered with a status.
  virtual bool responseStarted() const = 0;

  // Starts the response with this head (taken over; its framing is the exchange's concern).
  // `trailerAnnouncement`: the Trailer field to send when the body is chunked ("" for none).
  // `switching`: a 101 to an upgrade request; raw bytes follow both ways (startTunnel).
  virtual void sendResponseHead(ResponseHead& head, std::string trailerAnnouncement,
                                bool switching) = 0;
  // Response body bytes. False when the client's queue is over the high-water mark: the
  // terminal should pause its source until TerminalStream::onDownstreamDrained.
  virtual bool sendResponseBody(const char* data, size_t length) = 0;
  // The response is complete; `trailers` go after a chunked body.
  virtual void endResponse(const Headers& trailers) = 0;
  // The response cannot be completed: the client's connection closes.
  virtual void abortResponse() = 0;
  // Request-body backpressure: stop reading the client's body, then resume.
  virtual void pauseRequestBody() = 0;
  virtual void resumeRequestBody() = 0;
  // After sendResponseHead with `switching` (or for an HTTP/2 tunnel): raw bytes to the client,
  // and the end of the tunnel's other side.
  virtual void tunnelWrite(const char* data, size_t length) = 0;
  virtual void endTunnel() = 0;
};

// One exchange at the terminal. Created by Terminal::start; the exchange owns it and destroys it
// after cancel(), once the exchange is over.
class TerminalStream {
 public:
  virtual ~TerminalStream() = default;
  // Request body bytes (only when the body streams, see Downstream::bufferedBody).
  virtual void onRequestBody(const char* data, size_t length) = 0;
  // The whole request was received (Downstream::requestTrailers holds its trailers). Called
  // once, when the request was still arriving at Terminal::start. A stream that finds
  // Downstream::bufferedBody() non-null at start has the whole body and must not wait for this
  // call: a filter read the body to its end before the stream existed, so it may never come.
  virtual void onRequestEnd() = 0;
  // The client's queue drained after sendResponseBody returned false.
  virtual void onDownstreamDrained() {}
  // Raw bytes from the client in a tunnel, and the client's end of it.
  virtual void onTunnelData(const char* data, size_t length) {
    (void)data;
    (void)length;
  }
  virtual void onTunnelClosed() {}
  // The exchange is over: called once when it finishes, whether the stream completed the
  // response, the client went away or the exchange was answered locally. Release what the
  // stream holds (calls still out, timers); it must not touch the Downstream any more. After a
  // response the stream ended itself there is usually nothing left to release.
  virtual void cancel() = 0;
};

using TerminalStreamPtr = std::unique_ptr<TerminalStream>;

class Terminal {
 public:
  virtual ~Terminal() = default;
  // Takes the exchange over: the request head is final (filters may have edited it).
  virtual TerminalStreamPtr start(Downstream& exchange) = 0;
  // An HTTP/2 connection with prior knowledge: `preface` and everything after it go through a
  // stream as tunnel data. nullptr when the terminal does not take HTTP/2 (the server then
  // parses the bytes as HTTP/1 and refuses them).
  virtual TerminalStreamPtr startH2(Downstream& exchange, std::string preface) {
    (void)exchange;
    (void)preface;
    return nullptr;
  }
  // Whether startH2 may take HTTP/2 connections (the server looks for the preface only then).
  virtual bool takesH2() const { return false; }
  // The server is shutting down: idle resources (pooled connections) can go, and calls still
  // out may be abandoned (their exchanges answered with an error).
  virtual void shutdown() {}
};

}  // namespace core
