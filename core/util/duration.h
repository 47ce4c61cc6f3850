// Durations written as Go writes them ("300ms", "5s", "1m30s", "0"), as both binaries' flags
// take them.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace core {

// The duration in milliseconds (a positive one below 1 ms counts as 1 ms, never as 0, which
// means "none" for some flags); nullopt when malformed.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

}  // namespace core
