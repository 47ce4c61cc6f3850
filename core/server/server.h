// The server: listeners (TCP and unix socket), client connections with keep-alive and
// pipelining, and the exchanges that carry each request through the filter chain to the
// terminal (the agent's proxy, the router's graph) and its response back.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/chain/chain.h"
#include "core/chain/terminal.h"
#include "core/server/limits.h"
#include "core/uv/connection.h"

namespace core {

class ClientConnection;

// Counters the server keeps; metrics read them from another loop's thread, hence atomics.
struct ServerStats {
  std::atomic<uint64_t> connectionsAccepted{0};
  std::atomic<uint64_t> connectionsRejected{0};
  std::atomic<size_t> connectionsOpen{0};
  std::atomic<size_t> exchangesInFlight{0};
};

// What the owner of a server hears about: callbacks through an interface, so a server holds no
// closures of its owner.
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  // An exchange's response is complete (`status`), or its client went away first (499).
  virtual void onExchangeDone(const Exchange& exchange, int status,
                              std::chrono::steady_clock::duration elapsed) {
    (void)exchange;
    (void)status;
    (void)elapsed;
  }
  // During a drain: a client connection wrote out everything queued for it, or closed.
  virtual void onClientSettled() {}
};

// Everything a client connection needs, shared by all connections of one loop.
struct ServerContext {
  ServerContext(const ServerLimits& limits, uv_loop_t* loop, Terminal& terminal,
                size_t maxConnections);

  const ServerLimits& limits;
  uv_loop_t* loop;
  size_t maxConnections;  // this loop's share of the connection limit
  Chain chain;            // the filters every request passes
  Terminal& terminal;     // what answers the requests the filters let through
  ServerObserver* observer = nullptr;
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

// Closes every client connection of the context at once (shutdown).
void closeClients(ServerContext& context);

}  // namespace core
