#include "router/propagation.h"

#include <catch2/catch.hpp>

using router::HeaderPropagation;

TEST_CASE("patterns split on commas as upstream splits them, bad ones are reported",
          "[router][propagation]") {
  std::vector<std::string> problems;
  auto propagation =
      HeaderPropagation::parse("Authorization,,Test-Header-[0-9,*Trace-Id*, X", problems);
  // Authorization and " X" (the space is part of the pattern) compile; the other two do not.
  CHECK(propagation.size() == 2);
  REQUIRE(problems.size() == 2);
  CHECK_THAT(problems[0], Catch::Contains("Test-Header-[0-9"));
  CHECK_THAT(problems[1], Catch::Contains("*Trace-Id*"));
}

TEST_CASE("headers are selected by unanchored match on their canonical names, every value",
          "[router][propagation]") {
  std::vector<std::string> problems;
  auto propagation = HeaderPropagation::parse("^X-Model-,Id$", problems);
  core::Headers incoming = {{"x-model-version", "7"},
                            {"X-Model-Version", "8"},
                            {"x-request-id", "r1"},
                            {"Other", "no"},
                            {"Host", "h"},
                            {"Content-Length", "3"}};
  core::Headers selected = propagation.select(incoming);
  REQUIRE(selected.size() == 3);
  CHECK(selected[0] == core::Header{"X-Model-Version", "7"});
  CHECK(selected[1] == core::Header{"X-Model-Version", "8"});
  CHECK(selected[2] == core::Header{"X-Request-Id", "r1"});
  // Framing and Host are the client's own, whatever a pattern says.
  auto everything = HeaderPropagation::parse(".*", problems);
  for (const auto& header : everything.select(incoming)) {
    CHECK(header.name != "Host");
    CHECK(header.name != "Content-Length");
  }
  CHECK(HeaderPropagation::parse("", problems).select(incoming).empty());
}

TEST_CASE("TraceParent reads W3C traceparent values and makes one per call",
          "[propagation][trace]") {
  using router::TraceParent;
  const std::string id = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto parsed = TraceParent::parse("00-" + id + "-00f067aa0ba902b7-01");
  REQUIRE(parsed);
  CHECK(parsed->traceId() == id);
  CHECK(parsed->child(0x0123456789abcdefULL) == "00-" + id + "-0123456789abcdef-01");
  CHECK(parsed->child(1) == "00-" + id + "-0000000000000001-01");
  // A later version: the first 55 characters, the rest after a '-'; the child is version 00.
  auto later = TraceParent::parse("cc-" + id + "-00f067aa0ba902b7-09-whatever");
  REQUIRE(later);
  CHECK(later->child(2) == "00-" + id + "-0000000000000002-09");
  for (const std::string& bad : std::vector<std::string>{
           "",
           "00-" + id + "-00f067aa0ba902b7-01-",                       // version 00 is exactly 55
           "00-" + id + "-00f067aa0ba902b7-1",                         // short
           "ff-" + id + "-00f067aa0ba902b7-01",                        // version ff
           "00-" + std::string(32, '0') + "-00f067aa0ba902b7-01",      // zero trace id
           "00-" + id + "-0000000000000000-01",                        // zero parent id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
           "00_" + id + "-00f067aa0ba902b7-01",
           "cc-" + id + "-00f067aa0ba902b7-01x",  // later version, no '-' after 55
       }) {
    INFO(bad);
    CHECK_FALSE(TraceParent::parse(bad));
  }
}
