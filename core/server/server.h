// The client side: listeners (TCP and unix socket), client connections with keep-alive and
// pipelining, and the exchanges that carry each request through the module chain to the
// model server and its response back.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/chain/filter.h"
#include "core/client/pool.h"
#include "core/server/limits.h"

namespace core {

class ClientConnection;

// Counters the server keeps; metrics read them from another loop's thread, hence atomics.
struct ServerStats {
  std::atomic<uint64_t> connectionsAccepted{0};
  std::atomic<uint64_t> connectionsRejected{0};
  std::atomic<size_t> connectionsOpen{0};
  std::atomic<size_t> exchangesInFlight{0};
};

// Everything a client connection needs, shared by all connections of one loop.
struct ServerContext {
  ServerContext(const ServerLimits& limits, uv_loop_t* loop, UpstreamPool& upstream,
                size_t maxConnections);

  // Sets the filter chain, in order; computes which filters observe what.
  void setFilters(std::vector<Filter*> filters);

  const ServerLimits& limits;
  uv_loop_t* loop;
  size_t maxConnections;  // this loop's share of --max-connections
  UpstreamPool& upstream;
  std::vector<Filter*> filters;
  std::vector<size_t> requestDataObservers;
  std::vector<size_t> responseObservers;
  std::vector<size_t> completeObservers;
  // Runs first for every request (probes, drain); returns true when it answered.
  std::function<bool(const ExchangePtr&)> intercept;
  // Called when an exchange's response is complete or the client went away.
  std::function<void(const Exchange&, int status, std::chrono::steady_clock::duration)>
      onExchangeDone;
  // During a drain: a client connection wrote out everything queued for it, or closed.
  std::function<void()> onClientSettled;
  ServerStats stats;
  std::unordered_set<Connection*> clients;  // open client connections
  bool draining = false;                    // stop keep-alive: answer with Connection: close
};

// A listening socket (TCP or unix) whose connections share one ServerContext.
class Listener {
 public:
  explicit Listener(ServerContext& context);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Listens on 0.0.0.0:port (IPv4 and IPv6 when available). `reusePort` for several loops.
  int listenTcp(uint16_t port, bool reusePort);
  // Listens on a unix socket path; a leading '@' names an abstract socket.
  int listenUnix(const std::string& path);
  // Stops accepting; open connections carry on.
  void close();

 private:
  static void onConnection(uv_stream_t* server, int status);
  void accept(uv_stream_t* server);

  ServerContext& context_;
  std::vector<uv_stream_t*> handles_;
  bool unix_ = false;
};

// Closes idle keep-alive client connections of this loop (used by drain), each once its last
// response is written; returns how many connections are still busy or still writing.
size_t closeIdleClients(ServerContext& context);

}  // namespace core
