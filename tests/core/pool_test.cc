// The upstream pool's buffered calls on a real loop against the real model server.
#include "core/client/pool.h"

#include <catch2/catch.hpp>

#include "tests/support/peers.h"

using namespace core;
using namespace testsupport;

namespace {

UpstreamResult call(uint16_t port, const UpstreamRequest& request) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  UpstreamResult last;
  {
    Resolver resolver(&loop);
    UpstreamPool pool(
        &loop, Origin{false, "127.0.0.1", port},
        UpstreamOptions{10, std::chrono::milliseconds(2000), std::chrono::milliseconds(0)},
        resolver);
    // Two calls: the second reuses the pooled connection.
    for (int i = 0; i < 2; ++i) {
      pool.send(request, [&](UpstreamResult r) {
        last = std::move(r);
        // The connection stays pooled and reading, so the loop is stopped by hand.
        uv_stop(&loop);
      });
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK(pool.connectionsCreated() <= 2);
    pool.closeIdle();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
  return last;
}

}  // namespace

TEST_CASE("a buffered call gets status, headers and body", "[agent][upstream]") {
  ModelServer model;
  UpstreamRequest request;
  request.target = "/v1/models/m:predict";
  request.headers = {{"Content-Type", "application/json"}};
  request.body = R"({"instances":[1, 2.50]})";
  request.timeout = std::chrono::milliseconds(5000);
  UpstreamResult r = call(model.port(), request);
  CHECK(r.status == 200);
  CHECK(r.body == R"({"predictions":[1, 2.50]})");
  CHECK(*findHeader(r.headers, "content-type") == "application/json");
  CHECK(model.recordedLines().size() == 2);
  auto stats = httpRequest(model.url("/stats"));
  CHECK_THAT(stats.body, Catch::Contains("\"connections\": 2"));
}

TEST_CASE("a buffered call that times out reports it", "[agent][upstream]") {
  ModelServer model;
  UpstreamRequest request;
  request.method = "GET";
  request.target = "/echo?delay_ms=2000";
  request.timeout = std::chrono::milliseconds(200);
  UpstreamResult r = call(model.port(), request);
  CHECK(r.status == 0);
  CHECK_THAT(r.error, Catch::Contains("timed out"));
}

TEST_CASE("a buffered call to a closed port reports connection refused", "[agent][upstream]") {
  UpstreamRequest request;
  request.target = "/x";
  request.timeout = std::chrono::milliseconds(2000);
  UpstreamResult r = call(freePort(), request);
  CHECK(r.status == 0);
  CHECK_THAT(r.error, Catch::Contains("connection refused"));
  CHECK_FALSE(r.answered);
}

TEST_CASE("a call with a ResponseStream takes the body as it arrives, or buffers when declined",
          "[agent][upstream]") {
  ModelServer model;
  UpstreamRequest request;
  request.method = "GET";
  request.target = "/sse?n=3&interval_ms=10";
  request.timeout = std::chrono::milliseconds(5000);
  std::string streamed;
  int heads = 0;
  bool take = true;
  request.stream.head = [&](int status, const Headers& headers) {
    ++heads;
    CHECK(status == 200);
    CHECK(*findHeader(headers, "content-type") == "text/event-stream");
    return take;
  };
  request.stream.body = [&](std::string_view data) {
    streamed.append(data);
    return true;
  };
  // call() makes two calls: the body of each went through the hook, none into the result.
  UpstreamResult r = call(model.port(), request);
  CHECK(heads == 2);
  CHECK(r.status == 200);
  CHECK(r.streamed);
  CHECK(r.answered);
  CHECK(r.body.empty());
  std::string events = "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n";
  CHECK(streamed == events + events);

  take = false;
  streamed.clear();
  UpstreamResult buffered = call(model.port(), request);
  CHECK_FALSE(buffered.streamed);
  CHECK(buffered.body == events);
  CHECK(streamed.empty());
}

TEST_CASE("a ResponseStream hook may cancel its call", "[agent][upstream]") {
  ModelServer model;
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    Resolver resolver(&loop);
    UpstreamPool pool(
        &loop, Origin{false, "127.0.0.1", model.port()},
        UpstreamOptions{10, std::chrono::milliseconds(2000), std::chrono::milliseconds(0)},
        resolver);
    UpstreamRequest request;
    request.method = "GET";
    request.target = "/sse?n=3&interval_ms=10";
    UpstreamCall* call = nullptr;
    int chunks = 0;
    bool done = false;
    request.stream.head = [](int, const Headers&) { return true; };
    request.stream.body = [&](std::string_view) {
      ++chunks;
      call->cancel();
      return true;
    };
    call = pool.send(request, [&](UpstreamResult) { done = true; });
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(chunks == 1);
    CHECK_FALSE(done);
    pool.closeIdle();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
