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
