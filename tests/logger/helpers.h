// Shared pieces of the logger tests: the CloudEvents sink (tests/support/ce_sink.js) as a
// child process, a libuv loop that tests drive until a condition holds, and a test CA.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/module.h"
#include "logger/logger.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

struct uv_loop_s;
namespace prometheus {
class Registry;
}  // namespace prometheus

namespace logtest {

using namespace std::chrono_literals;

struct SinkOptions {
  int failFirst = 0;
  int failStatus = 503;
  int delayMs = 0;
  int closeAfter = 0;   // drop each connection after this many answers on it
  bool serial = false;  // with delayMs: one answer at a time per connection, as most servers
  bool connectionClose = false;  // every answer says Connection: close
  int redeliver = 0;  // the first N events are recorded, then their connection dropped unanswered
  std::string tlsKey;
  std::string tlsCert;
  uint16_t port = 0;  // 0: a free port
};

SinkOptions failingFirst(int count, int status = 503);
SinkOptions delayed(int milliseconds);
SinkOptions onPort(uint16_t port);
SinkOptions closingAfter(int answers);
SinkOptions withTls(const std::string& key, const std::string& cert);

// The CloudEvents consumer, recording one JSON line per accepted event.
class Sink {
 public:
  explicit Sink(SinkOptions options = {});
  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/") const;
  // The events recorded so far, in arrival order.
  std::vector<nlohmann::json> events() const;
  // Polls until at least `count` events were recorded (or the timeout); returns them.
  std::vector<nlohmann::json> waitForEvents(size_t count,
                                            std::chrono::milliseconds timeout = 20s) const;
  testsupport::Process& process() { return *process_; }
  void stop();

 private:
  uint16_t port_;
  bool tls_;
  std::string outPath_;
  std::unique_ptr<testsupport::Process> process_;
};

// A private libuv loop for in-process tests. The destructor checks nothing is left open.
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  uv_loop_s* get() { return loop_.get(); }
  // Runs the loop until `done()` holds or the timeout passes; returns done().
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s);
  // Runs the loop for a while.
  void runFor(std::chrono::milliseconds duration);
  // Runs pending close callbacks and closes the loop; true when nothing was left open.
  bool close();

 private:
  std::unique_ptr<uv_loop_s> loop_;
  bool closed_ = false;
};

// A CA and a server certificate for 127.0.0.1 made with the openssl command, in `dir`.
struct TestPki {
  std::string caCert;
  std::string serverKey;
  std::string serverCert;
};
TestPki makeTestPki(const std::string& dir);

std::string base64Decode(const std::string& text);
// The exact bytes of the body an event carried.
std::string eventBody(const nlohmann::json& event);
// A raw header of a recorded event ("" when absent).
std::string eventHeader(const nlohmann::json& event, const std::string& lowerName);
bool hasEventHeader(const nlohmann::json& event, const std::string& lowerName);

// Bytes 0..255 repeated, as the model server's /echo?size= produces.
std::string patternBytes(size_t size);

// An exchange for driving a module's hooks by hand, as the agent's chain would.
class FakeExchange : public agent::Exchange {
 public:
  FakeExchange(uint64_t id, agent::RequestHead request) : id_(id), request_(std::move(request)) {}
  const agent::RequestHead& request() const override { return request_; }
  agent::RequestHead& mutableRequest() override { return request_; }
  const std::string& clientAddress() const override { return address_; }
  const agent::ResponseHead* response() const override { return response_ ? &*response_ : nullptr; }
  uint64_t id() const override { return id_; }
  std::chrono::system_clock::time_point startTime() const override { return start_; }
  bool finished() const override { return false; }
  bool requestReceived() const override { return received; }
  void reply(agent::ResponseHead head, std::string body) override {
    response_ = std::move(head);
    (void)body;
  }
  void setResponse(agent::ResponseHead head) { response_ = std::move(head); }
  bool received = true;  // what requestReceived() says

 private:
  uint64_t id_;
  agent::RequestHead request_;
  std::optional<agent::ResponseHead> response_;
  std::string address_ = "127.0.0.1";
  std::chrono::system_clock::time_point start_ = std::chrono::system_clock::now();
};

// Logger flags that send to `sink`, with two attempts per event.
logger::Options optionsFor(const Sink& sink);
// The context the agent gives a module, on `loop`; listening on 9081.
agent::ModuleContext contextFor(Loop& loop, prometheus::Registry* metrics = nullptr);

}  // namespace logtest
