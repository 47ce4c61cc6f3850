// The real peers integration tests start: the sample model server (Python, standard library)
// and the kserve-agent binary itself, each on an ephemeral loopback port.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace testsupport {

// tests/support/model_server.py on a free port, recording every request it receives.
class ModelServer {
 public:
  explicit ModelServer(std::vector<std::string> extraArgs = {}, uint16_t port = 0);
  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const;
  // The requests recorded so far, one JSON object per line.
  std::vector<std::string> recordedLines() const;
  void stop();
  Process& process() { return *process_; }

 private:
  uint16_t port_;
  std::string recordPath_;
  std::unique_ptr<Process> process_;
};

// A connection to the agent on `agentPort` with a 64 KiB receive buffer, on which a `size`-byte
// body was asked of the model server's /echo: most of the answer waits in the agent.
std::unique_ptr<RawSocket> requestLargeBody(uint16_t agentPort, size_t size,
                                            const std::string& extraHeaders = "");

// kserve-agent with --port and --component-port set, started and listening.
class Agent {
 public:
  Agent(uint16_t componentPort, std::vector<std::string> extraArgs = {},
        std::map<std::string, std::string> env = {});
  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const;
  Process& process() { return *process_; }
  // Stops the agent with SIGTERM and returns its exit status (-1 if it did not exit).
  int terminate(std::chrono::milliseconds timeout = 20s);
  // Waits for an exit the agent makes on its own (after a signal already sent); its status.
  int waitForExit(std::chrono::milliseconds timeout = 20s);
  // Prints the agent's output when it died on its own (a crash or sanitizer report).
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

 private:
  uint16_t port_;
  bool terminated_ = false;
  std::unique_ptr<Process> process_;
};

// kserve-router with --graph-json and --port set, started and listening. Unless the test says
// otherwise, a SIGTERM drains at once (--drain-period=0s).
class Router {
 public:
  explicit Router(const std::string& graphJson, std::vector<std::string> extraArgs = {},
                  std::map<std::string, std::string> env = {});
  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const;
  Process& process() { return *process_; }
  // Stops the router with SIGTERM and returns its exit status (-1 if it did not exit).
  int terminate(std::chrono::milliseconds timeout = 20s);
  // Waits for an exit the router makes on its own (after a signal already sent); its status.
  int waitForExit(std::chrono::milliseconds timeout = 20s);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

 private:
  uint16_t port_;
  bool terminated_ = false;
  std::unique_ptr<Process> process_;
};

}  // namespace testsupport
