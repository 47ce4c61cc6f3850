#include "tests/logger/helpers.h"

#include <signal.h>
#include <uv.h>

#include <sstream>
#include <stdexcept>
#include <thread>

namespace logtest {

namespace {

int run(const std::vector<std::string>& argv) {
  testsupport::Process process(argv);
  return process.wait(60s);
}

}  // namespace

std::string base64Decode(const std::string& text) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned value = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    size_t index = alphabet.find(c);
    if (index == std::string::npos) continue;
    value = (value << 6) | static_cast<unsigned>(index);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((value >> bits) & 0xFF);
    }
  }
  return out;
}

SinkOptions failingFirst(int count, int status) {
  SinkOptions options;
  options.failFirst = count;
  options.failStatus = status;
  return options;
}

SinkOptions delayed(int milliseconds) {
  SinkOptions options;
  options.delayMs = milliseconds;
  return options;
}

SinkOptions onPort(uint16_t port) {
  SinkOptions options;
  options.port = port;
  return options;
}

SinkOptions closingAfter(int answers) {
  SinkOptions options;
  options.closeAfter = answers;
  return options;
}

SinkOptions withTls(const std::string& key, const std::string& cert) {
  SinkOptions options;
  options.tlsKey = key;
  options.tlsCert = cert;
  return options;
}

Sink::Sink(SinkOptions options)
    : port_(options.port != 0 ? options.port : testsupport::freePort()),
      tls_(!options.tlsKey.empty()) {
  outPath_ = testsupport::makeTempDir("ce-sink") + "/events.jsonl";
  std::vector<std::string> argv{"/usr/bin/env",
                                "node",
                                testsupport::sourcePath("tests/support/ce_sink.js"),
                                "--port",
                                std::to_string(port_),
                                "--out",
                                outPath_,
                                "--fail-first",
                                std::to_string(options.failFirst),
                                "--fail-status",
                                std::to_string(options.failStatus),
                                "--delay-ms",
                                std::to_string(options.delayMs),
                                "--close-after",
                                std::to_string(options.closeAfter),
                                "--serial",
                                options.serial ? "1" : "0",
                                "--connection-close",
                                options.connectionClose ? "1" : "0",
                                "--redeliver",
                                std::to_string(options.redeliver)};
  if (tls_) {
    argv.insert(argv.end(), {"--tls-key", options.tlsKey, "--tls-cert", options.tlsCert});
  }
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 15s)) {
    throw std::runtime_error("ce_sink did not start: " + process_->output());
  }
}

std::string Sink::url(const std::string& path) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<nlohmann::json> Sink::events() const {
  std::vector<nlohmann::json> events;
  std::istringstream in(testsupport::readFile(outPath_));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) events.push_back(nlohmann::json::parse(line));
  }
  return events;
}

std::vector<nlohmann::json> Sink::waitForEvents(size_t count,
                                                std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto recorded = events();
    if (recorded.size() >= count || std::chrono::steady_clock::now() >= deadline) return recorded;
    std::this_thread::sleep_for(20ms);
  }
}

void Sink::stop() {
  process_->signal(SIGKILL);
  process_->wait(10s);
}

Loop::Loop() : loop_(std::make_unique<uv_loop_s>()) {
  uv_loop_init(loop_.get());
}

Loop::~Loop() {
  if (!closed_) close();
}

bool Loop::runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  struct Check {
    uv_timer_t timer{};
    std::function<bool()> done;
    std::chrono::steady_clock::time_point deadline;
  };
  auto* check = new Check{{}, done, std::chrono::steady_clock::now() + timeout};
  uv_timer_init(loop_.get(), &check->timer);
  check->timer.data = check;
  uv_timer_start(
      &check->timer,
      [](uv_timer_t* timer) {
        auto* c = static_cast<Check*>(timer->data);
        if (c->done() || std::chrono::steady_clock::now() >= c->deadline) uv_stop(timer->loop);
      },
      0, 5);
  uv_run(loop_.get(), UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&check->timer),
           [](uv_handle_t* handle) { delete static_cast<Check*>(handle->data); });
  uv_run(loop_.get(), UV_RUN_NOWAIT);
  return done();
}

void Loop::runFor(std::chrono::milliseconds duration) {
  runUntil([] { return false; }, duration);
}

bool Loop::close() {
  closed_ = true;
  for (int i = 0; i < 10; ++i)
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  return uv_loop_close(loop_.get()) == 0;
}

TestPki makeTestPki(const std::string& dir) {
  TestPki pki{dir + "/ca.crt", dir + "/server.key", dir + "/server.crt"};
  std::string caKey = dir + "/ca.key";
  std::string csr = dir + "/server.csr";
  std::string extensions = dir + "/server.ext";
  testsupport::writeFile(
      extensions,
      "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
      "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  int status = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    caKey, "-out", pki.caCert, "-days", "2", "-subj", "/CN=ksa logger test CA"});
  status |= run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 pki.serverKey, "-out", csr, "-subj", "/CN=127.0.0.1"});
  status |= run({"/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", pki.caCert, "-CAkey", caKey,
                 "-CAcreateserial", "-out", pki.serverCert, "-days", "2", "-extfile", extensions});
  if (status != 0) throw std::runtime_error("openssl failed to make the test certificates");
  return pki;
}

std::string eventBody(const nlohmann::json& event) {
  return base64Decode(event.value("data_b64", std::string()));
}

std::string eventHeader(const nlohmann::json& event, const std::string& lowerName) {
  const auto& headers = event.at("headers");
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->get<std::string>();
}

bool hasEventHeader(const nlohmann::json& event, const std::string& lowerName) {
  return event.at("headers").contains(lowerName);
}

std::string patternBytes(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>(i % 256);
  return bytes;
}

logger::Options optionsFor(const Sink& sink) {
  logger::Options options;
  options.logUrl = sink.url();
  options.logRetries = 2;
  return options;
}

agent::ModuleContext contextFor(Loop& loop, prometheus::Registry* metrics) {
  agent::ModuleContext context;
  context.loop = loop.get();
  context.metrics = metrics;
  context.listenPort = 9081;
  return context;
}

}  // namespace logtest
