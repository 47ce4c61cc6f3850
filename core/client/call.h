// Calls: a whole request sent to a service and its whole answer, with a timeout and a handle to
// cancel. The batcher's merged call, the router's steps and the agent's probes are calls; the
// proxy streams instead (UpstreamPool::open).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/http/head.h"

namespace core {

// Taking a call's answer as it arrives instead of whole. Both hooks run on the loop, from the
// call's connection; either may cancel the call.
struct ResponseStream {
  // The final response head: true to take the body through `body` (the result's body then
  // stays empty and maxResponseBytes does not apply), false to have it buffered as usual.
  std::function<bool(int status, const Headers& headers)> head;
  // Body bytes as they arrive: false pauses reading the answer until UpstreamCall::resume().
  std::function<bool(std::string_view data)> body;
};

struct UpstreamRequest {
  std::string method = "POST";
  std::string target = "/";  // origin-form: path and query
  Headers headers;           // Host is added when missing; framing is the client's
  std::string body;
  std::chrono::milliseconds timeout{0};  // the whole call, connecting included; 0: none
  size_t maxResponseBytes = 0;           // a longer response body fails the call; 0: no bound
  // Unset: the answer is buffered. A transport that cannot stream (https through libcurl)
  // never calls it and buffers.
  ResponseStream stream;
};

// The answer to an UpstreamRequest. status == 0 means no usable HTTP answer; error says why.
struct UpstreamResult {
  int status = 0;
  Headers headers;
  std::string body;
  std::string error;
  bool timedOut = false;  // the call's timeout fired (error says so too)
  bool streamed = false;  // the body went through ResponseStream::body (also when status is 0)
  // A response head arrived (also when the call then failed): the service saw the request.
  bool answered = false;
};

// A call in progress. Valid until its callback runs or cancel() returns.
class UpstreamCall {
 public:
  // Abandons the call: its callback will not run, its connection is not reused.
  virtual void cancel() = 0;
  // Reading a streamed answer goes on after ResponseStream::body returned false.
  virtual void resume() {}

 protected:
  ~UpstreamCall() = default;
};

using UpstreamDone = std::function<void(UpstreamResult)>;

// A service requests can be sent to (a pool to one origin).
class UpstreamClient {
 public:
  virtual ~UpstreamClient() = default;
  // Sends the request; `done` runs once on the loop, never from inside send, unless the call is
  // cancelled first. The returned call is never null.
  virtual UpstreamCall* send(UpstreamRequest request, UpstreamDone done) = 0;
};

}  // namespace core
