#include "core/util/encoding.h"

namespace core {

namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

size_t utf8Length(std::string_view text, size_t i, uint32_t& rune) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  uint32_t minimum = 0;
  if (lead < 0x80) {
    rune = lead;
    return 1;
  }
  if ((lead & 0xe0) == 0xc0) {
    length = 2;
    minimum = 0x80;
    rune = lead & 0x1fu;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    minimum = 0x800;
    rune = lead & 0x0fu;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    minimum = 0x10000;
    rune = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return 0;
    rune = (rune << 6) | (byte(k) & 0x3fu);
  }
  if (rune < minimum || rune > 0x10ffff || (rune >= 0xd800 && rune <= 0xdfff)) return 0;
  return length;
}

void appendGoJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    uint32_t rune = 0;
    const size_t length = utf8Length(text, i, rune);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
    } else if (rune == 0x2028 || rune == 0x2029) {
      out += rune == 0x2028 ? "\\u2028" : "\\u2029";
      i += length;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  out += '"';
}

void appendUuidV4(std::string& out, std::array<unsigned char, 16> bytes) {
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // RFC 9562 variant
  std::array<char, 36> text{};
  size_t at = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text[at++] = '-';
    text[at++] = kHex[bytes[i] >> 4];
    text[at++] = kHex[bytes[i] & 0x0f];
  }
  out.append(text.data(), text.size());
}

}  // namespace core
