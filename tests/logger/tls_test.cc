// The logger's https path: the dispatcher over TLS.
#include <catch2/catch.hpp>

#include "logger/dispatcher.h"
#include "tests/logger/helpers.h"

using namespace std::chrono_literals;
using logtest::Loop;
using logtest::Sink;

TEST_CASE("HTTPS sinks: verified with the CA file, refused without, skip-verify honoured",
          "[logger]") {
  std::string dir = testsupport::makeTempDir("pki");
  auto pki = logtest::makeTestPki(dir);
  Sink sink(logtest::withTls(pki.serverKey, pki.serverCert));
  Loop loop;
  auto deliver = [&](const std::string& caPath, bool skipVerify) {
    logger::DispatcherOptions options;
    options.url = sink.url();
    options.workers = 1;
    options.attempts = 1;
    options.caCertPath = caPath;
    options.skipTlsVerify = skipVerify;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    auto event = std::make_unique<logger::Event>();
    event->record.id = "tls";
    event->body = std::make_shared<const std::string>("secret");
    dispatcher.enqueue(std::move(event));
    loop.runUntil([&] { return dispatcher.stats().depth == 0; }, 10s);
    return dispatcher.stats().sent == 1;
  };
  CHECK(deliver(pki.caCert, false));
  CHECK_FALSE(deliver(dir + "/missing.crt", false));
  CHECK(deliver(dir + "/missing.crt", true));
  CHECK(sink.waitForEvents(2).size() == 2);
  CHECK(loop.close());
}

TEST_CASE("A CA file that appears later is picked up without a restart", "[logger]") {
  std::string dir = testsupport::makeTempDir("pki-late");
  auto pki = logtest::makeTestPki(dir);
  Sink sink(logtest::withTls(pki.serverKey, pki.serverCert));
  Loop loop;
  {
    logger::DispatcherOptions options;
    options.url = sink.url();
    options.workers = 1;
    options.attempts = 1;
    options.caCertPath = dir + "/rotated/ca.crt";
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    auto offer = [&](const std::string& id) {
      auto event = std::make_unique<logger::Event>();
      event->record.id = id;
      event->body = std::make_shared<const std::string>("x");
      dispatcher.enqueue(std::move(event));
      loop.runUntil([&] { return dispatcher.stats().depth == 0; }, 10s);
    };
    offer("before");
    CHECK(dispatcher.stats().sent == 0);
    testsupport::writeFile(options.caCertPath, testsupport::readFile(pki.caCert));
    loop.runFor(1100ms);
    offer("after");
    CHECK(dispatcher.stats().sent == 1);
    auto events = sink.waitForEvents(1);
    REQUIRE(events.size() == 1);
    CHECK(events[0]["id"] == "after");
  }
  CHECK(loop.close());
}
