// The one retry schedule: doubling from `first` to `cap`, then jitter over [d/2, d).
#include "core/util/backoff.h"

#include <catch2/catch.hpp>

#include <set>

using namespace std::chrono_literals;

TEST_CASE(
    "Backoff doubles from the first wait up to the cap, with jitter between half and all of it",
    "[core][backoff]") {
  const core::Backoff backoff{.first = 100ms, .cap = 10s};
  CHECK(backoff.delay(1, 0.0) == 50ms);
  CHECK(backoff.delay(1, 0.999) == 99ms);
  CHECK(backoff.delay(2, 0.0) == 100ms);
  CHECK(backoff.delay(4, 0.0) == 400ms);
  CHECK(backoff.delay(30, 0.0) == 5s);
  CHECK(backoff.delay(1000, 0.999) < 10s);
  CHECK(backoff.delay(1000, 0.999) >= 9990ms);
}

TEST_CASE("Backoff's random jitter stays between half the wait and all of it, and spreads",
          "[core][backoff]") {
  const core::Backoff backoff{.first = 1s, .cap = 1s};
  std::set<long long> seen;
  for (int i = 0; i < 200; ++i) {
    const auto wait = backoff.delay(3);
    CHECK(wait >= 500ms);
    CHECK(wait < 1s);
    seen.insert(wait.count());
  }
  // Replicas must not retry in step: 200 draws over 500 possible values hit many of them.
  CHECK(seen.size() > 50);
}

TEST_CASE("Backoff without a first wait retries at once", "[core][backoff]") {
  const core::Backoff backoff{.first = 0ms, .cap = 1s};
  CHECK(backoff.delay(1) == 0ms);
  CHECK(backoff.delay(5) == 0ms);
}
