#include "core_curl/https_transport.h"

#include <catch2/catch.hpp>

#include "tests/logger/helpers.h"

using namespace std::chrono_literals;

TEST_CASE("https origins go through curl with the trust given, headers and body kept",
          "[core_curl]") {
  std::string dir = testsupport::makeTempDir("pki");
  auto pki = logtest::makeTestPki(dir);
  logtest::Sink sink(logtest::withTls(pki.serverKey, pki.serverCert));
  testsupport::TestLoop loop;
  {
    auto ca = std::make_shared<const std::string>(testsupport::readFile(pki.caCert));
    core_curl::CurlHttpsTransport trusted(loop.get(), {}, ca);
    core_curl::CurlHttpsTransport systemStore(loop.get(), {});
    core::Client client(loop.get(), core::UpstreamOptions{}, &trusted);
    core::Origin origin{true, "127.0.0.1", sink.port()};
    auto request = [] {
      core::UpstreamRequest r;
      r.target = "/";
      r.headers = {{"Ce-Id", "x"},
                   {"Ce-Type", "t"},
                   {"Ce-Source", "s"},
                   {"Ce-Specversion", "1.0"},
                   {"Content-Type", "text/plain"}};
      r.body = "hello";
      r.timeout = 5s;
      return r;
    };
    std::optional<core::UpstreamResult> ok;
    std::optional<core::UpstreamResult> refused;
    client.send(origin, request(), [&](core::UpstreamResult r) { ok = std::move(r); });
    systemStore.send(origin, request(), [&](core::UpstreamResult r) { refused = std::move(r); });
    REQUIRE(loop.runUntil([&] { return ok && refused; }, 10s));
    CHECK(ok->status >= 200);
    CHECK(ok->status < 300);
    CHECK(ok->error.empty());
    CHECK_FALSE(ok->headers.empty());
    // The sink's certificate is signed by a CA the system store does not hold.
    CHECK(refused->status == 0);
    CHECK_FALSE(refused->error.empty());
    CHECK(sink.waitForEvents(1).size() == 1);
  }
  CHECK(loop.close());
}
