// Calls to any origin from one event loop: one pool per http origin (made on first use, all
// sharing one resolver), and https origins through an HttpsTransport (core_curl's, libcurl on
// the loop), so a binary that calls no https service maps no libcurl.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "core/client/call.h"
#include "core/client/pool.h"
#include "core/client/resolver.h"
#include "core/http/url.h"

namespace core {

// What carries calls to https origins.
class HttpsTransport {
 public:
  virtual ~HttpsTransport() = default;
  // As UpstreamClient::send, to `origin`.
  virtual UpstreamCall* send(const Origin& origin, UpstreamRequest request, UpstreamDone done) = 0;
  // Ends every call still out: each callback runs with status 0 and `reason`.
  virtual void cancelCalls(const std::string& reason) = 0;
};

class Client {
 public:
  // `poolOptions` for every pool; `https`, when given, must outlive the client.
  Client(uv_loop_t* loop, UpstreamOptions poolOptions, HttpsTransport* https = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The pool to an http origin, made on first use.
  UpstreamPool& pool(const Origin& origin);
  // Sends a whole request to `origin`, as UpstreamClient::send: `done` runs once, never from
  // inside send, unless the call is cancelled; the returned call is never null.
  UpstreamCall* send(const Origin& origin, UpstreamRequest request, UpstreamDone done);

  // Shutdown: every call still out ends with an error, idle connections close.
  void cancelCalls(const std::string& reason);
  void closeIdle();

  uv_loop_t* loop() const { return loop_; }
  Resolver& resolver() { return resolver_; }

 private:
  class FailedCall;

  uv_loop_t* loop_;
  UpstreamOptions poolOptions_;
  HttpsTransport* https_;
  Resolver resolver_;
  std::unordered_map<std::string, std::unique_ptr<UpstreamPool>> pools_;  // by Origin::describe
};

}  // namespace core
