#include "tests/support/peers.h"

#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace testsupport {

ModelServer::ModelServer(std::vector<std::string> extraArgs, uint16_t port)
    : port_(port != 0 ? port : freePort()) {
  recordPath_ = makeTempDir("model") + "/requests.jsonl";
  std::vector<std::string> argv{"/usr/bin/env",
                                "python3",
                                sourcePath("tests/support/model_server.py"),
                                "--port",
                                std::to_string(port_),
                                "--record",
                                recordPath_};
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<Process>(argv);
  if (!waitForPort(port_, 15s)) {
    throw std::runtime_error("model server did not start: " + process_->output());
  }
}

std::string ModelServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> ModelServer::recordedLines() const {
  std::vector<std::string> lines;
  std::istringstream in(readFile(recordPath_));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

void ModelServer::stop() {
  process_->signal(SIGKILL);
  process_->wait(10s);
}

Agent::Agent(uint16_t componentPort, std::vector<std::string> extraArgs,
             std::map<std::string, std::string> env)
    : port_(freePort()) {
  std::vector<std::string> argv{builtBinary("kserve-agent"), "--port", std::to_string(port_),
                                "--component-port", std::to_string(componentPort)};
  // Tests run several agents at once, so the shared abstract unix socket is opt-in, and a
  // SIGTERM should not wait the production quiet period unless a test asks for it.
  bool hasSocket = false;
  bool hasQuiet = false;
  for (const auto& a : extraArgs) {
    hasSocket = hasSocket || a.starts_with("--unix-socket");
    hasQuiet = hasQuiet || a.starts_with("--quiet-period");
  }
  if (!hasSocket) argv.push_back("--unix-socket=");
  if (!hasQuiet) argv.push_back("--quiet-period=0s");
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<Process>(argv, env);
  if (!waitForPort(port_, 15s)) {
    throw std::runtime_error("agent did not start: " + process_->output());
  }
}

std::string Agent::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

Agent::~Agent() {
  if (!terminated_ && !process_->running()) {
    std::fprintf(stderr, "kserve-agent exited on its own; its output:\n%s\n",
                 process_->output().c_str());
  }
}

int Agent::waitForExit(std::chrono::milliseconds timeout) {
  terminated_ = true;
  return process_->wait(timeout);
}

int Agent::terminate(std::chrono::milliseconds timeout) {
  terminated_ = true;
  process_->signal(SIGTERM);
  return process_->wait(timeout);
}

Router::Router(const std::string& graphJson, std::vector<std::string> extraArgs,
               std::map<std::string, std::string> env)
    : port_(freePort()) {
  std::vector<std::string> argv{builtBinary("kserve-router"), "--graph-json", graphJson, "--port",
                                std::to_string(port_)};
  bool hasDrain = false;
  for (const auto& a : extraArgs)
    hasDrain = hasDrain || a.starts_with("--drain-period");
  if (!hasDrain) argv.push_back("--drain-period=0s");
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<Process>(argv, env);
  if (!waitForPort(port_, 15s)) {
    throw std::runtime_error("router did not start: " + process_->output());
  }
}

std::string Router::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

int Router::terminate(std::chrono::milliseconds timeout) {
  terminated_ = true;
  process_->signal(SIGTERM);
  return process_->wait(timeout);
}

int Router::waitForExit(std::chrono::milliseconds timeout) {
  terminated_ = true;
  return process_->wait(timeout);
}

Router::~Router() {
  if (!terminated_ && !process_->running()) {
    std::fprintf(stderr, "kserve-router exited on its own; its output:\n%s\n",
                 process_->output().c_str());
  }
}

std::unique_ptr<RawSocket> requestLargeBody(uint16_t agentPort, size_t size,
                                            const std::string& extraHeaders) {
  auto socket = std::make_unique<RawSocket>(agentPort);
  if (!socket->connected()) return nullptr;
  int small = 64 * 1024;
  ::setsockopt(socket->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  if (!socket->send("GET /echo?size=" + std::to_string(size) + " HTTP/1.1\r\nHost: x\r\n" +
                    extraHeaders + "\r\n")) {
    return nullptr;
  }
  return socket;
}

}  // namespace testsupport
