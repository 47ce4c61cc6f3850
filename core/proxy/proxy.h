// The proxy: the terminal that streams each exchange to a pool of connections to one service
// (the agent's model server) and its response back. It writes the request head from the
// client's (hop-by-hop fields left out, X-Forwarded-For appended, framing rewritten when a filter
// read the body whole), retries a request that is safe to repeat once when a pooled connection
// turns out stale, relays trailers, and tunnels upgrades (101) and HTTP/2 with prior knowledge.
#pragma once

#include "core/chain/terminal.h"
#include "core/client/pool.h"

namespace core {

class ProxyTerminal final : public Terminal {
 public:
  explicit ProxyTerminal(UpstreamPool& pool) : pool_(pool) {}

  TerminalStreamPtr start(Downstream& exchange) override;
  TerminalStreamPtr startH2(Downstream& exchange, std::string preface) override;
  bool takesH2() const override { return true; }
  // Buffered calls still out are answered with an error (so a hung service cannot hold a
  // shutdown), and idle connections close.
  void shutdown() override;

 private:
  UpstreamPool& pool_;
};

}  // namespace core
