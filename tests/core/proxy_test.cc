// The proxy terminal in the test process: a core server whose terminal is a ProxyTerminal on a
// pool to the real model server (tests/support/model_server.py), all on a TestLoop, with clients
// (libcurl, raw sockets) in a thread while the loop runs. What the model server received is
// read from its record of every request.
#include "core/proxy/proxy.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <thread>
#include <vector>

#include "core/client/client.h"
#include "tests/support/core_server.h"
#include "tests/support/loop.h"
#include "tests/support/peers.h"

using namespace core;
using namespace std::chrono_literals;
using namespace testsupport;

namespace {

// A server whose requests go through the proxy to the model server.
struct ProxyRig {
  ProxyRig(TestLoop& testLoop, const ModelServer& model)
      : loop(testLoop),
        client(loop.get(), UpstreamOptions{}),
        pool(client.pool(Origin{false, "127.0.0.1", model.port()})),
        proxy(pool),
        server(loop, proxy) {}
  // The server closes first (client connections, then the proxy's shutdown); the pool's
  // connections must be gone before the pool is.
  ~ProxyRig() {
    server.close();
    client.closeIdle();
    loop.runUntil([this] { return pool.openConnections() == 0; }, 5s);
  }

  TestLoop& loop;
  Client client;
  UpstreamPool& pool;
  ProxyTerminal proxy;
  CoreServer server;
};

// The values of a header in a request the model server recorded (names case-insensitive).
std::vector<std::string> recordedHeader(const nlohmann::json& entry, const std::string& name) {
  std::vector<std::string> values;
  for (const auto& header : entry["headers"]) {
    if (iequals(header[0].get<std::string>(), name)) values.push_back(header[1]);
  }
  return values;
}

std::vector<nlohmann::json> recorded(const ModelServer& model) {
  std::vector<nlohmann::json> entries;
  for (const std::string& line : model.recordedLines())
    entries.push_back(nlohmann::json::parse(line));
  return entries;
}

std::vector<std::string> recordedPaths(const ModelServer& model) {
  std::vector<std::string> paths;
  for (const auto& entry : recorded(model))
    paths.push_back(entry["method"].get<std::string>() + " " + entry["path"].get<std::string>());
  return paths;
}

bool endsWith(const std::string& text, std::string_view end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

using Values = std::vector<std::string>;

}  // namespace

TEST_CASE("the forwarded head drops hop-by-hop fields and appends to X-Forwarded-For",
          "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::string response = rig.server.roundTrip(
        "GET /echo?size=3 HTTP/1.1\r\n"
        "Host: inference.example\r\n"
        "Connection: keep-alive, X-Hop\r\n"
        "X-Hop: only for the first hop\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\n"
        "TE: trailers, deflate\r\n"
        "X-Forwarded-For: 10.0.0.1\r\n"
        "X-Keep: yes\r\n"
        "X-Forwarded-For: 10.0.0.2\r\n"
        "\r\n");
    CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(endsWith(response, std::string("\x00\x01\x02", 3)));
    auto entries = recorded(model);
    REQUIRE(entries.size() == 1);
    const auto& entry = entries[0];
    CHECK(entry["path"] == "/echo?size=3");
    CHECK(recordedHeader(entry, "Host") == Values{"inference.example"});
    CHECK(recordedHeader(entry, "X-Keep") == Values{"yes"});
    // Earlier hops' addresses are kept, in one field, and the client's is added.
    CHECK(recordedHeader(entry, "X-Forwarded-For") == Values{"10.0.0.1, 10.0.0.2, 127.0.0.1"});
    // TE says only whether trailers are welcome.
    CHECK(recordedHeader(entry, "TE") == Values{"trailers"});
    for (const char* dropped :
         {"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization"}) {
      INFO(dropped);
      CHECK(recordedHeader(entry, dropped).empty());
    }
  }
  CHECK(loop.close());
}

TEST_CASE("a request without Host is sent with the model server's authority", "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::string response =
        rig.server.roundTrip("GET /echo?size=2 HTTP/1.0\r\n\r\n", CoreServer::whenClosed);
    CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK_THAT(response, Catch::Contains("Connection: close\r\n"));
    auto entries = recorded(model);
    REQUIRE(entries.size() == 1);
    CHECK(recordedHeader(entries[0], "Host") ==
          Values{"127.0.0.1:" + std::to_string(model.port())});
    CHECK(recordedHeader(entries[0], "X-Forwarded-For") == Values{"127.0.0.1"});
  }
  CHECK(loop.close());
}

