// Fuzzes the GJSON evaluator (router/gjson) with a document and a path: nothing may crash, read
// out of bounds, hang or recurse without bound, validBytes must agree with a strict JSON
// grammar on ASCII documents, and every answer must be consistent and repeatable.
//
// Input: the document, a NUL byte, then the path (the path is empty when there is no NUL).
#include <cstdint>
#include <string_view>

#include "router/gjson.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/json_syntax.h"

namespace gjson = router::gjson;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t cut = input.find('\0');
  std::string_view doc = input.substr(0, cut);
  std::string_view path =
      cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);

  bool valid = gjson::validBytes(doc);
  // gjson does not check UTF-8; on ASCII text the grammars must agree.
  bool ascii = true;
  for (unsigned char c : doc)
    ascii = ascii && c < 0x80;
  if (ascii) FUZZ_CHECK(valid == fuzz::JsonSyntax::valid(doc));

  gjson::Result r = gjson::get(doc, path);
  FUZZ_CHECK(r.exists() == (r.type != gjson::Type::Null || !r.raw.empty()));
  if (r.limited) FUZZ_CHECK(!r.exists());
  if (r.type != gjson::Type::String) FUZZ_CHECK(r.str.empty());
  if (r.type == gjson::Type::String) FUZZ_CHECK(!r.raw.empty() && r.raw[0] == '"');
  if (r.type == gjson::Type::True) FUZZ_CHECK(r.raw.starts_with("t"));
  if (r.type == gjson::Type::False) FUZZ_CHECK(r.raw.starts_with("f"));
  // Result::toString works on every answer.
  (void)r.toString();

  gjson::Result again = gjson::get(doc, path);
  FUZZ_CHECK(again.type == r.type && again.raw == r.raw && again.str == r.str &&
             again.limited == r.limited);
  return 0;
}
