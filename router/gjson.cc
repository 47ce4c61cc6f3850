// GJSON v1.18.0 path evaluation. Each function below mirrors one step of gjson's own algorithm
// (named after it in the comment) so that answers on odd and invalid input agree with gjson's:
// the quirks are gjson's, kept on purpose. Positions are signed (`Pos`) as Go's ints are, since
// several of gjson's scanners step one past the end of the text.
#include "router/gjson.h"

#include "router/go_text.h"

#include <locale.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace router::gjson {
namespace {

using go::appendRune;
using go::at;
using go::decodeLastRune;
using go::decodeRune;
using go::hex4;
using go::isSurrogate;
using go::kRuneError;
using go::len;
using go::Pos;
using go::Rune;
using go::slice;
using go::tail;
using std::string_view;

// tidwall/match's complexity limit as gjson passes it (matchLimit).
constexpr std::int64_t kMatchComplexity = 10000;

bool isDigit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool isHex(unsigned char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// ---------------------------------------------------------------------------------------------
// Go's UTF-8, strconv and strings behaviour, as far as gjson depends on it.

// unicode.IsSpace.
bool isGoSpace(char32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// strings.TrimSpace / bytes.TrimSpace.
string_view trimSpace(string_view s) {
  while (!s.empty()) {
    Rune r = decodeRune(s);
    if (!isGoSpace(r.value)) break;
    s.remove_prefix(static_cast<size_t>(r.size));
  }
  while (!s.empty()) {
    Rune r = decodeLastRune(s);
    if (!isGoSpace(r.value)) break;
    s.remove_suffix(static_cast<size_t>(r.size));
  }
  return s;
}

char lowerAscii(unsigned char c) {
  return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

Pos commonPrefixIgnoreCase(string_view s, string_view prefix) {
  Pos n = std::min(len(s), len(prefix));
  for (Pos i = 0; i < n; i++) {
    if (lowerAscii(at(s, i)) != prefix[static_cast<size_t>(i)]) return i;
  }
  return n;
}

// strconv's underscoreOK: underscores only between digits (or after a base prefix).
bool underscoreOK(string_view s) {
  char saw = '^';
  Pos i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  bool hex = false;
  if (len(s) >= 2 && s[0] == '0' &&
      (lowerAscii(at(s, 1)) == 'b' || lowerAscii(at(s, 1)) == 'o' || lowerAscii(at(s, 1)) == 'x')) {
    i = 2;
    saw = '0';
    hex = lowerAscii(at(s, 1)) == 'x';
  }
  for (; i < len(s); i++) {
    unsigned char c = at(s, i);
    char lc = lowerAscii(c);
    if (isDigit(c) || (hex && lc >= 'a' && lc <= 'f')) {
      saw = '0';
      continue;
    }
    if (c == '_') {
      if (saw != '0') return false;
      saw = '_';
      continue;
    }
    if (saw == '_') return false;
    saw = '!';
  }
  return saw != '_';
}

// strconv.readFloat's syntax check: whether the whole of s is a float Go accepts.
bool goFloatSyntax(string_view s, bool& hexOut) {
  Pos i = 0;
  Pos n = len(s);
  bool underscores = false;
  if (i >= n) return false;
  if (s[0] == '+' || s[0] == '-') i++;
  bool hex = false;
  char expChar = 'e';
  if (i + 2 < n && at(s, i) == '0' && lowerAscii(at(s, i + 1)) == 'x') {
    hex = true;
    expChar = 'p';
    i += 2;
  }
  bool sawdot = false;
  bool sawdigits = false;
  for (; i < n; i++) {
    unsigned char c = at(s, i);
    if (c == '_') {
      underscores = true;
      continue;
    }
    if (c == '.') {
      if (sawdot) break;
      sawdot = true;
      continue;
    }
    if (isDigit(c) || (hex && lowerAscii(c) >= 'a' && lowerAscii(c) <= 'f')) {
      sawdigits = true;
      continue;
    }
    break;
  }
  if (!sawdigits) return false;
  if (i < n && lowerAscii(at(s, i)) == expChar) {
    i++;
    if (i >= n) return false;
    if (at(s, i) == '+' || at(s, i) == '-') i++;
    if (i >= n || !isDigit(at(s, i))) return false;
    for (; i < n && (isDigit(at(s, i)) || at(s, i) == '_'); i++) {
      if (at(s, i) == '_') underscores = true;
    }
  } else if (hex) {
    return false;
  }
  if (underscores && !underscoreOK(slice(s, 0, i))) return false;
  hexOut = hex;
  return i == n;
}

locale_t cLocale() {
  static const locale_t locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
  return locale;
}

// strconv.ParseFloat(s, 64) with the error ignored: 0 for text Go refuses, ±Inf past the range.
double parseFloat(string_view s) {
  // special(): signed infinities and an unsigned NaN, case-insensitively.
  if (!s.empty()) {
    string_view t = s;
    double sign = 1;
    Pos nsign = 0;
    unsigned char c0 = at(t, 0);
    if (c0 == '+' || c0 == '-' || c0 == 'i' || c0 == 'I') {
      if (c0 == '+' || c0 == '-') {
        sign = c0 == '-' ? -1 : 1;
        nsign = 1;
        t.remove_prefix(1);
      }
      Pos n = commonPrefixIgnoreCase(t, "infinity");
      if (n > 3 && n < 8) n = 3;
      if (n == 3 || n == 8) {
        return nsign + n == len(s) ? sign * std::numeric_limits<double>::infinity() : 0;
      }
    } else if (c0 == 'n' || c0 == 'N') {
      if (commonPrefixIgnoreCase(t, "nan") == 3) {
        return len(s) == 3 ? std::numeric_limits<double>::quiet_NaN() : 0;
      }
    }
  }
  bool hex = false;
  if (!goFloatSyntax(s, hex)) return 0;
  // strtod rounds correctly, as Go does, and gives ±HUGE_VAL (infinity) past the range. It
  // needs a terminated copy without the underscores; short numbers are copied on the stack.
  char small[64];
  std::string large;
  char* clean = small;
  if (s.size() >= sizeof small) {
    large.resize(s.size() + 1);
    clean = large.data();
  }
  size_t k = 0;
  for (char c : s) {
    if (c != '_') clean[k++] = c;
  }
  clean[k] = '\0';
  return strtod_l(clean, nullptr, cLocale());
}

// strconv.FormatFloat(f, 'f', -1, 64): the shortest digits that read back as f, without an
// exponent.
std::string formatFloat(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto done = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  string_view sci(buf, static_cast<size_t>(done.ptr - buf));
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
  // The value is 0.d1d2d3... * 10^(exp+1).
  int point = exp + 1;
  if (point <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-point), '0');
    out += digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(point) - digits.size(), '0');
  } else {
    out += digits.substr(0, static_cast<size_t>(point));
    out += '.';
    out += digits.substr(static_cast<size_t>(point));
  }
  return out;
}

// strconv.ParseBool(strings.ToLower(s)): 1 for true, 0 for false, -1 for neither.
int parseBoolLower(string_view s) {
  std::string lower;
  for (char c : s)
    lower += lowerAscii(static_cast<unsigned char>(c));
  if (lower == "1" || lower == "t" || lower == "true") return 1;
  if (lower == "0" || lower == "f" || lower == "false") return 0;
  return -1;
}

// gjson's parseInt: an optional '-' and digits only; overflow wraps as Go's int64 does.
bool parseInt(string_view s, std::int64_t& out) {
  Pos i = 0;
  bool sign = false;
  if (!s.empty() && s[0] == '-') {
    sign = true;
    i++;
  }
  if (i == len(s)) return false;
  std::uint64_t n = 0;
  for (; i < len(s); i++) {
    if (!isDigit(at(s, i))) return false;
    n = n * 10 + (at(s, i) - '0');
  }
  out = static_cast<std::int64_t>(sign ? ~n + 1 : n);
  return true;
}

// gjson's parseUint.
bool parseUint(string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t n = 0;
  for (unsigned char c : s) {
    if (!isDigit(c)) return false;
    n = n * 10 + (c - '0');
  }
  out = n;
  return true;
}

// Go's int64(f) on amd64: truncation, and the minimum for NaN and values out of range.
std::int64_t floatToInt(double f) {
  if (!(f > -9223372036854775808.0 && f < 9223372036854775808.0)) {
    return std::numeric_limits<std::int64_t>::min();
  }
  return static_cast<std::int64_t>(f);
}

// gjson's unescape: stops at a control character, a bad escape or a short \u escape; a high
// surrogate escape takes the next \u escape with it whatever it is.
std::string unescape(string_view s) {
  std::string out;
  out.reserve(s.size());
  Pos n = len(s);
  for (Pos i = 0; i < n; i++) {
    unsigned char c = at(s, i);
    if (c < ' ') return out;
    if (c != '\\') {
      out += static_cast<char>(c);
      continue;
    }
    i++;
    if (i >= n) return out;
    switch (at(s, i)) {
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case '"':
        out += '"';
        break;
      case 'u': {
        if (i + 5 > n) return out;
        char32_t r = hex4(tail(s, i + 1));
        i += 5;
        if (isSurrogate(r) && n - i >= 6 && at(s, i) == '\\' && at(s, i + 1) == 'u') {
          char32_t r2 = hex4(tail(s, i + 2));
          if (r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000) {
            r = 0x10000 + ((r - 0xD800) << 10 | (r2 - 0xDC00));
          } else {
            r = kRuneError;
          }
          i += 6;
        }
        appendRune(out, r);
        i--;
        break;
      }
      default:
        return out;
    }
  }
  return out;
}

constexpr char kHex[] = "0123456789abcdef";

// gjson's AppendJSONString (v1.18.0: \b and \f escaped, <, > and & as \u escapes, invalid UTF-8
// as \ufffd, U+2028 and U+2029 escaped).
void appendJSONString(std::string& dst, string_view s) {
  dst += '"';
  for (Pos i = 0; i < len(s); i++) {
    unsigned char c = at(s, i);
    if (c < ' ') {
      dst += '\\';
      switch (c) {
        case '\b':
          dst += 'b';
          break;
        case '\f':
          dst += 'f';
          break;
        case '\n':
          dst += 'n';
          break;
        case '\r':
          dst += 'r';
          break;
        case '\t':
          dst += 't';
          break;
        default:
          dst += "u00";
          dst += kHex[c >> 4];
          dst += kHex[c & 0xF];
      }
    } else if (c == '>' || c == '<' || c == '&') {
      dst += "\\u00";
      dst += kHex[c >> 4];
      dst += kHex[c & 0xF];
    } else if (c == '\\') {
      dst += "\\\\";
    } else if (c == '"') {
      dst += "\\\"";
    } else if (c > 127) {
      Rune r = decodeRune(tail(s, i));
      if (r.value == kRuneError && r.size == 1) {
        dst += "\\ufffd";
      } else if (r.value == 0x2028 || r.value == 0x2029) {
        dst += "\\u202";
        dst += kHex[r.value & 0xF];
      } else {
        dst += slice(s, i, i + r.size);
      }
      i += r.size - 1;
    } else {
      dst += static_cast<char>(c);
    }
  }
  dst += '"';
}

// encoding/json's decoding of a string literal into a Go string (as tidwall/pretty's sort uses
// it): the whole text must be one valid JSON string; a lone surrogate escape becomes U+FFFD and
// invalid UTF-8 bytes become U+FFFD each. Anything else decodes as "".
std::string goUnmarshalString(string_view s) {
  Pos n = len(s);
  if (n < 2 || s[0] != '"') return {};
  Pos end = -1;
  for (Pos i = 1; i < n; i++) {
    unsigned char c = at(s, i);
    if (c < ' ') return {};
    if (c == '"') {
      end = i;
      break;
    }
    if (c == '\\') {
      i++;
      if (i >= n) return {};
      unsigned char e = at(s, i);
      if (e == 'u') {
        for (Pos k = 1; k <= 4; k++) {
          if (i + k >= n || !isHex(at(s, i + k))) return {};
        }
        i += 4;
      } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                 e != 'r' && e != 't') {
        return {};
      }
    }
  }
  if (end < 0) return {};
  for (Pos i = end + 1; i < n; i++) {
    unsigned char c = at(s, i);
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return {};
  }
  return go::unquote(slice(s, 1, end));
}

