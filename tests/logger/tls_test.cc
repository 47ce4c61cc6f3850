// The logger's https path: the CA bundle and the dispatcher over TLS.
#include <catch2/catch.hpp>

#include "logger/ca_bundle.h"
#include "logger/dispatcher.h"
#include "tests/logger/helpers.h"

using namespace std::chrono_literals;
using logtest::Loop;
using logtest::Sink;

TEST_CASE("The CA bundle adds the custom file to the system roots and follows changes",
          "[logger]") {
  std::string dir = testsupport::makeTempDir("ca-bundle");
  std::string system = dir + "/system.pem";
  std::string custom = dir + "/custom.crt";
  testsupport::writeFile(system, "-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----");
  logger::CaBundle bundle(custom, system);
  auto now = std::chrono::steady_clock::now();
  CHECK(bundle.current(now) == nullptr);

  testsupport::writeFile(custom, "-----BEGIN CERTIFICATE-----\nONE\n-----END CERTIFICATE-----\n");
  CHECK(bundle.current(now + 500ms) == nullptr);  // looked at once per second at most
  auto first = bundle.current(now + 1s);
  REQUIRE(first != nullptr);
  CHECK(first->find("SYSTEM") != std::string::npos);
  CHECK(first->find("ONE") < first->size());
  CHECK(first->find("SYSTEM") < first->find("ONE"));
  CHECK(bundle.current(now + 2s) == first);  // unchanged file: same bundle, not re-read

  testsupport::writeFile(custom,
                         "-----BEGIN CERTIFICATE-----\nTWO, longer\n-----END CERTIFICATE-----\n");
  auto second = bundle.current(now + 3s);
  REQUIRE(second != nullptr);
  CHECK(second->find("TWO") != std::string::npos);
  CHECK(second->find("ONE") == std::string::npos);

  testsupport::writeFile(custom, "not a certificate");
  CHECK(bundle.current(now + 4s) == nullptr);
}

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
