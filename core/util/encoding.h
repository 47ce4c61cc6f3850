// Encodings the modules share, written the way the upstream Go agent writes them: JSON string
// literals as Go's encoding/json produces them, UTF-8 decoding, and UUIDv4 text.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace core {

// Length of the valid UTF-8 sequence starting at text[i] (1 for ASCII) with its code point in
// `rune`; 0 when the bytes there are not valid UTF-8 (overlong, a surrogate, above U+10FFFF,
// truncated).
size_t utf8Length(std::string_view text, size_t i, uint32_t& rune);

// Appends `text` as a JSON string literal the way Go's encoding/json writes it: HTML-safe
// escapes for <, > and &, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
void appendGoJsonString(std::string& out, std::string_view text);

// Appends a random (version 4, RFC 9562) UUID in lowercase, "0009174a-24a8-4603-b098-09c8799950e9",
// made from 16 random bytes (the version and variant bits are set here).
void appendUuidV4(std::string& out, std::array<unsigned char, 16> bytes);

}  // namespace core