TEST_CASE("chunked bodies stream both ways", "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::string body;
    for (int i = 0; body.size() < 300'000; ++i)
      body += std::to_string(i) + ",";
    HttpResponse echoed;
    REQUIRE(loop.runAlongside([&] {
      echoed = httpRequest(rig.server.url("/echo?chunked=1"),
                           {.method = "POST", .body = body, .timeout = 10s, .chunkedUpload = true});
    }));
    CHECK(echoed.status == 200);
    CHECK(echoed.header("transfer-encoding") == "chunked");
    CHECK(echoed.body.size() == body.size());
    CHECK(echoed.body == body);
    auto entries = recorded(model);
    REQUIRE(entries.size() == 1);
    CHECK(recordedHeader(entries[0], "Transfer-Encoding") == Values{"chunked"});
    CHECK(recordedHeader(entries[0], "Content-Length").empty());
  }
  CHECK(loop.close());
}

TEST_CASE("a response streams to the client as the model server writes it", "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::string first;
    std::string all;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send("GET /sse?n=3&interval_ms=400 HTTP/1.1\r\nHost: test\r\n\r\n");
      first = socket.readUntil(
          [](const std::string& d) { return d.find("data: event 0") != std::string::npos; }, 5s);
      all = first +
            socket.readUntil([](const std::string& d) { return endsWith(d, "0\r\n\r\n"); }, 5s);
    }));
    // The first event came through while the model server was still writing the others.
    CHECK_THAT(first, Catch::Contains("data: event 0"));
    CHECK_THAT(first, !Catch::Contains("data: event 2"));
    CHECK_THAT(all, Catch::Contains("Content-Type: text/event-stream\r\n"));
    CHECK_THAT(all, Catch::Contains("Transfer-Encoding: chunked\r\n"));
    CHECK_THAT(all, Catch::Contains("data: event 2"));
  }
  CHECK(loop.close());
}

TEST_CASE("trailers are relayed both ways with their announcements", "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::string response = rig.server.roundTrip(
        "POST /echo?chunked=1&trailer=X-Checksum:abc&announce=X-Checksum HTTP/1.1\r\n"
        "Host: test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Request-Sum\r\n"
        "TE: trailers\r\n\r\n"
        "5\r\nhello\r\n0\r\nX-Request-Sum: 42\r\n\r\n",
        [](const std::string& d) { return endsWith(d, "X-Checksum: abc\r\n\r\n"); });
    size_t headEnd = response.find("\r\n\r\n");
    REQUIRE(headEnd != std::string::npos);
    std::string head = response.substr(0, headEnd + 2);
    CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK_THAT(head, Catch::Contains("\r\nTrailer: X-Checksum\r\n"));
    CHECK_THAT(head, Catch::Contains("\r\nTransfer-Encoding: chunked\r\n"));
    CHECK(endsWith(response, "\r\n0\r\nX-Checksum: abc\r\n\r\n"));
    auto entries = recorded(model);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0]["trailers"] == nlohmann::json::parse(R"([["X-Request-Sum", "42"]])"));
    CHECK(recordedHeader(entries[0], "Trailer") == Values{"X-Request-Sum"});
    CHECK(recordedHeader(entries[0], "TE") == Values{"trailers"});
  }
  CHECK(loop.close());
}

