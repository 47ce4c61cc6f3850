// An outbound HTTP client on the event loop: libcurl's multi interface driven by libuv (socket
// callbacks through uv_poll_t, curl's timer through uv_timer_t, as libcurl's multi-uv.c example
// does), so requests need no threads and connections are kept alive between requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>

#include "core/http/head.h"
#include "core/util/capture.h"
#include "core/uv/timer.h"

struct uv_loop_s;

namespace core_curl {

using core::Headers;
using core::SharedBytes;
using core::Timer;

struct CurlRequest {
  std::string method = "POST";
  std::string url;
  Headers headers;
  // Shared so that a retried request does not copy its body; kept alive while in flight.
  SharedBytes body;
  std::chrono::milliseconds timeout{0};         // whole transfer, connect included; 0: none
  std::chrono::milliseconds connectTimeout{0};  // resolving and connecting; 0: curl's (300 s)
  // PEM certificates to trust for https; null: curl's default store.
  std::shared_ptr<const std::string> caBundle;
  bool skipTlsVerify = false;
  // The body kept of the answer: 0 takes the client's Options::maxResponseBytes. Beyond it the
  // rest is dropped, or with failOnLargeBody the transfer fails.
  size_t maxResponseBytes = 0;
  bool failOnLargeBody = false;
};

struct CurlResult {
  long status = 0;    // 0: no HTTP answer, see error
  std::string error;  // why there is no answer (connection refused, timeout, TLS, ...)
  Headers headers;    // of the final answer
  std::string body;   // the start of the response body (bounded)
  bool timedOut = false;
};

class CurlClient {
 public:
  struct Options {
    // Connections kept to one host, busy or idle; more transfers wait inside curl.
    long maxConnectionsPerHost = 8;
    size_t maxResponseBytes = 64 * 1024;
    std::string userAgent = "kserve-agent";
  };
  using Done = std::function<void(CurlResult)>;

  CurlClient(uv_loop_s* loop, Options options);
  // Cancels the transfers still running without calling their callbacks. Must not run from
  // inside one of this client's callbacks.
  ~CurlClient();
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  // Starts a request; `done` runs once on the loop with the outcome (never from inside send).
  // Returns the transfer's id, or 0 when curl refused to set it up (`done` is not called).
  uint64_t send(CurlRequest request, Done done);
  // Stops a transfer without calling its callback; false when it is not running.
  bool cancel(uint64_t id);
  size_t active() const { return transfers_.size(); }
  // New connections opened so far (keep-alive keeps this low).
  uint64_t connectionsOpened() const { return connectionsOpened_; }

 private:
  struct Transfer;
  struct SocketWatch;
  struct MultiDeleter {
    void operator()(void* multi) const;
  };

  static size_t onBody(char* data, size_t size, size_t count, void* transfer);
  static size_t onHeader(char* data, size_t size, size_t count, void* transfer);
  static int onSocket(void* easy, int fd, int what, void* client, void* watch);
  static int onCurlTimer(void* multi, long timeoutMs, void* client);
  void socketAction(int fd, int flags);
  void finishCompleted();
  void closeWatch(SocketWatch* watch);

  uv_loop_s* loop_;
  Options options_;
  Timer timer_;
  std::unique_ptr<void, MultiDeleter> multi_;
  std::map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  std::unordered_set<SocketWatch*> watches_;
  uint64_t nextId_ = 1;
  uint64_t connectionsOpened_ = 0;
};

}  // namespace core_curl