// ---------------------------------------------------------------------------------------------
// tidwall/match v1.1.1 MatchLimit. The matcher recurses at each star; the recursion is kept on
// an explicit stack here so that a pattern with many stars cannot exhaust the thread's stack.

enum class MatchResult { NoMatch, Match, Stop };

bool matchLimit(string_view str, string_view pattern) {
  if (pattern == "*") return true;
  const std::int64_t limit = static_cast<std::int64_t>(str.size()) * kMatchComplexity;
  std::int64_t counter = 0;
  // A suspended call: where it was, and the width of the string rune its loop had read.
  struct Frame {
    string_view str;
    string_view pat;
    Pos ss;
  };
  std::vector<Frame> frames;
  MatchResult result = MatchResult::NoMatch;
  bool entering = true;
  bool resuming = false;
  Pos resumeSs = 0;
  for (;;) {
    if (entering) {
      entering = false;
      if (counter > limit) {
        result = MatchResult::Stop;
        goto unwind;
      }
      counter++;
    }
    while (!pattern.empty() || resuming) {
      bool wild = false;
      Pos ss = 0;
      Pos ps = 1;
      if (resuming) {
        // The recursive call at a star answered NoMatch: step over one string rune.
        resuming = false;
        if (str.empty()) {
          result = MatchResult::NoMatch;
          goto unwind;
        }
        wild = true;
        ss = resumeSs;
      } else {
        char32_t pc = at(pattern, 0);
        if (pc > 0x7f) {
          Rune r = decodeRune(pattern);
          pc = r.value;
          ps = r.size;
        }
        char32_t sc = 0;
        if (!str.empty()) {
          sc = at(str, 0);
          ss = 1;
          if (sc > 0x7f) {
            Rune r = decodeRune(str);
            sc = r.value;
            ss = r.size;
          }
        }
        if (pc == '?') {
          if (ss == 0) {
            result = MatchResult::NoMatch;
            goto unwind;
          }
        } else if (pc == '*') {
          while (len(pattern) > 1 && pattern[1] == '*')
            pattern.remove_prefix(1);
          if (len(pattern) == 1) {
            result = MatchResult::Match;
            goto unwind;
          }
          // matchTrimSuffix: match and trim the non-wildcard end of the pattern.
          bool matched = true;
          while (!str.empty() && len(pattern) > 1) {
            Rune p = decodeLastRune(pattern);
            Pos psz = p.size;
            bool esc = false;
            for (Pos k = 0;; k++) {
              if (at(pattern, len(pattern) - psz - k - 1) != '\\') {
                if (k & 1) {
                  esc = true;
                  psz++;
                }
                break;
              }
            }
            if (p.value == '*' && !esc) {
              matched = true;
              break;
            }
            Rune s = decodeLastRune(str);
            if (!((p.value == '?' && !esc) || p.value == s.value)) {
              matched = false;
              break;
            }
            str.remove_suffix(static_cast<size_t>(s.size));
            pattern.remove_suffix(static_cast<size_t>(psz));
          }
          if (!matched) {
            result = MatchResult::NoMatch;
            goto unwind;
          }
          if (len(pattern) == 1) {
            result = MatchResult::Match;
            goto unwind;
          }
          frames.push_back({str, pattern, ss});
          pattern.remove_prefix(1);
          entering = true;
          break;
        } else {
          if (ss == 0) {
            result = MatchResult::NoMatch;
            goto unwind;
          }
          if (pc == '\\') {
            pattern.remove_prefix(static_cast<size_t>(ps));
            Rune r = decodeRune(pattern);
            pc = r.value;
            ps = r.size;
            if (ps == 0) {
              result = MatchResult::NoMatch;
              goto unwind;
            }
          }
          if (sc != pc) {
            result = MatchResult::NoMatch;
            goto unwind;
          }
        }
      }
      str.remove_prefix(std::min(str.size(), static_cast<size_t>(ss)));
      if (!wild) pattern.remove_prefix(static_cast<size_t>(ps));
    }
    if (entering) continue;
    result = str.empty() ? MatchResult::Match : MatchResult::NoMatch;
  unwind:
    if (frames.empty()) return result == MatchResult::Match;
    Frame f = frames.back();
    frames.pop_back();
    if (result != MatchResult::NoMatch) goto unwind;
    str = f.str;
    pattern = f.pat;
    resumeSs = f.ss;
    resuming = true;
  }
}

// ---------------------------------------------------------------------------------------------
// gjson's scanners. They read what they are given without validating it.

// A value found in a document: gjson's Result without Str, Num and positions, which are derived
// when needed (see strValue and number).
struct Val {
  Type type = Type::Null;
  string_view raw;
  // For strings: the text between the quotes as stored, and whether gjson decodes escapes in it.
  string_view strRaw;
  bool strEsc = false;

  bool exists() const { return type != Type::Null || !raw.empty(); }
  bool isObject() const { return type == Type::JSON && !raw.empty() && raw[0] == '{'; }
  bool isArray() const { return type == Type::JSON && !raw.empty() && raw[0] == '['; }
};

Val stringVal(string_view raw, string_view inner, bool esc) {
  Val v;
  v.type = Type::String;
  v.raw = raw;
  v.strRaw = inner;
  v.strEsc = esc;
  return v;
}

Val plainVal(Type type, string_view raw) {
  Val v;
  v.type = type;
  v.raw = raw;
  return v;
}

// The string value of a String (gjson's Result.Str).
std::string strValue(const Val& v) {
  return v.strEsc ? unescape(v.strRaw) : std::string(v.strRaw);
}

// The end of the string whose text starts at i, just after its opening quote: the first quote
// not escaped by a backslash (gjson counts the backslashes before each quote; pairing each
// backslash with the byte after it is the same), or len(s) when there is none. `esc` tells
// whether a backslash came first.
struct Body {
  Pos end;
  bool esc;
};

Body stringBody(string_view s, Pos i) {
  bool esc = false;
  Pos n = len(s);
  for (; i < n; i++) {
    unsigned char c = at(s, i);
    if (c == '"') return {i, esc};
    if (c == '\\') {
      esc = true;
      i++;
    }
  }
  return {n, esc};
}

// tonum: a number runs to a space or control character, ',', ']' or '}'.
string_view toNum(string_view json) {
  for (Pos i = 1; i < len(json); i++) {
    unsigned char c = at(json, i);
    if (c <= ' ' || c == ',' || c == ']' || c == '}') return slice(json, 0, i);
  }
  return json;
}

// tolit: a literal runs over lower-case letters.
string_view toLit(string_view json) {
  for (Pos i = 1; i < len(json); i++) {
    if (at(json, i) < 'a' || at(json, i) > 'z') return slice(json, 0, i);
  }
  return json;
}

// tostr: a string starting at json[0]; an unterminated one runs to the end.
Val toStr(string_view json) {
  Body b = stringBody(json, 1);
  if (b.end < len(json)) return stringVal(slice(json, 0, b.end + 1), slice(json, 1, b.end), b.esc);
  return stringVal(json, tail(json, 1), b.esc);
}

// gjson's squash and parseSquash: from i, with `depth` brackets open, the index of the byte
// that closes the value (a bracket, or a string's quote at depth 0); parentheses count as
// brackets. When nothing closes it: len(json), or len(json)+1 after an unterminated string
// (where gjson's loop steps past the end, which its callers notice).
Pos squashEnd(string_view json, Pos i, Pos depth) {
  Pos n = len(json);
  for (; i < n; i++) {
    unsigned char c = at(json, i);
    if (c == '"') {
      i = stringBody(json, i + 1).end;
      if (depth == 0) return i;
    } else if (c == '{' || c == '[' || c == '(') {
      depth++;
    } else if (c == '}' || c == ']' || c == ')') {
      if (--depth == 0) return i;
    }
  }
  return i;
}

// squash: the value starting at json[0] ('[', '{', '(' or '"'); the whole text when it does not
// close.
string_view squash(string_view json) {
  Pos start = json[0] == '"' ? 0 : 1;
  Pos end = squashEnd(json, start, start);
  return end >= len(json) ? json : slice(json, 0, end + 1);
}

struct Scan {
  Pos i;
  string_view raw;
};

// parseSquash: the value at json[i] ('[', '{' or '('), and where scanning goes on.
Scan parseSquash(string_view json, Pos i) {
  Pos end = squashEnd(json, i + 1, 1);
  if (end < len(json)) return {end + 1, slice(json, i, end + 1)};
  return {end, tail(json, i)};
}

struct StringScan {
  Pos i;
  string_view raw;
  bool esc;
  bool ok;
};

