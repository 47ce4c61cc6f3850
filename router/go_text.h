// Go's text handling that both the GJSON evaluator and the graph decoder reproduce: UTF-8 as the
// unicode/utf8 package decodes and encodes it, and JSON strings as encoding/json decodes them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace router::go {

// Positions are signed, as Go's ints: scanners step one past the end.
using Pos = std::ptrdiff_t;

inline Pos len(std::string_view s) {
  return static_cast<Pos>(s.size());
}

// s[i], unsigned as Go's bytes are.
inline unsigned char at(std::string_view s, Pos i) {
  return static_cast<unsigned char>(s[static_cast<size_t>(i)]);
}

// s[from:] and s[from:to]; the callers keep 0 <= from <= to <= len(s).
inline std::string_view tail(std::string_view s, Pos from) {
  return std::string_view(s.data() + from, s.size() - static_cast<size_t>(from));
}
inline std::string_view slice(std::string_view s, Pos from, Pos to) {
  return std::string_view(s.data() + from, static_cast<size_t>(to - from));
}

inline constexpr char32_t kRuneError = 0xFFFD;

struct Rune {
  char32_t value;
  std::ptrdiff_t size;
};

// utf8.DecodeRuneInString: an invalid or short sequence decodes as (RuneError, 1), nothing as
// (RuneError, 0).
Rune decodeRune(std::string_view s);

// utf8.DecodeLastRuneInString.
Rune decodeLastRune(std::string_view s);

// utf8.EncodeRune: surrogates and values above U+10FFFF encode as U+FFFD.
void appendRune(std::string& out, char32_t r);

// The value of the 4 hex digits at the start of s (at least 4 bytes); 0 when one is not a hex
// digit, as strconv.ParseUint answers.
char32_t hex4(std::string_view s);

bool isSurrogate(char32_t r);

// encoding/json's decoding of the text between the quotes of a valid JSON string literal: a
// surrogate pair escape is one character, any other surrogate escape U+FFFD (the escape after it
// is read on its own), and each byte of invalid UTF-8 U+FFFD.
std::string unquote(std::string_view body);

}  // namespace router::go
