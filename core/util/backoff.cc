#include "core/util/backoff.h"

#include <algorithm>
#include <random>

namespace core {

std::chrono::milliseconds Backoff::delay(int retry, double unitRandom) const {
  auto delay = std::max(first, std::chrono::milliseconds(0));
  // Doubling stops at the cap, so a retry count in the thousands cannot overflow.
  for (int i = 1; i < retry && delay < cap; ++i)
    delay *= 2;
  delay = std::min(delay, cap);
  const auto half = delay / 2;
  const double spread = std::clamp(unitRandom, 0.0, 1.0);
  return half + std::chrono::milliseconds(
                    static_cast<long long>(static_cast<double>((delay - half).count()) * spread));
}

std::chrono::milliseconds Backoff::delay(int retry) const {
  return delay(retry, unitRandom());
}

double unitRandom() {
  thread_local std::mt19937 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

}  // namespace core
