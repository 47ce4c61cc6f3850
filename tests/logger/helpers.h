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

#include "core/chain/filter.h"
#include "logger/logger.h"
#include "tests/support/fake_exchange.h"
#include "tests/support/loop.h"
#include "tests/support/net.h"
#include "tests/support/pki.h"
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

// The loop helper every test folder shares.
using Loop = testsupport::TestLoop;

using testsupport::makeTestPki;
using testsupport::TestPki;

using testsupport::base64Decode;
// The exact bytes of the body an event carried.
std::string eventBody(const nlohmann::json& event);
// A raw header of a recorded event ("" when absent).
std::string eventHeader(const nlohmann::json& event, const std::string& lowerName);
bool hasEventHeader(const nlohmann::json& event, const std::string& lowerName);

// Bytes 0..255 repeated, as the model server's /echo?size= produces.
std::string patternBytes(size_t size);

using testsupport::FakeExchange;

// Logger flags that send to `sink`, with two attempts per event.
logger::Options optionsFor(const Sink& sink);
// The context the agent gives a module, on `loop`; listening on 9081.
core::FilterContext contextFor(Loop& loop);

}  // namespace logtest
