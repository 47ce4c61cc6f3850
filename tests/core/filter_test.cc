// The replies every filter builds through Exchange: replyWith and replyError, on the shared fake
// exchange (no sockets).
#include "core/chain/filter.h"

#include <catch2/catch.hpp>

#include "tests/support/fake_exchange.h"

using namespace core;
using testsupport::FakeExchange;

TEST_CASE("replyWith answers with the status, body, Content-Type and the extra headers",
          "[core][filter]") {
  FakeExchange exchange("GET", "/v1/models/m");
  exchange.replyWith(201, "application/json", R"({"ok":true})", {{"X-Request-Id", "abc"}});
  REQUIRE(exchange.replies == 1);
  CHECK(exchange.status() == 201);
  CHECK(exchange.body() == R"({"ok":true})");
  // The extra headers come first, then the Content-Type, and nothing else.
  const Headers expected{{"X-Request-Id", "abc"}, {"Content-Type", "application/json"}};
  CHECK(exchange.response()->headers == expected);
}

TEST_CASE("replyWith without a content type adds no Content-Type header", "[core][filter]") {
  FakeExchange exchange("GET", "/");
  exchange.replyWith(204, "", "");
  REQUIRE(exchange.replies == 1);
  CHECK(exchange.status() == 204);
  CHECK(exchange.response()->headers.empty());
  CHECK(exchange.body().empty());
}

TEST_CASE("replyError answers as Go's http.Error does", "[core][filter]") {
  FakeExchange exchange("POST", "/v1/models/m:predict");
  exchange.replyError(503, "model m is not ready");
  REQUIRE(exchange.replies == 1);
  CHECK(exchange.status() == 503);
  // The message and one newline, as plain UTF-8 text that browsers must not sniff.
  CHECK(exchange.body() == "model m is not ready\n");
  CHECK(exchange.header("Content-Type") == "text/plain; charset=utf-8");
  CHECK(exchange.header("X-Content-Type-Options") == "nosniff");
  CHECK(exchange.response()->headers.size() == 2);
}

TEST_CASE("an empty error message is still one line", "[core][filter]") {
  FakeExchange exchange("GET", "/");
  exchange.replyError(500, "");
  CHECK(exchange.body() == "\n");
}

TEST_CASE("each filter slot keeps its own exchange state", "[core][filter]") {
  struct Count final : ExchangeState {
    explicit Count(int v) : value(v) {}
    int value;
  };
  FakeExchange exchange("GET", "/");
  CHECK(exchange.state(0) == nullptr);
  exchange.state(0) = std::make_unique<Count>(1);
  exchange.state(kMaxFilters - 1) = std::make_unique<Count>(2);
  CHECK(static_cast<Count&>(*exchange.state(0)).value == 1);
  CHECK(static_cast<Count&>(*exchange.state(kMaxFilters - 1)).value == 2);
  CHECK(exchange.state(1) == nullptr);
  // A slot beyond the chain's bound is a programming error the exchange refuses.
  CHECK_THROWS_AS(exchange.state(kMaxFilters), std::out_of_range);
}
