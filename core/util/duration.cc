#include "core/util/duration.h"

#include <cctype>
#include <cstdlib>
#include <string>

namespace core {

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds{0};
  if (text.empty()) return std::nullopt;
  double totalMs = 0;
  while (!text.empty()) {
    size_t numEnd = 0;
    while (numEnd < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[numEnd])) || text[numEnd] == '.')) {
      ++numEnd;
    }
    if (numEnd == 0) return std::nullopt;
    char* parsedEnd = nullptr;
    std::string number(text.substr(0, numEnd));
    double value = std::strtod(number.c_str(), &parsedEnd);
    if (parsedEnd != number.c_str() + number.size()) return std::nullopt;
    text.remove_prefix(numEnd);
    // As Go's time.ParseDuration: the unit runs to the next number, so that the non-ASCII
    // spellings of microseconds reach the comparison below.
    size_t unitEnd = 0;
    while (unitEnd < text.size() && !std::isdigit(static_cast<unsigned char>(text[unitEnd])) &&
           text[unitEnd] != '.') {
      ++unitEnd;
    }
    std::string_view unit = text.substr(0, unitEnd);
    text.remove_prefix(unitEnd);
    double scale = 0;
    if (unit == "ns")
      scale = 1e-6;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs")  // micro sign, Greek mu
      scale = 1e-3;
    else if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else
      return std::nullopt;
    totalMs += value * scale;
  }
  // Beyond a few thousand years is a typo, and would not fit the count.
  if (totalMs > 1e14) return std::nullopt;
  // A positive duration under a millisecond stays positive: 0 means "none" for some flags.
  if (totalMs > 0 && totalMs < 1) return std::chrono::milliseconds{1};
  return std::chrono::milliseconds{static_cast<long long>(totalMs)};
}

}  // namespace core
