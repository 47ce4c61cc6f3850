// Differential fuzzing of the GJSON evaluator (router/gjson, which follows gjson v1.18.0) against
// Go's gjson itself: Debian's golang-github-tidwall-gjson-dev 1.14.4 (with tidwall/match 1.1.1
// and tidwall/pretty 1.0.5), linked in as a C archive (gjson_diff/main.go). Both must agree on
// ValidBytes and on the type and raw text of every GetBytes answer, except where 1.14.4 and
// v1.18.0 are known to differ (router/README.md, "gjson 1.14.4 and v1.18.0"): those inputs are
// recognised by the rules below and not compared. Inputs on which Go's gjson panics, and answers
// that stopped at our nesting limit, are not compared either.
//
// Input: the document, a NUL byte, then the path.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include "router/gjson.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int GjsonValid(char* json, int n);
extern "C" int GjsonGet(char* json, int jn, char* path, int pn, int* typ, char** raw, int* rawLen);

namespace {

namespace gjson = router::gjson;
using std::string_view;

bool contains(string_view s, string_view word) {
  return s.find(word) != string_view::npos;
}

// Difference 1: `~` coercions in query values (`#(a==~true)`, `~false`, `~null`, `~*`) are
// v1.17's; 1.14.4 reads any `~x` as the truth of the value compared with x. A `~` counts when the
// nearest character before it, spaces aside, is an operator character or a quote.
bool coercion(string_view path) {
  for (size_t i = 0; i < path.size(); i++) {
    if (path[i] != '~') continue;
    size_t j = i;
    while (j > 0 && static_cast<unsigned char>(path[j - 1]) <= ' ')
      j--;
    if (j > 0 && contains("=<>%!\"", string_view(&path[j - 1], 1))) return true;
  }
  return false;
}

// Difference 2: the @dig modifier does not exist in 1.14.4.
bool dig(string_view path) {
  return contains(path, "@dig");
}

// Difference 3: a modifier argument that is not JSON (`@name:text`) ends at the first '|' in
// 1.14.4; v1.18.0 skips over brackets, parentheses and quoted strings in it first.
bool plainModifierArgument(string_view path) {
  for (string_view name : {"pretty", "ugly", "reverse", "this", "flatten", "join", "valid", "keys",
                           "values", "tostr", "fromstr", "group"}) {
    std::string marker = "@" + std::string(name) + ":";
    for (size_t at = path.find(marker); at != string_view::npos; at = path.find(marker, at + 1)) {
      string_view arg = path.substr(at + marker.size());
      if (arg.empty() || arg[0] == '{' || arg[0] == '[' || arg[0] == '"') continue;
      arg = arg.substr(0, arg.find('|'));
      if (arg.find_first_of("{[(\"") != string_view::npos) return true;
    }
  }
  return false;
}

// Difference 4: @pretty in tidwall/pretty 1.2.1 prints NaN and Inf numbers (starting with i, I,
// +, N or n not followed by u) where 1.0.5 skips those characters, and with sortKeys it orders
// equal keys by value and compares escaped keys decoded.
bool prettyNumbersOrSort(string_view path, string_view doc) {
  if (!contains(path, "@pretty")) return false;
  if (contains(path, "sortKeys")) return true;
  for (string_view text : {path, doc}) {
    for (size_t i = 0; i < text.size(); i++) {
      char c = text[i];
      if (c == 'i' || c == 'I' || c == '+' || c == 'N') return true;
      if (c == 'n' && (i + 1 == text.size() || text[i + 1] != 'u')) return true;
    }
  }
  return false;
}

// Difference 5: gjson's JSON string encoder (@tostr, multipath keys) writes \b and \f where
// 1.14.4 writes \u0008 and \u000c, at any depth (a string encoded twice, @tostr of a multipath,
// carries the inner escape as \\u0008). The texts are walked side by side: they must be equal
// but where Go's has u0008 (u000c) right after a backslash and ours b (f) at the same place. A
// document that spells \u0008 in its own text keeps it in both answers, so it compares equal.
bool sameButShortEscapes(string_view go, string_view ours) {
  size_t i = 0;
  size_t j = 0;
  while (i < go.size() && j < ours.size()) {
    if (go[i] == ours[j]) {
      ++i;
      ++j;
      continue;
    }
    const bool afterBackslash = i > 0 && go[i - 1] == '\\';
    const string_view code = go.substr(i, 5);
    if (afterBackslash &&
        ((code == "u0008" && ours[j] == 'b') || (code == "u000c" && ours[j] == 'f'))) {
      i += 5;
      ++j;
      continue;
    }
    return false;
  }
  return i == go.size() && j == ours.size();
}

// Difference 5b: what a later step makes of such an encoded string (`@tostr|#` finds an array
// inside it, `@tostr|@valid` judges it) follows from the escape's spelling, so it differs too and
// is not a matter of spelling alone. Inputs where an encoder (@tostr, a multipath) may meet a
// backspace or form feed, raw or escaped in the document or the path, are not compared once
// the answers differ.
bool encodesShortEscape(string_view path, string_view doc) {
  if (!contains(path, "@tostr") && path.find_first_of("{[") == string_view::npos) return false;
  for (string_view text : {path, doc}) {
    std::string lower(text);
    for (char& c : lower)
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (string_view marker : {"\b", "\f", "\\b", "\\f", "u0008", "u000c"}) {
      if (contains(lower, marker)) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t cut = input.find('\0');
  if (cut == std::string::npos) return 0;
  std::string doc = input.substr(0, cut);
  std::string path = input.substr(cut + 1);

  bool goValid = GjsonValid(doc.data(), static_cast<int>(doc.size())) == 1;
  FUZZ_CHECK(goValid == gjson::validBytes(doc));

  int goType = 0;
  char* goRawText = nullptr;
  int goRawLen = 0;
  if (GjsonGet(doc.data(), static_cast<int>(doc.size()), path.data(), static_cast<int>(path.size()),
               &goType, &goRawText, &goRawLen) != 0) {
    return 0;
  }
  std::string goRaw(goRawText, static_cast<size_t>(goRawLen));
  std::free(goRawText);
  if (coercion(path) || dig(path) || plainModifierArgument(path) ||
      prettyNumbersOrSort(path, doc)) {
    return 0;
  }
  gjson::Result r = gjson::get(doc, path);
  if (r.limited) return 0;
  bool same =
      static_cast<int>(r.type) == goType && (r.raw == goRaw || sameButShortEscapes(goRaw, r.raw));
  if (!same && encodesShortEscape(path, doc)) return 0;
  if (!same) {
    std::fprintf(stderr, "gjson 1.14.4: %s %s\nours:         %s %s\n",
                 std::string(gjson::typeName(static_cast<gjson::Type>(goType))).c_str(),
                 goRaw.c_str(), std::string(gjson::typeName(r.type)).c_str(), r.raw.c_str());
  }
  FUZZ_CHECK(same);
  return 0;
}
