#include "router/go_text.h"

#include <algorithm>

namespace router::go {
namespace {

using std::string_view;

bool isDigit(unsigned char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

Rune decodeRune(string_view s) {
  if (s.empty()) return {kRuneError, 0};
  unsigned char b0 = at(s, 0);
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](Pos k, unsigned char lo, unsigned char hi) {
    return k < len(s) && at(s, k) >= lo && at(s, k) <= hi;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1, 0x80, 0xBF)) return {char32_t((b0 & 0x1F) << 6 | (at(s, 1) & 0x3F)), 2};
    return {kRuneError, 1};
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    if (cont(1, lo, hi) && cont(2, 0x80, 0xBF)) {
      return {char32_t((b0 & 0x0F) << 12 | (at(s, 1) & 0x3F) << 6 | (at(s, 2) & 0x3F)), 3};
    }
    return {kRuneError, 1};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF)) {
      return {char32_t((b0 & 0x07) << 18 | (at(s, 1) & 0x3F) << 12 | (at(s, 2) & 0x3F) << 6 |
                       (at(s, 3) & 0x3F)),
              4};
    }
  }
  return {kRuneError, 1};
}

Rune decodeLastRune(string_view s) {
  Pos end = len(s);
  if (end == 0) return {kRuneError, 0};
  Pos start = end - 1;
  if (at(s, start) < 0x80) return {at(s, start), 1};
  Pos lim = std::max<Pos>(end - 4, 0);
  for (start--; start >= lim; start--) {
    if ((at(s, start) & 0xC0) != 0x80) break;
  }
  if (start < 0) start = 0;
  Rune r = decodeRune(slice(s, start, end));
  if (start + r.size != end) return {kRuneError, 1};
  return r;
}

void appendRune(std::string& out, char32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = kRuneError;
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

char32_t hex4(string_view s) {
  char32_t r = 0;
  for (Pos i = 0; i < 4; i++) {
    unsigned char c = at(s, i);
    char32_t d;
    if (isDigit(c)) {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return 0;
    }
    r = r << 4 | d;
  }
  return r;
}

bool isSurrogate(char32_t r) {
  return r >= 0xD800 && r < 0xE000;
}

std::string unquote(string_view body) {
  std::string out;
  out.reserve(body.size());
  for (Pos i = 0; i < len(body);) {
    unsigned char c = at(body, i);
    if (c == '\\') {
      unsigned char e = at(body, i + 1);
      if (e == 'u') {
        char32_t r = hex4(tail(body, i + 2));
        i += 6;
        if (isSurrogate(r)) {
          char32_t combined = kRuneError;
          if (i + 6 <= len(body) && at(body, i) == '\\' && at(body, i + 1) == 'u') {
            char32_t r2 = hex4(tail(body, i + 2));
            if (r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000) {
              combined = 0x10000 + ((r - 0xD800) << 10 | (r2 - 0xDC00));
            }
          }
          if (combined != kRuneError) i += 6;
          r = combined;
        }
        appendRune(out, r);
        continue;
      }
      static constexpr string_view kFrom = "\"\\/bfnrt";
      static constexpr string_view kTo = "\"\\/\b\f\n\r\t";
      out += kTo[kFrom.find(static_cast<char>(e))];
      i += 2;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      i++;
      continue;
    }
    Rune r = decodeRune(tail(body, i));
    appendRune(out, r.value);
    i += r.size;
  }
  return out;
}

}  // namespace router::go
