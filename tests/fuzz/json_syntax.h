// A strict RFC 8259 syntax check for the fuzz targets' oracles. It checks only the grammar (and
// UTF-8), never converts numbers, so texts such as 1e400 that the batcher must keep exactly are
// valid here, as they are in JSON. It shares no code with the parsers under test.
#pragma once

#include <cstddef>
#include <string_view>

namespace fuzz {

class JsonSyntax {
 public:
  // True when `text` is exactly one JSON value, with optional surrounding whitespace.
  static bool valid(std::string_view text) {
    JsonSyntax s(text);
    s.skipSpace();
    if (!s.value(0)) return false;
    s.skipSpace();
    return s.at_ == text.size();
  }

 private:
  static constexpr size_t kMaxDepth = 4096;

  explicit JsonSyntax(std::string_view text) : text_(text) {}

  bool more() const { return at_ < text_.size(); }
  char peek() const { return more() ? text_[at_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || !more()) return false;
    ++at_;
    return true;
  }
  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }
  void skipSpace() {
    while (more() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++at_;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  static bool hexDigit(char c) {
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool value(size_t depth) {
    if (depth > kMaxDepth) return false;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool object(size_t depth) {
    eat('{');
    skipSpace();
    if (eat('}')) return true;
    while (true) {
      skipSpace();
      if (!string()) return false;
      skipSpace();
      if (!eat(':')) return false;
      skipSpace();
      if (!value(depth + 1)) return false;
      skipSpace();
      if (eat('}')) return true;
      if (!eat(',')) return false;
    }
  }

  bool array(size_t depth) {
    eat('[');
    skipSpace();
    if (eat(']')) return true;
    while (true) {
      skipSpace();
      if (!value(depth + 1)) return false;
      skipSpace();
      if (eat(']')) return true;
      if (!eat(',')) return false;
    }
  }

  bool string() {
    if (!eat('"')) return false;
    while (more()) {
      auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++at_;
        char e = peek();
        if (!more()) return false;
        ++at_;
        if (e == 'u') {
          for (int i = 0; i < 4; ++i) {
            if (!hexDigit(peek()) || !more()) return false;
            ++at_;
          }
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
      } else if (c < 0x80) {
        ++at_;
      } else if (!utf8()) {
        return false;
      }
    }
    return false;
  }

  // One multi-byte UTF-8 sequence: shortest form, no surrogates, at most U+10FFFF.
  bool utf8() {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(text_[at_ + i]); };
    unsigned char c = byte(0);
    size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (length == 0 || c > 0xF4 || at_ + length > text_.size()) return false;
    for (size_t i = 1; i < length; ++i) {
      if ((byte(i) & 0xC0) != 0x80) return false;
    }
    if (c == 0xE0 && byte(1) < 0xA0) return false;
    if (c == 0xED && byte(1) > 0x9F) return false;
    if (c == 0xF0 && byte(1) < 0x90) return false;
    if (c == 0xF4 && byte(1) > 0x8F) return false;
    at_ += length;
    return true;
  }

  bool number() {
    eat('-');
    if (eat('0')) {
      if (digit(peek())) return false;
    } else {
      if (!digit(peek())) return false;
      while (digit(peek()))
        ++at_;
    }
    if (eat('.')) {
      if (!digit(peek())) return false;
      while (digit(peek()))
        ++at_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++at_;
      if (peek() == '+' || peek() == '-') ++at_;
      if (!digit(peek())) return false;
      while (digit(peek()))
        ++at_;
    }
    return true;
  }

  std::string_view text_;
  size_t at_ = 0;
};

}  // namespace fuzz
