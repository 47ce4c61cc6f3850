// core::Client and its pools on a real loop against the sample model server.
#include "core/client/client.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/loop.h"
#include "tests/support/peers.h"

using namespace core;
using namespace testsupport;
using namespace std::chrono_literals;

namespace {

sockaddr_storage ip(const char* text) {
  return *literalAddress(text, 0);
}

UpstreamRequest get(std::string target, std::chrono::milliseconds timeout = 5000ms) {
  UpstreamRequest request;
  request.method = "GET";
  request.target = std::move(target);
  request.timeout = timeout;
  return request;
}

// Sends one call and runs the loop until its answer.
UpstreamResult callOnce(TestLoop& loop, Client& client, const Origin& origin,
                        UpstreamRequest request) {
  std::optional<UpstreamResult> result;
  client.send(origin, std::move(request), [&](UpstreamResult r) { result = std::move(r); });
  REQUIRE(loop.runUntil([&] { return result.has_value(); }));
  return *result;
}

void closeClient(TestLoop& loop, Client& client) {
  client.closeIdle();
  loop.runFor(50ms);
}

}  // namespace

TEST_CASE("each address of a name is tried in turn until one accepts", "[core][client]") {
  ModelServer model;
  TestLoop loop;
  {
    Client client(loop.get(), UpstreamOptions{});
    // Nothing listens on 127.0.0.2 (loopback, but the model server binds 127.0.0.1 only).
    client.resolver().rememberForTest("model.test", {ip("127.0.0.2"), ip("127.0.0.1")});
    Origin origin{false, "model.test", model.port()};
    UpstreamResult r = callOnce(loop, client, origin, get("/echo?size=5"));
    CHECK(r.status == 200);
    CHECK(r.body.size() == 5);
    // The request names the origin in its Host header when it carries none.
    auto recorded = nlohmann::json::parse(model.recordedLines().back());
    bool hostSeen = false;
    for (const auto& header : recorded["headers"]) {
      if (header[0] == "Host") {
        hostSeen = true;
        CHECK(header[1] == "model.test:" + std::to_string(model.port()));
      }
    }
    CHECK(hostSeen);
    closeClient(loop, client);
  }
  CHECK(loop.close());
}

TEST_CASE("when every address refuses, the error names the last one tried", "[core][client]") {
  TestLoop loop;
  {
    Client client(loop.get(), UpstreamOptions{});
    client.resolver().rememberForTest("down.test", {ip("127.0.0.2"), ip("127.0.0.3")});
    uint16_t port = freePort();
    UpstreamResult r = callOnce(loop, client, Origin{false, "down.test", port}, get("/"));
    CHECK(r.status == 0);
    CHECK(r.error ==
          "dial tcp 127.0.0.3:" + std::to_string(port) + ": connect: connection refused");
    closeClient(loop, client);
  }
  CHECK(loop.close());
}

TEST_CASE("names are resolved off the loop (localhost)", "[core][client]") {
  ModelServer model;
  TestLoop loop;
  {
    Client client(loop.get(), UpstreamOptions{});
    UpstreamResult r =
        callOnce(loop, client, Origin{false, "localhost", model.port()}, get("/echo?size=3"));
    CHECK(r.status == 200);
    CHECK(r.body.size() == 3);
    closeClient(loop, client);
  }
  CHECK(loop.close());
}

TEST_CASE("a cancelled call never calls back and its connection is not reused", "[core][client]") {
  ModelServer model;
  TestLoop loop;
  {
    Client client(loop.get(), UpstreamOptions{});
    Origin origin{false, "127.0.0.1", model.port()};
    bool called = false;
    UpstreamCall* call =
        client.send(origin, get("/echo?delay_ms=300"), [&](UpstreamResult) { called = true; });
    REQUIRE(call != nullptr);
    loop.runFor(50ms);
    call->cancel();
    loop.runFor(500ms);
    CHECK_FALSE(called);
    CHECK(client.pool(origin).openConnections() == 0);
    // The pool still serves the next call.
    CHECK(callOnce(loop, client, origin, get("/echo?size=1")).status == 200);
    closeClient(loop, client);
  }
  CHECK(loop.close());
}

TEST_CASE("timeouts and body bounds fail a call with what happened", "[core][client]") {
  ModelServer model;
  TestLoop loop;
  {
    Client client(loop.get(), UpstreamOptions{});
    Origin origin{false, "127.0.0.1", model.port()};
    UpstreamResult slow = callOnce(loop, client, origin, get("/echo?delay_ms=1000", 100ms));
    CHECK(slow.status == 0);
    CHECK(slow.timedOut);
    CHECK(slow.error == "timed out after 100ms waiting for the model server");

    UpstreamRequest big = get("/echo?size=5000");
    big.maxResponseBytes = 100;
    UpstreamResult tooLarge = callOnce(loop, client, origin, std::move(big));
    CHECK(tooLarge.status == 0);
    CHECK_FALSE(tooLarge.timedOut);
    CHECK(tooLarge.error == "the response body of the model server is larger than 100 bytes");
    closeClient(loop, client);
  }
  CHECK(loop.close());
}

TEST_CASE("https without a transport fails on the next loop turn", "[core][client]") {
  TestLoop loop;
  {
    Client client(loop.get(), UpstreamOptions{});
    std::optional<UpstreamResult> result;
    client.send(Origin{true, "127.0.0.1", 443}, get("/"),
                [&](UpstreamResult r) { result = std::move(r); });
    CHECK_FALSE(result.has_value());
    REQUIRE(loop.runUntil([&] { return result.has_value(); }));
    CHECK(result->status == 0);
    CHECK(result->error == "https is not available for https://127.0.0.1:443");
  }
  CHECK(loop.close());
}
