#include "agent/forwarded.h"

#include <catch2/catch.hpp>

using agent::applyForwardedShim;
using core::findHeader;
using core::Headers;

TEST_CASE("forwarded shim synthesises Forwarded from X-Forwarded-*", "[agent][forwarded]") {
  SECTION("for, host and proto with an IPv6 node") {
    Headers h = {{"X-Forwarded-For", "1.2.3.4, ::1"},
                 {"X-Forwarded-Host", "example.com"},
                 {"X-Forwarded-Proto", "https"}};
    applyForwardedShim(h);
    CHECK(*findHeader(h, "Forwarded") == "for=1.2.3.4;host=example.com;proto=https, for=\"[::1]\"");
  }
  SECTION("only proto") {
    Headers h = {{"X-Forwarded-Proto", "http"}};
    applyForwardedShim(h);
    CHECK(*findHeader(h, "Forwarded") == "proto=http");
  }
  SECTION("an existing Forwarded header is kept") {
    Headers h = {{"Forwarded", "for=x"}, {"X-Forwarded-For", "1.1.1.1"}};
    applyForwardedShim(h);
    CHECK(h.size() == 2);
    CHECK(*findHeader(h, "Forwarded") == "for=x");
  }
  SECTION("nothing to derive from") {
    Headers h = {{"Host", "x"}};
    applyForwardedShim(h);
    CHECK(findHeader(h, "Forwarded") == nullptr);
  }
}
