#include "core_curl/curl_client.h"

#include <catch2/catch.hpp>

#include "tests/logger/helpers.h"

using namespace std::chrono_literals;
using logtest::Loop;
using logtest::Sink;

namespace {

core_curl::CurlRequest post(const std::string& url, std::string body) {
  core_curl::CurlRequest request;
  request.url = url;
  request.headers = {
      {"Ce-Id", "x"}, {"Ce-Type", "t"}, {"Ce-Source", "s"}, {"Ce-Specversion", "1.0"}};
  request.body = std::make_shared<const std::string>(std::move(body));
  request.timeout = 5s;
  return request;
}

}  // namespace

TEST_CASE("The client posts over one kept-alive connection", "[core_curl]") {
  Sink sink;
  Loop loop;
  {
    core_curl::CurlClient client(loop.get(), {});
    std::vector<long> statuses;
    std::function<void()> next = [&] {
      client.send(post(sink.url(), "body"), [&](core_curl::CurlResult result) {
        statuses.push_back(result.status);
        if (statuses.size() < 5) next();
      });
    };
    next();
    REQUIRE(loop.runUntil([&] { return statuses.size() == 5; }));
    CHECK(statuses == std::vector<long>(5, 202));
    CHECK(client.connectionsOpened() == 1);
    CHECK(client.active() == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("A refused connection and a timeout come back as errors", "[core_curl]") {
  Sink slow(logtest::delayed(3000));
  Loop loop;
  {
    core_curl::CurlClient client(loop.get(), {});
    std::optional<core_curl::CurlResult> refused;
    std::optional<core_curl::CurlResult> timedOut;
    client.send(post("http://127.0.0.1:" + std::to_string(testsupport::freePort()) + "/", "x"),
                [&](core_curl::CurlResult r) { refused = std::move(r); });
    auto request = post(slow.url(), "x");
    request.timeout = 200ms;
    client.send(std::move(request), [&](core_curl::CurlResult r) { timedOut = std::move(r); });
    REQUIRE(loop.runUntil([&] { return refused && timedOut; }, 5s));
    CHECK(refused->status == 0);
    CHECK_FALSE(refused->error.empty());
    CHECK(timedOut->status == 0);
    CHECK_THAT(timedOut->error, Catch::Contains("imed out"));
  }
  CHECK(loop.close());
}

TEST_CASE("Cancelled and abandoned transfers never call back and leave no handle", "[core_curl]") {
  Sink slow(logtest::delayed(2000));
  Loop loop;
  {
    core_curl::CurlClient client(loop.get(), {});
    int calls = 0;
    uint64_t first = client.send(post(slow.url(), "1"), [&](core_curl::CurlResult) { ++calls; });
    client.send(post(slow.url(), "2"), [&](core_curl::CurlResult) { ++calls; });
    loop.runFor(100ms);
    CHECK(client.active() == 2);
    CHECK(client.cancel(first));
    CHECK_FALSE(client.cancel(first));
    loop.runFor(50ms);
    CHECK(client.active() == 1);
  }
  CHECK(loop.close());
}
