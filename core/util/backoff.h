// The one retry schedule of both binaries: the logger's sink deliveries, the puller's model
// loads, storage uploads and the router's step retries all wait the same way, so an operator
// reads one rule in the docs and every retrying part spreads its retries the same way.
#pragma once

#include <chrono>

namespace core {

// Exponential backoff with jitter. The wait before retry number `retry` (1 for the first retry)
// is first * 2^(retry-1), capped at `cap`, then spread uniformly over [d/2, d): replicas that
// failed together (a sink or a model server restarting) do not all retry in the same instant.
struct Backoff {
  std::chrono::milliseconds first{200};
  std::chrono::milliseconds cap{std::chrono::seconds(10)};

  // `unitRandom` in [0, 1) picks the point in [d/2, d); tests pass fixed values.
  [[nodiscard]] std::chrono::milliseconds delay(int retry, double unitRandom) const;
  // The same with a random point from this thread's generator.
  [[nodiscard]] std::chrono::milliseconds delay(int retry) const;
};

// A uniform random number in [0, 1) from a generator of the calling thread.
double unitRandom();

}  // namespace core
