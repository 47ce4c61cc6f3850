// Go-style durations as both binaries' flags take them.
#include "core/util/duration.h"

#include <catch2/catch.hpp>

using core::parseDuration;
using namespace std::chrono_literals;

TEST_CASE("Go-style durations", "[core][duration]") {
  CHECK(parseDuration("0") == 0ms);
  CHECK(parseDuration("300ms") == 300ms);
  CHECK(parseDuration("5s") == 5000ms);
  CHECK(parseDuration("1m30s") == 90000ms);
  CHECK(parseDuration("1.5h") == 5400000ms);
  CHECK_FALSE(parseDuration(""));
  CHECK_FALSE(parseDuration("5"));
  CHECK_FALSE(parseDuration("5 s"));
  CHECK_FALSE(parseDuration("s"));
  CHECK_FALSE(parseDuration("3parsecs"));
  // Under a millisecond is still a timeout (0 would mean none); absurd lengths are refused.
  CHECK(parseDuration("1ns") == 1ms);
  CHECK(parseDuration("500us") == 1ms);
  CHECK_FALSE(parseDuration("99999999999999999999h"));
}

TEST_CASE("every unit Go knows, in any combination", "[core][duration]") {
  CHECK(parseDuration("1h2m3.5s") == 3723500ms);
  CHECK(parseDuration("2h45m") == 9900000ms);
  CHECK(parseDuration("1s500ms") == 1500ms);
  CHECK(parseDuration("1500000us") == 1500ms);
  CHECK(parseDuration("2000\xc2\xb5s") == 2ms);  // U+00B5 micro sign, as Go writes it
  CHECK(parseDuration("3000\xce\xbcs") == 3ms);  // U+03BC Greek mu, which Go takes too
  CHECK(parseDuration("2000000000ns") == 2000ms);
  CHECK(parseDuration(".5s") == 500ms);
  CHECK(parseDuration("0s") == 0ms);
  CHECK(parseDuration("0.0h") == 0ms);
}

TEST_CASE("a positive duration under a millisecond counts as 1 ms, never as 0",
          "[core][duration]") {
  CHECK(parseDuration("0.5ms") == 1ms);
  CHECK(parseDuration("999us") == 1ms);
  CHECK(parseDuration("999999ns") == 1ms);
  CHECK(parseDuration("0.001s") == 1ms);
  // Fractions above a millisecond are cut, not rounded up.
  CHECK(parseDuration("1.9ms") == 1ms);
  CHECK(parseDuration("2500us") == 2ms);
}

TEST_CASE("durations that would not fit are refused, long sane ones kept", "[core][duration]") {
  // Up to 1e14 ms (about 3,170 years) is taken; beyond is a typo.
  CHECK(parseDuration("27000000h") == std::chrono::milliseconds(97'200'000'000'000));
  CHECK_FALSE(parseDuration("28000000h"));
  CHECK_FALSE(parseDuration("99999999999999999999999999999999999999s"));
}

TEST_CASE("malformed durations are refused", "[core][duration]") {
  for (const char* text : {"-1s", "1e3s", "1.2.3s", "1s2", "ms", "1m 2s", "1S", "1sec", "1d", " 1s",
                           "1s ", "1_000ms", "inf", "NaNs"}) {
    INFO(text);
    CHECK_FALSE(parseDuration(text));
  }
}
