// The bounds a server puts on its clients: head and body sizes, connections and timeouts. Each
// binary maps its flags onto them; the server enforces them in one place.
#pragma once

#include <chrono>
#include <cstddef>

namespace core {

struct ServerLimits {
  size_t maxHeaderBytes = 64 * 1024;
  size_t maxHeaderCount = 100;
  size_t maxRequestBodyBytes = size_t{1} << 30;
  // Bodies a filter reads whole (the batcher's): 413 above this.
  size_t maxBufferedBodyBytes = size_t{64} << 20;
  // Time to receive a request head, and the longest pause inside a request body (408).
  std::chrono::milliseconds headerTimeout{std::chrono::seconds(60)};
  // Keep-alive connections with no request close after this.
  std::chrono::milliseconds idleTimeout{std::chrono::seconds(180)};
  // A client that stops reading its response is disconnected after this.
  std::chrono::milliseconds writeTimeout{std::chrono::seconds(60)};
};

}  // namespace core