// parseString: the string whose opening quote is at i-1.
StringScan parseString(string_view json, Pos i) {
  Body b = stringBody(json, i);
  if (b.end < len(json)) return {b.end + 1, slice(json, i - 1, b.end + 1), b.esc, true};
  return {len(json), tail(json, i - 1), false, false};
}

// parseNumber: the number at i.
Scan parseNumber(string_view json, Pos i) {
  Pos s = i;
  for (i++; i < len(json); i++) {
    unsigned char c = at(json, i);
    if (c <= ' ' || c == ',' || c == ']' || c == '}') return {i, slice(json, s, i)};
  }
  return {i, tail(json, s)};
}

// parseLiteral: the literal at i.
Scan parseLiteral(string_view json, Pos i) {
  Pos s = i;
  for (i++; i < len(json); i++) {
    if (at(json, i) < 'a' || at(json, i) > 'z') return {i, slice(json, s, i)};
  }
  return {i, tail(json, s)};
}

// The characters gjson reads as the start of a number (NaN and Inf included).
bool numberStart(unsigned char c) {
  return isDigit(c) || c == '+' || c == '-' || c == 'i' || c == 'I' || c == 'N';
}

// Whether c starts a string, a literal or a number.
bool tokenStart(unsigned char c) {
  return c == '"' || c == 't' || c == 'f' || c == 'n' || numberStart(c);
}

Val stringVal(const StringScan& st) {
  return stringVal(st.raw, slice(st.raw, 1, len(st.raw) - 1), st.esc);
}

struct Token {
  Pos i;
  Val value;
  bool ok;
};

// The string, literal or number that starts at i (tokenStart): 'n' starts a number (NaN) unless
// 'u' follows it.
Token readToken(string_view json, Pos i) {
  unsigned char c = at(json, i);
  if (c == '"') {
    StringScan st = parseString(json, i + 1);
    return {st.i, st.ok ? stringVal(st) : Val{}, st.ok};
  }
  bool nan = c == 'n' && i + 1 < len(json) && at(json, i + 1) != 'u';
  if (c == 't' || c == 'f' || (c == 'n' && !nan)) {
    Scan lit = parseLiteral(json, i);
    return {lit.i,
            plainVal(c == 't'   ? Type::True
                     : c == 'f' ? Type::False
                                : Type::Null,
                     lit.raw),
            true};
  }
  Scan nb = parseNumber(json, i);
  return {nb.i, plainVal(Type::Number, nb.raw), true};
}

// Stores a value found at the end of a path. For a null literal gjson sets only the raw text:
// the type stays what it was (Null, or JSON from an earlier `#(...)#` of the same evaluation).
void setHit(Val& target, const Val& v) {
  if (v.type == Type::Null) {
    target.raw = v.raw;
  } else {
    target = v;
  }
}

// Parse: the first value of json; an object or array takes the whole rest of the text.
Val parse(string_view json) {
  Pos n = len(json);
  for (Pos i = 0; i < n; i++) {
    unsigned char c = at(json, i);
    if (c == '{' || c == '[') return plainVal(Type::JSON, tail(json, i));
    if (c <= ' ') continue;
    if (numberStart(c)) return plainVal(Type::Number, toNum(tail(json, i)));
    switch (c) {
      case 'n':
        if (i + 1 < n && at(json, i + 1) != 'u') {
          return plainVal(Type::Number, toNum(tail(json, i)));
        }
        return plainVal(Type::Null, toLit(tail(json, i)));
      case 't':
        return plainVal(Type::True, toLit(tail(json, i)));
      case 'f':
        return plainVal(Type::False, toLit(tail(json, i)));
      case '"':
        return toStr(tail(json, i));
      default:
        return {};
    }
  }
  return {};
}

struct AnyScan {
  Pos i;
  Val value;
  bool ok;
};

// parseAny: the next value from i, skipping what cannot start one.
AnyScan parseAny(string_view json, Pos i) {
  for (; i < len(json); i++) {
    unsigned char c = at(json, i);
    if (c == '{' || c == '[') {
      Scan sq = parseSquash(json, i);
      return {sq.i, plainVal(Type::JSON, sq.raw), true};
    }
    if (tokenStart(c)) {
      Token t = readToken(json, i);
      return {t.i, t.value, t.ok};
    }
  }
  return {i, {}, false};
}

// ForEach: calls fn(key, value) for each member of an object or element of an array (keys are
// Null for arrays), or once with the value itself when it is not JSON; stops when fn says so.
template <typename F>
void forEach(const Val& t, F&& fn) {
  if (!t.exists()) return;
  if (t.type != Type::JSON) {
    fn(Val{}, t);
    return;
  }
  string_view json = t.raw;
  Pos n = len(json);
  bool obj = false;
  Pos i = 0;
  for (; i < n; i++) {
    unsigned char c = at(json, i);
    if (c == '{') {
      i++;
      obj = true;
      break;
    }
    if (c == '[') {
      i++;
      break;
    }
    if (c > ' ') return;
  }
  Val key;
  for (; i < n; i++) {
    if (obj) {
      if (at(json, i) != '"') continue;
      StringScan st = parseString(json, i + 1);
      if (!st.ok) return;
      i = st.i;
      key = stringVal(st);
    }
    for (; i < n; i++) {
      unsigned char c = at(json, i);
      if (c <= ' ' || c == ',' || c == ':') continue;
      break;
    }
    AnyScan any = parseAny(json, i);
    if (!any.ok) return;
    i = any.i;
    if (!fn(key, any.value)) return;
  }
}

// unwrap: the text inside the outer brackets of an array or object (trimmed first).
string_view trimControl(string_view s) {
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ')
    s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ')
    s.remove_suffix(1);
  return s;
}

string_view unwrap(string_view json) {
  json = trimControl(json);
  if (len(json) >= 2 && (json[0] == '[' || json[0] == '{')) json = slice(json, 1, len(json) - 1);
  return json;
}

// The number a Number holds (Result.Num).
double number(const Val& v) {
  return parseFloat(v.raw);
}

// Result.String().
std::string toString(const Val& v) {
  switch (v.type) {
    case Type::False:
      return "false";
    case Type::True:
      return "true";
    case Type::String:
      return strValue(v);
    case Type::JSON:
      return std::string(v.raw);
    case Type::Number: {
      if (v.raw.empty()) return formatFloat(number(v));
      Pos i = v.raw[0] == '-' ? 1 : 0;
      for (; i < len(v.raw); i++) {
        if (!isDigit(at(v.raw, i))) return formatFloat(number(v));
      }
      return std::string(v.raw);
    }
    case Type::Null:
      break;
  }
  return {};
}

// Result.Bool() (and the trueish of ~true).
bool toBool(const Val& v) {
  switch (v.type) {
    case Type::True:
      return true;
    case Type::String:
      return parseBoolLower(strValue(v)) == 1;
    case Type::Number:
      return number(v) != 0;
    default:
      return false;
  }
}

// Result.Int().
std::int64_t toInt(const Val& v) {
  switch (v.type) {
    case Type::True:
      return 1;
    case Type::String: {
      std::int64_t n = 0;
      parseInt(strValue(v), n);
      return n;
    }
    case Type::Number: {
      // safeInt: NaN passes its range check and converts as Go converts it on amd64.
      double f = number(v);
      if (!(f < -9007199254740991.0 || f > 9007199254740991.0)) return floatToInt(f);
      std::int64_t n = 0;
      if (parseInt(v.raw, n)) return n;
      return floatToInt(f);
    }
    default:
      return 0;
  }
}

// gjson's trim: drops bytes up to ' ' at both ends.
string_view trim(string_view s) {
  return trimControl(s);
}

// cleanWS: the whitespace of s when s has anything else in it, else s.
std::string cleanWS(string_view s) {
  bool other = false;
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') other = true;
  }
  if (!other) return std::string(s);
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') out += c;
  }
  return out;
}

// A stack of bits (one per open container) that allocates only past 512 levels.
class BitStack {
 public:
  bool empty() const { return size_ == 0; }
  bool back() const { return get(size_ - 1); }
  void pop() { size_--; }
  void push(bool bit) {
    size_t word = size_ / 64;
    if (word >= kInline && word - kInline >= more_.size()) more_.push_back(0);
    std::uint64_t& w = word < kInline ? inline_[word] : more_[word - kInline];
    std::uint64_t mask = std::uint64_t{1} << (size_ % 64);
    w = bit ? (w | mask) : (w & ~mask);
    size_++;
  }

 private:
  bool get(size_t k) const {
    size_t word = k / 64;
    std::uint64_t w = word < kInline ? inline_[word] : more_[word - kInline];
    return (w >> (k % 64)) & 1;
  }
  static constexpr size_t kInline = 8;
  std::uint64_t inline_[kInline] = {};
  std::vector<std::uint64_t> more_;
  size_t size_ = 0;
};

