// A core server in the test process: a ServerContext and a TCP Listener on a TestLoop, with the
// terminal and limits the test gives, for tests that drive the server or the proxy through real
// sockets while the loop runs (TestLoop::runAlongside). Header-only: the support library does
// not link the core.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/server/server.h"
#include "tests/support/loop.h"
#include "tests/support/net.h"

namespace testsupport {

class CoreServer {
 public:
  CoreServer(TestLoop& loop, core::Terminal& terminal, core::ServerLimits limits = {})
      : loop_(loop),
        limits_(limits),
        context(limits_, loop.get(), terminal, 64),
        listener(context) {
    // The port was free a moment ago; another test may take it in between, so try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = freePort();
      if (listener.listenTcp(port_, false) == 0) return;
      listener.close();
    }
    throw std::runtime_error("no port to listen on");
  }
  // Closes what is still open, as a binary's shutdown does, and lets the close callbacks run:
  // they use the context.
  ~CoreServer() { close(); }
  CoreServer(const CoreServer&) = delete;
  CoreServer& operator=(const CoreServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // What a client has received so far: enough?
  using Received = std::function<bool(const std::string&)>;
  static bool oneResponse(const std::string& received) { return countResponses(received) == 1; }
  static bool whenClosed(const std::string&) { return false; }

  // Sends `bytes` on a connection of its own, from a client thread while the loop runs, and
  // returns what arrived until `enough` held, the server closed the connection, or 5 s passed.
  std::string roundTrip(const std::string& bytes, const Received& enough = oneResponse) {
    std::string received;
    loop_.runAlongside([&] {
      RawSocket socket(port_);
      socket.send(bytes);
      received = socket.readUntil(enough, std::chrono::seconds(5));
    });
    return received;
  }

  void close() {
    listener.close();
    std::vector<core::Connection*> clients(context.clients.begin(), context.clients.end());
    for (core::Connection* client : clients)
      client->close();
    context.terminal.shutdown();
    loop_.runUntil([this] { return context.clients.empty(); }, std::chrono::seconds(5));
  }

 private:
  TestLoop& loop_;
  core::ServerLimits limits_;
  uint16_t port_ = 0;

 public:
  core::ServerContext context;
  core::Listener listener;
};

}  // namespace testsupport