TEST_CASE("a 101 upgrade becomes a tunnel both ways until a side closes", "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::string head;
    std::string firstEcho;
    std::string secondEcho;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(
          "GET /upgrade HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
      head = socket.readUntil([](const std::string& d) { return endsWith(d, "\r\n\r\n"); }, 5s);
      socket.send("ping");
      firstEcho = socket.readUntil([](const std::string& d) { return d.size() >= 4; }, 5s);
      std::string large(100'000, 'T');
      socket.send(large);
      secondEcho =
          socket.readUntil([&](const std::string& d) { return d.size() >= large.size(); }, 5s);
    }));
    CHECK(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    CHECK_THAT(head, Catch::Contains("\r\nUpgrade: echo\r\n"));
    CHECK_THAT(head, Catch::Contains("\r\nConnection: Upgrade\r\n"));
    CHECK(firstEcho == "ping");
    CHECK(secondEcho == std::string(100'000, 'T'));
    // The model server got the upgrade request with the fields that ask for it.
    auto entries = recorded(model);
    REQUIRE(entries.size() == 1);
    CHECK(recordedHeader(entries[0], "Upgrade") == Values{"echo"});
    CHECK(recordedHeader(entries[0], "Connection") == Values{"Upgrade"});
    // The client left: the tunnel's model-server side closes too, and is not pooled.
    CHECK(loop.runUntil(
        [&] { return rig.server.context.clients.empty() && rig.pool.openConnections() == 0; }, 5s));
    CHECK(rig.pool.idleConnections() == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("a stale pooled connection is retried once for GET, never for POST", "[core][proxy]") {
  // The model server's /close reads the request and closes the connection without answering,
  // as a server that timed out an idle keep-alive connection does.
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    std::vector<HttpResponse> responses;
    auto call = [&](const std::string& method, const std::string& path) {
      REQUIRE(loop.runAlongside([&] {
        responses.push_back(httpRequest(rig.server.url(path), {.method = method, .timeout = 5s}));
      }));
    };
    call("GET", "/echo?size=1");  // leaves a pooled connection
    REQUIRE(rig.pool.idleConnections() == 1);
    call("GET", "/close");
    // The reused connection failed before any answer: once more on a fresh one, which fails too.
    CHECK(recordedPaths(model) == Values{"GET /echo?size=1", "GET /close", "GET /close"});
    CHECK(rig.pool.connectionsCreated() == 2);

    call("GET", "/echo?size=1");
    REQUIRE(rig.pool.idleConnections() == 1);
    call("POST", "/close");
    // Not safe to repeat: the failure is the answer.
    CHECK(recordedPaths(model) == Values{"GET /echo?size=1", "GET /close", "GET /close",
                                         "GET /echo?size=1", "POST /close"});
    CHECK(rig.pool.connectionsCreated() == 3);

    REQUIRE(responses.size() == 4);
    CHECK(responses[0].status == 200);
    CHECK(responses[2].status == 200);
    for (size_t i : {1, 3}) {
      INFO(i);
      CHECK(responses[i].status == 502);
      CHECK(responses[i].body == "the model server closed the connection\n");
    }
  }
  CHECK(loop.close());
}

TEST_CASE("a client that leaves abandons its model-server connection", "[core][proxy]") {
  ModelServer model;
  TestLoop loop;
  {
    ProxyRig rig(loop, model);
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send("GET /echo?delay_ms=500&size=10 HTTP/1.1\r\nHost: test\r\n\r\n");
      std::this_thread::sleep_for(100ms);
    }));
    CHECK(rig.pool.connectionsCreated() == 1);
    // The answer would come on a connection no exchange owns any more: it is closed, not pooled.
    REQUIRE(loop.runUntil([&] { return rig.pool.openConnections() == 0; }, 5s));
    CHECK(rig.pool.idleConnections() == 0);
    HttpResponse next;
    REQUIRE(loop.runAlongside(
        [&] { next = httpRequest(rig.server.url("/echo?size=4"), {.timeout = 5s}); }));
    CHECK(next.status == 200);
    CHECK(next.body.size() == 4);
    CHECK(rig.pool.connectionsCreated() == 2);
  }
  CHECK(loop.close());
}

TEST_CASE("a model server that is down is answered 502 with the dial error", "[core][proxy]") {
  TestLoop loop;
  {
    ModelServer model;
    ProxyRig rig(loop, model);
    model.stop();
    HttpResponse response;
    REQUIRE(loop.runAlongside(
        [&] { response = httpRequest(rig.server.url("/anything"), {.timeout = 5s}); }));
    CHECK(response.status == 502);
    CHECK(response.body ==
          "dial tcp 127.0.0.1:" + std::to_string(model.port()) + ": connect: connection refused\n");
    CHECK(response.header("content-type") == "text/plain; charset=utf-8");
  }
  CHECK(loop.close());
}