// Valid: strict JSON, checked without recursion.
bool validJson(string_view d) {
  Pos n = len(d);
  Pos i = 0;
  BitStack stack;  // set for an object
  auto ws = [&] {
    while (i < n && (at(d, i) == ' ' || at(d, i) == '\t' || at(d, i) == '\n' || at(d, i) == '\r')) {
      i++;
    }
  };
  auto literal = [&](string_view word) {
    if (n - i < len(word) || slice(d, i, i + len(word)) != word) return false;
    i += len(word);
    return true;
  };
  auto string = [&] {
    for (i++; i < n; i++) {
      unsigned char c = at(d, i);
      if (c < ' ') return false;
      if (c == '"') {
        i++;
        return true;
      }
      if (c == '\\') {
        i++;
        if (i == n) return false;
        unsigned char e = at(d, i);
        if (e == 'u') {
          for (int k = 0; k < 4; k++) {
            i++;
            if (i >= n || !isHex(at(d, i))) return false;
          }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return false;
        }
      }
    }
    return false;
  };
  auto key = [&] {
    ws();
    if (i >= n || at(d, i) != '"' || !string()) return false;
    ws();
    if (i >= n || at(d, i) != ':') return false;
    i++;
    return true;
  };
  auto numberOk = [&] {
    if (at(d, i) == '-') i++;
    if (i >= n || !isDigit(at(d, i))) return false;
    if (at(d, i) == '0') {
      i++;
    } else {
      while (i < n && isDigit(at(d, i)))
        i++;
    }
    if (i < n && at(d, i) == '.') {
      i++;
      if (i >= n || !isDigit(at(d, i))) return false;
      while (i < n && isDigit(at(d, i)))
        i++;
    }
    if (i < n && (at(d, i) == 'e' || at(d, i) == 'E')) {
      i++;
      if (i < n && (at(d, i) == '+' || at(d, i) == '-')) i++;
      if (i >= n || !isDigit(at(d, i))) return false;
      while (i < n && isDigit(at(d, i)))
        i++;
    }
    return true;
  };
  for (;;) {
    // A value is expected here.
    ws();
    if (i >= n) return false;
    unsigned char c = at(d, i);
    if (c == '{' || c == '[') {
      i++;
      ws();
      if (i < n && at(d, i) == (c == '{' ? '}' : ']')) {
        i++;
      } else {
        stack.push(c == '{');
        if (c == '{' && !key()) return false;
        continue;
      }
    } else if (c == '"') {
      if (!string()) return false;
    } else if (c == '-' || isDigit(c)) {
      if (!numberOk()) return false;
    } else if (!literal("true") && !literal("false") && !literal("null")) {
      return false;
    }
    // A value ended: close containers, or go on to the next element or member.
    for (;;) {
      ws();
      if (stack.empty()) return i == n;
      if (i >= n) return false;
      bool object = stack.back();
      unsigned char e = at(d, i);
      if (e == (object ? '}' : ']')) {
        i++;
        stack.pop();
        continue;
      }
      if (e != ',') return false;
      i++;
      if (object && !key()) return false;
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The recursion budget of one evaluation.

struct Budget {
  int depth = 0;
  size_t built = 0;
  bool exhausted = false;

  // Counts text built; false (and the budget spent) past kMaxBuiltBytes.
  bool build(size_t bytes) {
    built += bytes;
    if (built > kMaxBuiltBytes) exhausted = true;
    return !exhausted;
  }
};

// Holds one level of the budget for a recursive step; false when the budget is spent.
class Level {
 public:
  explicit Level(Budget& budget) : budget_(budget) {
    if (++budget_.depth > kMaxDepth) budget_.exhausted = true;
  }
  ~Level() { budget_.depth--; }
  Level(const Level&) = delete;
  Level& operator=(const Level&) = delete;
  explicit operator bool() const { return !budget_.exhausted; }

 private:
  Budget& budget_;
};

// ---------------------------------------------------------------------------------------------
// tidwall/pretty v1.2.1: Pretty, PrettyOptions and Ugly.

struct PrettyOptions {
  std::int64_t width = 80;
  std::string prefix;
  std::string indent = "  ";
  bool sortKeys = false;
};

// sort.Stable over n elements with Go's algorithm (insertion sorts of 20, then symMerge), so
// that inconsistent comparisons end in the same order as in Go. Returns whether it swapped.
class GoStableSort {
 public:
  GoStableSort(std::function<bool(Pos, Pos)> less, std::function<void(Pos, Pos)> swap)
      : less_(std::move(less)), swap_(std::move(swap)) {}

  bool run(Pos n) {
    Pos blockSize = 20;
    Pos a = 0;
    Pos b = blockSize;
    while (b <= n) {
      insertionSort(a, b);
      a = b;
      b += blockSize;
    }
    insertionSort(a, n);
    while (blockSize < n) {
      a = 0;
      b = 2 * blockSize;
      while (b <= n) {
        symMerge(a, a + blockSize, b);
        a = b;
        b += 2 * blockSize;
      }
      if (Pos m = a + blockSize; m < n) symMerge(a, m, n);
      blockSize *= 2;
    }
    return swapped_;
  }

 private:
  void swap(Pos i, Pos j) {
    swapped_ = true;
    swap_(i, j);
  }
  void insertionSort(Pos a, Pos b) {
    for (Pos i = a + 1; i < b; i++) {
      for (Pos j = i; j > a && less_(j, j - 1); j--)
        swap(j, j - 1);
    }
  }
  void swapRange(Pos a, Pos b, Pos n) {
    for (Pos i = 0; i < n; i++)
      swap(a + i, b + i);
  }
  void rotate(Pos a, Pos m, Pos b) {
    Pos i = m - a;
    Pos j = b - m;
    while (i != j) {
      if (i > j) {
        swapRange(m - i, m, j);
        i -= j;
      } else {
        swapRange(m - i, m + j - i, i);
        j -= i;
      }
    }
    swapRange(m - i, m, i);
  }
  void symMerge(Pos a, Pos m, Pos b) {
    if (m - a == 1) {
      Pos i = m;
      Pos j = b;
      while (i < j) {
        Pos h = (i + j) / 2;
        if (less_(h, a)) {
          i = h + 1;
        } else {
          j = h;
        }
      }
      for (Pos k = a; k < i - 1; k++)
        swap(k, k + 1);
      return;
    }
    if (b - m == 1) {
      Pos i = a;
      Pos j = m;
      while (i < j) {
        Pos h = (i + j) / 2;
        if (!less_(m, h)) {
          i = h + 1;
        } else {
          j = h;
        }
      }
      for (Pos k = m; k > i; k--)
        swap(k, k - 1);
      return;
    }
    Pos mid = (a + b) / 2;
    Pos n = mid + m;
    Pos start;
    Pos r;
    if (m > mid) {
      start = n - b;
      r = mid;
    } else {
      start = a;
      r = m;
    }
    Pos p = n - 1;
    while (start < r) {
      Pos c = (start + r) / 2;
      if (!less_(p - c, c)) {
        start = c + 1;
      } else {
        r = c;
      }
    }
    Pos end = n - start;
    if (start < m && m < end) rotate(start, m, end);
    if (a < start && start < mid) symMerge(a, start, mid);
    if (mid < end && end < b) symMerge(mid, end, b);
  }

  std::function<bool(Pos, Pos)> less_;
  std::function<void(Pos, Pos)> swap_;
  bool swapped_ = false;
};

class Prettifier {
 public:
  Prettifier(Budget& budget, string_view json) : budget_(budget), json_(json) {}

  // PrettyOptions.
  std::string run(const PrettyOptions& o) {
    buf_ = o.prefix;
    any(0, true, o.width, o.prefix, o.indent, o.sortKeys, 0, 0, -1);
    if (!buf_.empty()) buf_ += '\n';
    return std::move(buf_);
  }

 private:
  struct Out {
    Pos i;
    Pos nl;
    bool ok;
  };
  // One member of an object, as positions in the source (key) and in buf_ (the whole line).
  struct Pair {
    Pos kstart = 0;
    Pos kend = 0;
    Pos vstart = 0;
    Pos vend = 0;
  };

  static bool isNaNOrInf(string_view s) {
    unsigned char c = at(s, 0);
    return c == 'i' || c == 'I' || c == '+' || c == 'N' || (c == 'n' && len(s) > 1 && s[1] != 'u');
  }

  // appendPrettyAny.
  Out any(Pos i, bool pretty, std::int64_t width, string_view prefix, string_view indent,
          bool sortkeys, Pos tabs, Pos nl, std::int64_t max) {
    Pos n = len(json_);
    for (; i < n; i++) {
      unsigned char c = at(json_, i);
      if (c <= ' ') continue;
      if (c == '"') return str(i, nl);
      if (isDigit(c) || c == '-' || isNaNOrInf(tail(json_, i))) return num(i, nl);
      if (c == '{')
        return object(i, '{', '}', pretty, width, prefix, indent, sortkeys, tabs, nl, max);
      if (c == '[')
        return object(i, '[', ']', pretty, width, prefix, indent, sortkeys, tabs, nl, max);
      switch (c) {
        case 't':
          buf_ += "true";
          return {i + 4, nl, true};
        case 'f':
          buf_ += "false";
          return {i + 5, nl, true};
        case 'n':
          buf_ += "null";
          return {i + 4, nl, true};
        default:
          break;
      }
    }
    return {i, nl, true};
  }

  // appendPrettyObject (arrays too).
  Out object(Pos i, char open, char close, bool pretty, std::int64_t width, string_view prefix,
             string_view indent, bool sortkeys, Pos tabs, Pos nl, std::int64_t max) {
    Level level(budget_);
    if (!level || buf_.size() > kMaxBuiltBytes) {
      budget_.exhausted = true;
      return {len(json_), nl, false};
    }
    if (width > 0) {
      if (pretty && open == '[' && max == -1) {
        // Try the whole array on one line first.
        std::int64_t lineMax = width - static_cast<std::int64_t>(len(buf_) - nl);
        if (lineMax > 3) {
          Pos s1 = len(buf_);
          Pos s2 = i;
          Out line = object(i, '[', ']', false, width, prefix, "", sortkeys, 0, 0, lineMax);
          if (line.ok && len(buf_) - s1 <= lineMax) return {line.i, nl, true};
          buf_.resize(static_cast<size_t>(s1));
          i = s2;
        }
      } else if (max != -1 && open == '{') {
        return {i, nl, false};
      }
    }
    buf_ += open;
    i++;
    std::vector<Pair> pairs;
    Pos count = 0;
    Pos n = len(json_);
    for (; i < n; i++) {
      unsigned char c = at(json_, i);
      if (c <= ' ') continue;
      if (c == static_cast<unsigned char>(close)) {
        if (pretty) {
          if (open == '{' && sortkeys) sortPairs(pairs);
          if (count > 0) {
            nl = len(buf_);
            if (buf_.back() == ' ') {
              buf_.back() = '\n';
            } else {
              buf_ += '\n';
            }
          }
          if (buf_.back() != open) appendTabs(prefix, indent, tabs);
        }
        buf_ += close;
        return {i + 1, nl, open != '{'};
      }
      if (open == '[' || c == '"') {
        if (buf_.size() > kMaxBuiltBytes) {
          budget_.exhausted = true;
          return {n, nl, false};
        }
        if (count > 0) {
          buf_ += ',';
          if (width != -1 && open == '[') buf_ += ' ';
        }
        Pair p;
        if (pretty) {
          nl = len(buf_);
          if (buf_.back() == ' ') {
            buf_.back() = '\n';
          } else {
            buf_ += '\n';
          }
          if (open == '{' && sortkeys) {
            p.kstart = i;
            p.vstart = len(buf_);
          }
          appendTabs(prefix, indent, tabs + 1);
        }
        if (open == '{') {
          Out key = str(i, nl);
          i = key.i;
          nl = key.nl;
          if (sortkeys) p.kend = i;
          buf_ += ':';
          if (pretty) buf_ += ' ';
        }
        Out value = any(i, pretty, width, prefix, indent, sortkeys, tabs + 1, nl, max);
        i = value.i;
        nl = value.nl;
        if (max != -1 && !value.ok) return {i, nl, false};
        if (pretty && open == '{' && sortkeys) {
          p.vend = len(buf_);
          if (p.kstart > p.kend || p.vstart > p.vend) {
            sortkeys = false;
          } else {
            pairs.push_back(p);
          }
        }
        i--;
        count++;
      }
    }
    return {i, nl, open != '{'};
  }

  // appendPrettyString.
  Out str(Pos i, Pos nl) {
    Pos end = stringBody(json_, i + 1).end;
    Pos next = std::min(end + 1, len(json_));
    buf_ += slice(json_, i, next);
    return {next, nl, true};
  }

  // appendPrettyNumber.
  Out num(Pos i, Pos nl) {
    Pos s = i;
    Pos n = len(json_);
    for (i++; i < n; i++) {
      unsigned char c = at(json_, i);
      if (c <= ' ' || c == ',' || c == ':' || c == ']' || c == '}') break;
    }
    buf_ += slice(json_, s, i);
    return {i, nl, true};
  }

  void appendTabs(string_view prefix, string_view indent, Pos tabs) {
    buf_ += prefix;
    for (Pos k = 0; k < tabs; k++)
      buf_ += indent;
  }

  // The kinds getjtype tells apart, in their sort order.
  static int jtype(string_view v) {
    if (v.empty()) return 0;
    switch (v[0]) {
      case 'n':
        return 0;
      case 'f':
        return 1;
      case '"':
        return 3;
      case 't':
        return 4;
      case '[':
      case '{':
        return 5;
      default:
        return 2;
    }
  }

  // parsestr: the value of a string literal for sorting.
  static std::string parseStr(string_view s) {
    for (Pos i = 1; i < len(s); i++) {
      if (s[static_cast<size_t>(i)] == '\\') return goUnmarshalString(s);
      if (s[static_cast<size_t>(i)] == '"') return std::string(slice(s, 1, i));
    }
    return {};
  }

  // byKeyVal.isLess.
  bool isLess(const Pair& a, const Pair& b, bool byKey) const {
    string_view k1 = slice(json_, a.kstart, a.kend);
    string_view k2 = slice(json_, b.kstart, b.kend);
    string_view v1 = k1;
    string_view v2 = k2;
    if (!byKey) {
      string_view buf(buf_);
      v1 = trimSpace(slice(buf, a.vstart, a.vend));
      v2 = trimSpace(slice(buf, b.vstart, b.vend));
      if (len(v1) >= len(k1) + 1) v1 = trimSpace(tail(v1, len(k1) + 1));
      if (len(v2) >= len(k2) + 1) v2 = trimSpace(tail(v2, len(k2) + 1));
    }
    int t1 = jtype(v1);
    int t2 = jtype(v2);
    if (t1 != t2) return t1 < t2;
    if (t1 == 3) return parseStr(v1) < parseStr(v2);
    if (t1 == 2) return parseFloat(v1) < parseFloat(v2);
    return v1 < v2;
  }

  // sortPairs: members in key order, equal keys in value order.
  void sortPairs(std::vector<Pair>& pairs) {
    if (pairs.empty()) return;
    Pos vstart = pairs.front().vstart;
    auto less = [&](Pos i, Pos j) {
      const Pair& a = pairs[static_cast<size_t>(i)];
      const Pair& b = pairs[static_cast<size_t>(j)];
      if (isLess(a, b, true)) return true;
      if (isLess(b, a, true)) return false;
      return isLess(a, b, false);
    };
    auto swap = [&](Pos i, Pos j) {
      std::swap(pairs[static_cast<size_t>(i)], pairs[static_cast<size_t>(j)]);
    };
    if (!GoStableSort(less, swap).run(static_cast<Pos>(pairs.size()))) return;
    std::string sorted;
    for (size_t k = 0; k < pairs.size(); k++) {
      sorted += slice(buf_, pairs[k].vstart, pairs[k].vend);
      if (k + 1 < pairs.size()) sorted += ",\n";
    }
    buf_.resize(static_cast<size_t>(vstart));
    buf_ += sorted;
  }

  Budget& budget_;
  string_view json_;
  std::string buf_;
};

// Ugly: drops every byte up to ' ' outside strings.
std::string ugly(string_view src) {
  std::string dst;
  dst.reserve(src.size());
  Pos n = len(src);
  for (Pos i = 0; i < n; i++) {
    unsigned char c = at(src, i);
    if (c <= ' ') continue;
    dst += static_cast<char>(c);
    if (c != '"') continue;
    Pos end = stringBody(src, i + 1).end;
    dst += slice(src, i + 1, std::min(end + 1, n));
    i = end;
  }
  return dst;
}

// ---------------------------------------------------------------------------------------------
// Paths.

enum class Modifier {
  None,
  Pretty,
  Ugly,
  Reverse,
  This,
  Flatten,
  Join,
  Valid,
  Keys,
  Values,
  ToStr,
  FromStr,
  Group,
  Dig
};

// The modifiers gjson v1.18.0 has, by name.
Modifier modifierNamed(string_view name) {
  static constexpr std::pair<string_view, Modifier> kNames[] = {
      {"pretty", Modifier::Pretty}, {"ugly", Modifier::Ugly},       {"reverse", Modifier::Reverse},
      {"this", Modifier::This},     {"flatten", Modifier::Flatten}, {"join", Modifier::Join},
      {"valid", Modifier::Valid},   {"keys", Modifier::Keys},       {"values", Modifier::Values},
      {"tostr", Modifier::ToStr},   {"fromstr", Modifier::FromStr}, {"group", Modifier::Group},
      {"dig", Modifier::Dig}};
  for (const auto& [n, m] : kNames) {
    if (n == name) return m;
  }
  return Modifier::None;
}

// isDotPiperChar: after a '.', a modifier name or a multipath makes the dot act as a pipe.
bool isDotPiperChar(string_view s) {
  unsigned char c = at(s, 0);
  if (c == '@') {
    Pos i = 1;
    for (; i < len(s); i++) {
      if (s[static_cast<size_t>(i)] == '.' || s[static_cast<size_t>(i)] == '|' ||
          s[static_cast<size_t>(i)] == ':') {
        break;
      }
    }
    return modifierNamed(slice(s, 1, i)) != Modifier::None;
  }
  return c == '[' || c == '{';
}

// The first component of a path and what follows it.
struct Component {
  string_view part;
  string_view path;
  string_view pipe;
  bool piped = false;
  bool more = false;

  // Ends the component at the '|' or '.' at i of the full path: a '|' pipes the rest; so does a
  // '.' before a modifier or a multipath when dotPipes is set; any other '.' continues the path.
  void endAt(string_view full, Pos i, bool dotPipes) {
    bool pipes =
        at(full, i) == '|' || (dotPipes && i < len(full) - 1 && isDotPiperChar(tail(full, i + 1)));
    if (pipes) {
      pipe = tail(full, i + 1);
      piped = true;
    } else {
      path = tail(full, i + 1);
      more = true;
    }
  }
};

// parseObjectPath's result. `part` may point into `escaped`, so it is filled in place and never
// copied.
struct ObjectPath : Component {
  bool wild = false;
  std::string escaped;
};

// parseObjectPath: the first key of a path; `\` escapes are removed from it.
void parseObjectPath(string_view path, ObjectPath& r) {
  Pos n = len(path);
  for (Pos i = 0; i < n; i++) {
    unsigned char c = at(path, i);
    if (c == '|' || c == '.') {
      r.part = slice(path, 0, i);
      r.endAt(path, i, true);
      return;
    }
    if (c == '*' || c == '?') {
      r.wild = true;
      continue;
    }
    if (c != '\\') continue;
    r.escaped.assign(path.data(), static_cast<size_t>(i));
    i++;
    if (i < n) {
      r.escaped += path[static_cast<size_t>(i)];
      for (i++; i < n; i++) {
        unsigned char d = at(path, i);
        if (d == '\\') {
          i++;
          if (i < n) r.escaped += path[static_cast<size_t>(i)];
          continue;
        }
        if (d == '.' || d == '|') {
          r.part = r.escaped;
          r.endAt(path, i, true);
          return;
        }
        if (d == '*' || d == '?') r.wild = true;
        r.escaped += static_cast<char>(d);
      }
    }
    r.part = r.escaped;
    return;
  }
  r.part = path;
}

struct Query {
  string_view path;
  string_view op;
  string_view value;
  Pos end = 0;
  bool vesc = false;
  bool ok = false;
};

// parseQuery: splits `#(path op value)` (or `#[...]`); end is the index after the bracket.
Query parseQuery(string_view query) {
  Query q;
  Pos n = len(query);
  if (n < 2 || query[0] != '#' || (query[1] != '(' && query[1] != '[')) return q;
  Pos i = 2;
  Pos j = 0;
  Pos depth = 1;
  for (; i < n; i++) {
    unsigned char c = at(query, i);
    if (depth == 1 && j == 0 && (c == '!' || c == '=' || c == '<' || c == '>' || c == '%')) {
      j = i;
      continue;
    }
    if (c == '\\') {
      i++;
    } else if (c == '[' || c == '(') {
      depth++;
    } else if (c == ']' || c == ')') {
      depth--;
      if (depth == 0) break;
    } else if (c == '"') {
      for (i++; i < n; i++) {
        if (at(query, i) == '\\') {
          q.vesc = true;
          i++;
        } else if (at(query, i) == '"') {
          break;
        }
      }
    }
  }
  if (depth > 0) return q;
  if (j > 0) {
    q.path = trim(slice(query, 2, j));
    string_view value = trim(slice(query, j, i));
    Pos opsz = 0;
    auto is = [&](char a, char b) { return value[0] == a && value[1] == b; };
    if (len(value) == 1) {
      opsz = 1;
    } else if (is('!', '=') || is('!', '%') || is('<', '=') || is('>', '=')) {
      opsz = 2;
    } else if (is('=', '=')) {
      value.remove_prefix(1);
      opsz = 1;
    } else if (value[0] == '<' || value[0] == '>' || value[0] == '=' || value[0] == '%') {
      opsz = 1;
    }
    q.op = slice(value, 0, opsz);
    q.value = trim(tail(value, opsz));
  } else {
    q.path = trim(slice(query, 2, i));
  }
  q.end = i + 1;
  q.ok = true;
  return q;
}

// parseArrayPath's result, filled in place (the query value may point into valueStorage).
struct ArrayPath : Component {
  string_view alogkey;
  bool alogok = false;
  bool arrch = false;
  bool queryOn = false;
  bool queryAll = false;
  string_view queryPath;
  string_view queryOp;
  string_view queryValue;
  std::string valueStorage;
};

// parseArrayPath: the first component of a path applied to an array.
void parseArrayPath(string_view path, ArrayPath& r) {
  Pos n = len(path);
  for (Pos i = 0; i < n; i++) {
    unsigned char c = at(path, i);
    if (c == '|' || c == '.') {
      r.part = slice(path, 0, i);
      r.endAt(path, i, !r.arrch);
      return;
    }
    if (c != '#') continue;
    r.arrch = true;
    if (i != 0 || n <= 1) continue;
    if (path[1] == '.') {
      r.alogok = true;
      r.alogkey = tail(path, 2);
      r.path = slice(path, 0, 1);
    } else if (path[1] == '[' || path[1] == '(') {
      r.queryOn = true;
      Query q = parseQuery(path);
      // A query that does not close ends the scan: the whole path is the part.
      if (!q.ok) break;
      string_view value = q.value;
      if (len(value) >= 2 && value[0] == '"' && value.back() == '"') {
        value = slice(value, 1, len(value) - 1);
        if (q.vesc) {
          r.valueStorage = unescape(value);
          value = r.valueStorage;
        }
      }
      r.queryPath = q.path;
      r.queryOp = q.op;
      r.queryValue = value;
      i = q.end - 1;
      if (i + 1 < n && path[static_cast<size_t>(i + 1)] == '#') r.queryAll = true;
    }
  }
  r.part = path;
  r.path = {};
}

struct Split {
  string_view left;
  string_view right;
  bool ok = false;
};

// splitPossiblePipe: the path before and after its first '|' outside a multipath or a query.
Split splitPossiblePipe(string_view path) {
  if (path.find('|') == string_view::npos) return {};
  Pos n = len(path);
  if (path[0] == '{') {
    string_view squashed = squash(tail(path, 1));
    if (len(squashed) < n - 1) {
      squashed = slice(path, 0, len(squashed) + 1);
      string_view remain = tail(path, len(squashed));
      if (remain[0] == '|') return {squashed, tail(remain, 1), true};
    }
    return {};
  }
  for (Pos i = 0; i < n; i++) {
    unsigned char c = at(path, i);
    if (c == '\\') {
      i++;
    } else if (c == '.') {
      if (i == n - 1) return {};
      if (path[static_cast<size_t>(i + 1)] != '#') continue;
      i += 2;
      if (i == n) return {};
      unsigned char open = at(path, i);
      if (open != '[' && open != '(') continue;
      unsigned char close = open == '[' ? ']' : ')';
      Pos depth = 1;
      for (i++; i < n; i++) {
        unsigned char d = at(path, i);
        if (d == '\\') {
          i++;
        } else if (d == open) {
          depth++;
        } else if (d == close) {
          depth--;
          if (depth == 0) break;
        } else if (d == '"') {
          for (i++; i < n; i++) {
            if (at(path, i) == '\\') {
              i++;
            } else if (at(path, i) == '"') {
              break;
            }
          }
        }
      }
    } else if (c == '|') {
      return {slice(path, 0, i), tail(path, i + 1), true};
    }
  }
  return {};
}

struct SubSelector {
  string_view name;
  string_view path;
};

// parseSubSelectors: the members of a `[...]` or `{...}` multipath and the path after it.
bool parseSubSelectors(string_view path, std::vector<SubSelector>& sels, string_view& rest) {
  Pos modifier = 0;
  Pos depth = 1;
  Pos colon = 0;
  Pos start = 1;
  Pos i = 1;
  Pos n = len(path);
  auto push = [&] {
    SubSelector sel;
    if (colon == 0) {
      sel.path = slice(path, start, i);
    } else {
      sel.name = slice(path, start, colon);
      sel.path = slice(path, colon + 1, i);
    }
    sels.push_back(sel);
    colon = 0;
    modifier = 0;
    start = i + 1;
  };
  for (; i < n; i++) {
    switch (at(path, i)) {
      case '\\':
        i++;
        break;
      case '@':
        if (modifier == 0 && i > 0 &&
            (path[static_cast<size_t>(i - 1)] == '.' || path[static_cast<size_t>(i - 1)] == '|')) {
          modifier = i;
        }
        break;
      case ':':
        if (modifier == 0 && colon == 0 && depth == 1) colon = i;
        break;
      case ',':
        if (depth == 1) push();
        break;
      case '"':
        for (i++; i < n; i++) {
          if (at(path, i) == '\\') {
            i++;
          } else if (at(path, i) == '"') {
            break;
          }
        }
        break;
      case '[':
      case '(':
      case '{':
        depth++;
        break;
      case ']':
      case ')':
      case '}':
        depth--;
        if (depth == 0) {
          push();
          rest = tail(path, i + 1);
          return true;
        }
        break;
      default:
        break;
    }
  }
  return false;
}

// nameOfLast: the last component of a path, for an unnamed `{...}` multipath member.
string_view nameOfLast(string_view path) {
  for (Pos i = len(path) - 1; i >= 0; i--) {
    unsigned char c = at(path, i);
    if (c == '|' || c == '.') {
      if (i > 0 && at(path, i - 1) == '\\') continue;
      return tail(path, i + 1);
    }
  }
  return path;
}

bool isSimpleName(string_view component) {
  for (unsigned char c : component) {
    if (c < ' ') return false;
    switch (c) {
      case '[':
      case ']':
      case '{':
      case '}':
      case '(':
      case ')':
      case '#':
      case '|':
      case '!':
        return false;
      default:
        break;
    }
  }
  return true;
}

// strValue without a copy when there is nothing to decode.
string_view strView(const Val& v, std::string& scratch) {
  if (!v.strEsc) return v.strRaw;
  scratch = unescape(v.strRaw);
  return scratch;
}

bool falseish(const Val& v) {
  switch (v.type) {
    case Type::Null:
    case Type::False:
      return true;
    case Type::String:
      return parseBoolLower(strValue(v)) == 0;
    case Type::Number:
      return number(v) == 0;
    default:
      return false;
  }
}

// queryMatches: whether a query's left-hand value satisfies its operator and right-hand side.
bool queryMatches(const ArrayPath& rp, Val value) {
  string_view rpv = rp.queryValue;
  if (!rpv.empty() && rpv[0] == '~') {
    rpv.remove_prefix(1);
    bool ok = true;
    bool ish = false;
    if (rpv == "*") {
      ish = value.exists();
    } else if (rpv == "null") {
      ish = value.type == Type::Null;
    } else if (rpv == "true") {
      ish = toBool(value);  // gjson's trueish is Result.Bool()
    } else if (rpv == "false") {
      ish = falseish(value);
    } else {
      ok = false;
    }
    if (ok) {
      rpv = "true";
      value = Val{};
      value.type = ish ? Type::True : Type::False;
    } else {
      rpv = {};
      value = Val{};
    }
  }
  if (!value.exists()) return false;
  string_view op = rp.queryOp;
  if (op.empty()) return true;
  switch (value.type) {
    case Type::String: {
      std::string scratch;
      string_view s = strView(value, scratch);
      if (op == "=") return s == rpv;
      if (op == "!=") return s != rpv;
      if (op == "<") return s < rpv;
      if (op == "<=") return s <= rpv;
      if (op == ">") return s > rpv;
      if (op == ">=") return s >= rpv;
      if (op == "%") return matchLimit(s, rpv);
      if (op == "!%") return !matchLimit(s, rpv);
      return false;
    }
    case Type::Number: {
      double r = parseFloat(rpv);
      double v = number(value);
      if (op == "=") return v == r;
      if (op == "!=") return v != r;
      if (op == "<") return v < r;
      if (op == "<=") return v <= r;
      if (op == ">") return v > r;
      if (op == ">=") return v >= r;
      return false;
    }
    case Type::True:
      if (op == "=") return rpv == "true";
      if (op == "!=") return rpv != "true";
      if (op == ">") return rpv == "false";
      return op == ">=";
    case Type::False:
      if (op == "=") return rpv == "false";
      if (op == "!=") return rpv != "false";
      if (op == "<") return rpv == "true";
      return op == "<=";
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation: Get and the modifiers.

class Eval {
 public:
  Val get(string_view json, string_view path);
  bool limited() const { return budget_.exhausted; }

 private:
  // gjson's parseContext.
  struct Context {
    string_view json;
    Val value;
    string_view pipe;
    bool piped = false;
  };
  struct Step {
    Pos i;
    bool hit;
  };
  struct Modified {
    string_view pathOut;
    string_view res;
    bool ok = false;
  };

  // Keeps text built during the evaluation alive until it ends.
  string_view keep(std::string&& text) {
    budget_.build(text.size());
    arena_.push_back(std::make_unique<std::string>(std::move(text)));
    return *arena_.back();
  }

  Step parseObject(Context& c, Pos i, string_view path);
  Step parseArray(Context& c, Pos i, string_view path);
  Step closeArray(Context& c, ArrayPath& rp, Pos i, Pos count, const std::vector<Pos>& alog,
                  std::string& multires);
  Val multipath(string_view json, string_view& path, bool& handled);
  Modified execModifier(string_view json, string_view path);
  static Modified execStatic(string_view path);
  string_view apply(Modifier m, string_view json, string_view arg);
  string_view modPretty(string_view json, string_view arg);
  string_view modReverse(string_view json);
  string_view modFlatten(string_view json, string_view arg);
  string_view modKeys(string_view json);
  string_view modValues(string_view json);
  string_view modJoin(string_view json, string_view arg);
  string_view modGroup(string_view json);
  string_view modDig(string_view json, string_view arg);
  void dig(std::vector<string_view>& all, const Val& parent, string_view path);

  Budget budget_;
  std::vector<std::unique_ptr<std::string>> arena_;
};

// Get.
Val Eval::get(string_view json, string_view path) {
  Level level(budget_);
  if (!level) return {};
  if (len(path) > 1) {
    if (path[0] == '@' || path[0] == '!') {
      Modified m = path[0] == '@' ? execModifier(json, path) : execStatic(path);
      if (m.ok) {
        if (!m.pathOut.empty() && (m.pathOut[0] == '|' || m.pathOut[0] == '.')) {
          return get(m.res, tail(m.pathOut, 1));
        }
        return parse(m.res);
      }
    }
    if (path[0] == '[' || path[0] == '{') {
      // gjson goes on with what follows the multipath (nothing when it does not close) when
      // that is not a '|' or '.' step.
      bool handled = false;
      Val v = multipath(json, path, handled);
      if (handled) return v;
    }
  }
  Context c{json, {}, {}, false};
  if (len(path) >= 2 && path[0] == '.' && path[1] == '.') {
    // JSON lines: the values of the document are the elements of an array.
    parseArray(c, 0, tail(path, 2));
  } else {
    for (Pos i = 0; i < len(json); i++) {
      if (json[static_cast<size_t>(i)] == '{') {
        parseObject(c, i + 1, path);
        break;
      }
      if (json[static_cast<size_t>(i)] == '[') {
        parseArray(c, i + 1, path);
        break;
      }
    }
  }
  if (c.piped) return get(c.value.raw, c.pipe);
  return c.value;
}

// The `[...]` and `{...}` multipath branch of Get.
Val Eval::multipath(string_view json, string_view& path, bool& handled) {
  char kind = path[0];
  std::vector<SubSelector> subs;
  string_view rest;
  bool ok = parseSubSelectors(path, subs, rest);
  path = rest;
  if (!ok) return {};
  if (!rest.empty() && rest[0] != '|' && rest[0] != '.') return {};
  handled = true;
  std::string b(1, kind);
  int count = 0;
  for (const SubSelector& sub : subs) {
    Val res = get(json, sub.path);
    if (!res.exists()) continue;
    if (count > 0) b += ',';
    if (kind == '{') {
      if (!sub.name.empty()) {
        if (sub.name[0] == '"' && validJson(sub.name)) {
          b += sub.name;
        } else {
          appendJSONString(b, sub.name);
        }
      } else {
        string_view last = nameOfLast(sub.path);
        appendJSONString(b, isSimpleName(last) ? last : "_");
      }
      b += ':';
    }
    if (res.raw.empty()) {
      std::string text = toString(res);
      b += text.empty() ? "null" : text;
    } else {
      b += res.raw;
    }
    count++;
    if (budget_.exhausted || b.size() > kMaxBuiltBytes) {
      budget_.exhausted = true;
      return {};
    }
  }
  b += static_cast<char>(kind + 2);
  string_view built = keep(std::move(b));
  if (!rest.empty()) return get(built, tail(rest, 1));
  return plainVal(Type::JSON, built);
}

// parseObject: looks for the path's first key among the members of the object at i.
Eval::Step Eval::parseObject(Context& c, Pos i, string_view path) {
  const string_view json = c.json;
  const Pos n = len(json);
  Level level(budget_);
  if (!level) return {n + 1, false};
  ObjectPath rp;
  parseObjectPath(path, rp);
  if (!rp.more && rp.piped) {
    c.pipe = rp.pipe;
    c.piped = true;
  }
  bool pmatch = false;
  bool kesc = false;
  bool ok = false;
  bool hit = false;
  string_view key;
  while (i < n) {
    // The next key (an unterminated one ends the object).
    for (; i < n; i++) {
      if (at(json, i) == '"') {
        Body b = stringBody(json, i + 1);
        if (b.end < n) {
          key = slice(json, i + 1, b.end);
          kesc = b.esc;
          ok = true;
          i = b.end + 1;
        } else {
          key = tail(json, i + 1);
          kesc = false;
          ok = false;
          i = n;
        }
        break;
      }
      if (at(json, i) == '}') return {i + 1, false};
    }
    if (!ok) return {i, false};
    if (rp.wild) {
      pmatch = kesc ? matchLimit(unescape(key), rp.part) : matchLimit(key, rp.part);
    } else {
      pmatch = kesc ? rp.part == unescape(key) : rp.part == key;
    }
    hit = pmatch && !rp.more;
    // Its value.
    for (; i < n; i++) {
      unsigned char ch = at(json, i);
      if (ch == '{' || ch == '[') {
        if (pmatch && !hit) {
          Step inner = ch == '{' ? parseObject(c, i + 1, rp.path) : parseArray(c, i + 1, rp.path);
          i = inner.i;
          hit = inner.hit;
          if (hit) return {i, true};
        } else {
          Scan sq = parseSquash(json, i);
          i = sq.i;
          if (hit) {
            setHit(c.value, plainVal(Type::JSON, sq.raw));
            return {i, true};
          }
        }
        break;
      }
      if (!tokenStart(ch)) continue;
      Token t = readToken(json, i);
      i = t.i;
      if (!t.ok) return {i, false};
      if (hit) {
        setHit(c.value, t.value);
        return {i, true};
      }
      break;
    }
  }
  return {i, false};
}

// parseArray: an index, `#`, `#.key` or a query applied to the array whose elements start at i.
Eval::Step Eval::parseArray(Context& c, Pos i, string_view path) {
  const string_view json = c.json;
  const Pos n = len(json);
  Level level(budget_);
  if (!level) return {n + 1, false};
  ArrayPath rp;
  parseArrayPath(path, rp);
  Pos partidx = 0;
  if (!rp.arrch) {
    std::uint64_t u = 0;
    partidx = parseUint(rp.part, u) ? static_cast<Pos>(u) : -1;
  }
  if (!rp.more && rp.piped) {
    c.pipe = rp.pipe;
    c.piped = true;
  }
  bool pmatch = false;
  bool hit = false;
  Pos h = 0;
  std::vector<Pos> alog;
  std::string multires;

  // procQuery: whether the query (first-match form) is done with this element.
  auto procQuery = [&](const Val& qval) {
    if (rp.queryAll && multires.empty()) multires = "[";
    Val res;
    if (qval.type == Type::JSON) {
      res = get(qval.raw, rp.queryPath);
    } else {
      if (!rp.queryPath.empty()) return false;
      res = qval;
    }
    if (!queryMatches(rp, res)) return false;
    if (rp.more) {
      Split split = splitPossiblePipe(rp.path);
      if (split.ok) {
        rp.path = split.left;
        c.pipe = split.right;
        c.piped = true;
      }
      res = get(qval.raw, rp.path);
    } else {
      res = qval;
    }
    if (!rp.queryAll) {
      c.value = res;
      return true;
    }
    std::string text;
    string_view raw = res.raw;
    if (raw.empty()) {
      text = toString(res);
      raw = text;
    }
    if (!raw.empty()) {
      if (multires.size() > 1) multires += ',';
      multires += raw;
      if (multires.size() > kMaxBuiltBytes) budget_.exhausted = true;
    }
    return false;
  };

  while (i < n + 1) {
    if (!rp.arrch) {
      pmatch = partidx == h;
      hit = pmatch && !rp.more;
    }
    h++;
    if (rp.alogok) alog.push_back(i);
    for (;; i++) {
      if (i > n) break;
      // The end of the text closes the array.
      unsigned char ch = i == n ? ']' : at(json, i);
      if (ch == ']') return closeArray(c, rp, i, h, alog, multires);
      if (ch == '{' || ch == '[') {
        if (pmatch && !hit) {
          Step inner = ch == '{' ? parseObject(c, i + 1, rp.path) : parseArray(c, i + 1, rp.path);
          i = inner.i;
          hit = inner.hit;
          if (hit && !rp.alogok) return {i, true};
        } else {
          Scan sq = parseSquash(json, i);
          i = sq.i;
          if (rp.queryOn) {
            if (procQuery(plainVal(Type::JSON, sq.raw))) return {i, true};
          } else if (hit && !rp.alogok) {
            setHit(c.value, plainVal(Type::JSON, sq.raw));
            return {i, true};
          }
        }
        break;
      }
      if (!tokenStart(ch)) continue;
      Token t = readToken(json, i);
      i = t.i;
      if (!t.ok) return {i, false};
      if (rp.queryOn) {
        if (procQuery(t.value)) return {i, true};
      } else if (hit && !rp.alogok) {
        setHit(c.value, t.value);
        return {i, true};
      }
      break;
    }
  }
  return {i, false};
}

// The end of an array (its ']' or the end of the text at i): the `#` count, the `#.key` array,
// or the `#(...)#` matches.
Eval::Step Eval::closeArray(Context& c, ArrayPath& rp, Pos i, Pos count,
                            const std::vector<Pos>& alog, std::string& multires) {
  const string_view json = c.json;
  const Pos n = len(json);
  if (rp.arrch && rp.part == "#") {
    if (!rp.alogok) {
      c.value = plainVal(Type::Number, keep(std::to_string(count - 1)));
      return {i + 1, true};
    }
    Split split = splitPossiblePipe(rp.alogkey);
    if (split.ok) {
      rp.alogkey = split.left;
      c.pipe = split.right;
      c.piped = true;
    }
    std::string jsons = "[";
    int k = 0;
    for (Pos idx : alog) {
      while (idx < n && (at(json, idx) == ' ' || at(json, idx) == '\t' || at(json, idx) == '\r' ||
                         at(json, idx) == '\n')) {
        idx++;
      }
      if (idx >= n || at(json, idx) == ']') continue;
      AnyScan any = parseAny(json, idx);
      if (!any.ok) continue;
      Val res = get(any.value.raw, rp.alogkey);
      if (!res.exists()) continue;
      if (k > 0) jsons += ',';
      jsons += res.raw.empty() ? toString(res) : std::string(res.raw);
      k++;
      if (jsons.size() > kMaxBuiltBytes) {
        budget_.exhausted = true;
        return {n + 1, false};
      }
    }
    jsons += ']';
    c.value = plainVal(Type::JSON, keep(std::move(jsons)));
    return {i + 1, true};
  }
  if (!c.value.exists()) {
    if (!multires.empty()) {
      multires += ']';
      c.value = plainVal(Type::JSON, keep(std::move(multires)));
    } else if (rp.queryAll) {
      c.value = plainVal(Type::JSON, "[]");
    }
  }
  return {i + 1, false};
}

// execModifier: `@name`, `@name:arg` with a JSON or plain argument, then the rest of the path.
Eval::Modified Eval::execModifier(string_view json, string_view path) {
  string_view name = tail(path, 1);
  string_view pathOut;
  bool hasArgs = false;
  for (Pos i = 1; i < len(path); i++) {
    unsigned char c = at(path, i);
    if (c == ':') {
      pathOut = tail(path, i + 1);
      name = slice(path, 1, i);
      hasArgs = !pathOut.empty();
      break;
    }
    if (c == '|' || c == '.') {
      pathOut = tail(path, i);
      name = slice(path, 1, i);
      break;
    }
  }
  Modifier m = modifierNamed(name);
  if (m == Modifier::None) return {pathOut, {}, false};
  string_view args;
  if (hasArgs) {
    bool parsedArgs = false;
    char c0 = pathOut[0];
    if ((c0 == '{' || c0 == '[' || c0 == '"') && parse(pathOut).exists()) {
      args = squash(pathOut);
      pathOut = tail(pathOut, len(args));
      parsedArgs = true;
    }
    if (!parsedArgs) {
      Pos i = 0;
      for (; i < len(pathOut); i++) {
        char c = pathOut[static_cast<size_t>(i)];
        if (c == '|') break;
        if (c == '{' || c == '[' || c == '"' || c == '(') i += len(squash(tail(pathOut, i))) - 1;
      }
      args = slice(pathOut, 0, i);
      pathOut = tail(pathOut, i);
    }
  }
  string_view res = apply(m, json, args);
  return {pathOut, res, true};
}

// execStatic: `!` followed by a JSON value, or by true, false, null, nan or inf in any case.
Eval::Modified Eval::execStatic(string_view path) {
  string_view name = tail(path, 1);
  if (!name.empty()) {
    unsigned char c = at(name, 0);
    if (c == '{' || c == '[' || c == '"' || c == '+' || c == '-' || isDigit(c)) {
      string_view res = parseSquash(name, 0).raw;
      return {tail(name, len(res)), res, true};
    }
  }
  string_view pathOut;
  for (Pos i = 1; i < len(path); i++) {
    if (path[static_cast<size_t>(i)] == '|' || path[static_cast<size_t>(i)] == '.') {
      pathOut = tail(path, i);
      name = slice(path, 1, i);
      break;
    }
  }
  std::string lower;
  for (char ch : name)
    lower += lowerAscii(static_cast<unsigned char>(ch));
  if (lower == "true" || lower == "false" || lower == "null" || lower == "nan" || lower == "inf") {
    return {pathOut, name, true};
  }
  return {pathOut, {}, false};
}

string_view Eval::apply(Modifier m, string_view json, string_view arg) {
  switch (m) {
    case Modifier::Pretty:
      return modPretty(json, arg);
    case Modifier::Ugly:
      return keep(ugly(json));
    case Modifier::Reverse:
      return modReverse(json);
    case Modifier::This:
      return json;
    case Modifier::Flatten:
      return modFlatten(json, arg);
    case Modifier::Join:
      return modJoin(json, arg);
    case Modifier::Valid:
      return validJson(json) ? json : string_view();
    case Modifier::Keys:
      return modKeys(json);
    case Modifier::Values:
      return modValues(json);
    case Modifier::ToStr: {
      std::string out;
      appendJSONString(out, json);
      return keep(std::move(out));
    }
    case Modifier::FromStr: {
      if (!validJson(json)) return {};
      Val v = parse(json);
      return v.type == Type::JSON ? v.raw : keep(toString(v));
    }
    case Modifier::Group:
      return modGroup(json);
    case Modifier::Dig:
      return modDig(json, arg);
    case Modifier::None:
      break;
  }
  return {};
}

// Builds modifier output: the parts added, separated by commas, inside the brackets.
class Joiner {
 public:
  explicit Joiner(char open) : text_(1, open) {}
  void add(string_view part) {
    if (count_++ > 0) text_ += ',';
    text_ += part;
  }
  std::string close(char bracket) {
    text_ += bracket;
    return std::move(text_);
  }

 private:
  std::string text_;
  int count_ = 0;
};

// The options of a JSON argument object: calls fn(name, value) for each member.
template <typename F>
void forEachOption(string_view arg, F&& fn) {
  forEach(parse(arg), [&](const Val& key, const Val& value) {
    fn(toString(key), value);
    return true;
  });
}

string_view Eval::modPretty(string_view json, string_view arg) {
  PrettyOptions opts;
  if (!arg.empty()) {
    forEachOption(arg, [&](const std::string& key, const Val& value) {
      if (key == "sortKeys") {
        opts.sortKeys = toBool(value);
      } else if (key == "indent") {
        opts.indent = cleanWS(toString(value));
      } else if (key == "prefix") {
        opts.prefix = cleanWS(toString(value));
      } else if (key == "width") {
        opts.width = toInt(value);
      }
    });
  }
  return keep(Prettifier(budget_, json).run(opts));
}

string_view Eval::modReverse(string_view json) {
  Val res = parse(json);
  if (res.isArray()) {
    std::vector<string_view> values;
    forEach(res, [&](const Val&, const Val& value) {
      values.push_back(value.raw);
      return true;
    });
    Joiner out('[');
    for (size_t k = values.size(); k-- > 0;)
      out.add(values[k]);
    return keep(out.close(']'));
  }
  if (res.isObject()) {
    std::vector<std::string> members;
    forEach(res, [&](const Val& key, const Val& value) {
      members.push_back(std::string(key.raw) + ':' + std::string(value.raw));
      return true;
    });
    Joiner out('{');
    for (size_t k = members.size(); k-- > 0;)
      out.add(members[k]);
    return keep(out.close('}'));
  }
  return json;
}

string_view Eval::modFlatten(string_view json, string_view arg) {
  Level level(budget_);
  if (!level) return {};
  Val res = parse(json);
  if (!res.isArray()) return json;
  bool deep = false;
  if (!arg.empty()) {
    forEachOption(arg, [&](const std::string& key, const Val& value) {
      if (key == "deep") deep = toBool(value);
    });
  }
  Joiner out('[');
  forEach(res, [&](const Val&, const Val& value) {
    string_view raw = value.raw;
    if (value.isArray()) raw = unwrap(deep ? modFlatten(value.raw, arg) : value.raw);
    raw = trimSpace(raw);
    if (!raw.empty()) out.add(raw);
    return true;
  });
  return keep(out.close(']'));
}

string_view Eval::modKeys(string_view json) {
  Val v = parse(json);
  if (!v.exists()) return "[]";
  bool obj = v.isObject();
  Joiner out('[');
  forEach(v, [&](const Val& key, const Val&) {
    out.add(obj ? key.raw : string_view("null"));
    return true;
  });
  return keep(out.close(']'));
}

string_view Eval::modValues(string_view json) {
  Val v = parse(json);
  if (!v.exists()) return "[]";
  if (v.isArray()) return json;
  Joiner out('[');
  forEach(v, [&](const Val&, const Val& value) {
    out.add(value.raw);
    return true;
  });
  return keep(out.close(']'));
}

string_view Eval::modJoin(string_view json, string_view arg) {
  Val res = parse(json);
  if (!res.isArray()) return json;
  bool preserve = false;
  if (!arg.empty()) {
    forEachOption(arg, [&](const std::string& key, const Val& value) {
      if (key == "preserve") preserve = toBool(value);
    });
  }
  std::string out = "{";
  if (preserve) {
    int idx = 0;
    forEach(res, [&](const Val&, const Val& value) {
      if (!value.isObject()) return true;
      if (idx > 0) out += ',';
      out += unwrap(value.raw);
      idx++;
      return true;
    });
  } else {
    // Keys in the order they first appear, each with its last value.
    std::vector<std::pair<string_view, std::string>> keys;
    std::unordered_map<std::string, string_view> values;
    forEach(res, [&](const Val&, const Val& object) {
      if (!object.isObject()) return true;
      forEach(object, [&](const Val& key, const Val& value) {
        std::string name = toString(key);
        if (values.find(name) == values.end()) keys.emplace_back(key.raw, name);
        values[name] = value.raw;
        return true;
      });
      return true;
    });
    for (size_t k = 0; k < keys.size(); k++) {
      if (k > 0) out += ',';
      out += keys[k].first;
      out += ':';
      out += values[keys[k].second];
    }
  }
  out += '}';
  return keep(std::move(out));
}

string_view Eval::modGroup(string_view json) {
  Val res = parse(json);
  if (!res.isObject()) return {};
  std::vector<std::string> all;
  forEach(res, [&](const Val& key, const Val& value) {
    if (!value.isArray()) return true;
    size_t idx = 0;
    forEach(value, [&](const Val&, const Val& element) {
      if (idx == all.size()) all.emplace_back();
      std::string& item = all[idx];
      item += ',';
      item += key.raw;
      item += ':';
      item += element.raw;
      idx++;
      return true;
    });
    return true;
  });
  Joiner data('[');
  for (const std::string& item : all)
    data.add('{' + item.substr(1) + '}');
  return keep(data.close(']'));
}

// @dig: the path looked up at every level of the document (parseRecursiveDescent).
string_view Eval::modDig(string_view json, string_view arg) {
  std::vector<string_view> all;
  dig(all, parse(json), arg);
  Joiner out('[');
  for (string_view raw : all)
    out.add(raw);
  return keep(out.close(']'));
}

void Eval::dig(std::vector<string_view>& all, const Val& parent, string_view path) {
  Level level(budget_);
  if (!level) return;
  Val res = get(parent.raw, path);
  if (res.exists()) all.push_back(res.raw);
  if (parent.isArray() || parent.isObject()) {
    forEach(parent, [&](const Val&, const Val& value) {
      dig(all, value, path);
      return !budget_.exhausted;
    });
  }
}

}  // namespace

std::string_view typeName(Type type) {
  switch (type) {
    case Type::Null:
      return "Null";
    case Type::False:
      return "False";
    case Type::Number:
      return "Number";
    case Type::String:
      return "String";
    case Type::True:
      return "True";
    case Type::JSON:
      return "JSON";
  }
  return {};
}

std::string Result::toString() const {
  switch (type) {
    case Type::False:
      return "false";
    case Type::True:
      return "true";
    case Type::String:
      return str;
    case Type::JSON:
      return raw;
    case Type::Number: {
      size_t i = !raw.empty() && raw[0] == '-' ? 1 : 0;
      if (raw.empty()) return formatFloat(num);
      for (; i < raw.size(); i++) {
        if (!isDigit(static_cast<unsigned char>(raw[i]))) return formatFloat(num);
      }
      return raw;
    }
    case Type::Null:
      break;
  }
  return {};
}

bool validBytes(std::string_view json) {
  return validJson(json);
}

Result get(std::string_view json, std::string_view path) {
  Eval eval;
  Val v = eval.get(json, path);
  Result r;
  if (eval.limited()) {
    r.limited = true;
    return r;
  }
  r.type = v.type;
  r.raw.assign(v.raw);
  if (v.type == Type::String) r.str = strValue(v);
  if (v.type == Type::Number) r.num = number(v);
  return r;
}

}  // namespace router::gjson
