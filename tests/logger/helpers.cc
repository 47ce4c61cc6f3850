#include "tests/logger/helpers.h"

#include <signal.h>
#include <uv.h>

#include <sstream>
#include <stdexcept>
#include <thread>

namespace logtest {

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

core::FilterContext contextFor(Loop& loop) {
  core::FilterContext context;
  context.loop = loop.get();
  return context;
}

}  // namespace logtest
