// The Go-compatible encodings the modules share: JSON string literals as encoding/json writes
// them, UTF-8 decoding, and UUIDv4 text.
#include "core/util/encoding.h"

#include <catch2/catch.hpp>

#include <string>

using namespace core;

namespace {

std::string goString(std::string_view text) {
  std::string out;
  appendGoJsonString(out, text);
  return out;
}

// utf8Length's answer for the sequence at the start of `text`, and the rune it decoded.
std::pair<size_t, uint32_t> decode(std::string_view text) {
  uint32_t rune = 0xdeadbeef;
  size_t length = utf8Length(text, 0, rune);
  return {length, rune};
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    out += "0123456789abcdef"[c >> 4];
    out += "0123456789abcdef"[c & 0xf];
  }
  return out;
}

std::string uuid(std::array<unsigned char, 16> bytes) {
  std::string out;
  appendUuidV4(out, bytes);
  return out;
}

}  // namespace

TEST_CASE("strings are encoded as Go's json.Marshal writes them", "[core][encoding]") {
  CHECK(goString("plain") == R"("plain")");
  CHECK(goString("a\"b\\c") == R"("a\"b\\c")");
  CHECK(goString("line\n\r\t\b\f") == R"("line\n\r\t\b\f")");
  CHECK(goString(std::string_view("\x01\x1f", 2)) == R"("\u0001\u001f")");
  CHECK(goString("<a&b>") == R"("\u003ca\u0026b\u003e")");
  CHECK(goString("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(goString("\xe2\x80\xa8") == R"("\u2028")");
  CHECK(goString("bad\xff") == R"("bad\ufffd")");
}

TEST_CASE("JSON strings: the rest of Go's rules", "[core][encoding]") {
  CHECK(goString("") == R"("")");
  // NUL is a control character like the others; DEL and '/' are left as they are, as Go does.
  CHECK(goString(std::string_view("a\0b", 3)) == R"("a\u0000b")");
  CHECK(goString("\x7f/") == "\"\x7f/\"");
  // Both JavaScript line terminators are escaped, not only U+2028.
  CHECK(goString("a\xe2\x80\xa9z") == R"("a\u2029z")");
  // Four-byte sequences (outside the BMP) are kept as they are.
  CHECK(goString("\xf0\x9f\x98\x80") == "\"\xf0\x9f\x98\x80\"");
  // Each byte of an invalid sequence becomes one U+FFFD, and decoding resumes after it.
  CHECK(goString("\xe2\x82x") == R"("\ufffd\ufffdx")");
  CHECK(goString("\xc0\xaf") == R"("\ufffd\ufffd")");                      // overlong '/'
  CHECK(goString("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");            // a UTF-16 surrogate
  CHECK(goString("\xf4\x90\x80\x80") == R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  CHECK(goString("\x80\xbf") == R"("\ufffd\ufffd")");  // continuation bytes without a lead
}

TEST_CASE("appendGoJsonString appends to what the string holds", "[core][encoding]") {
  std::string out = R"({"id":)";
  appendGoJsonString(out, "x<y");
  out += '}';
  CHECK(out == R"({"id":"x\u003cy"})");
}

TEST_CASE("utf8Length decodes one sequence and its code point", "[core][encoding]") {
  CHECK(decode("A") == std::pair<size_t, uint32_t>{1, 0x41});
  CHECK(decode("\xc3\xa9") == std::pair<size_t, uint32_t>{2, 0xe9});
  CHECK(decode("\xe2\x82\xac") == std::pair<size_t, uint32_t>{3, 0x20ac});
  CHECK(decode("\xf0\x9f\x98\x80") == std::pair<size_t, uint32_t>{4, 0x1f600});
  // The edges of each length.
  CHECK(decode("\xc2\x80").first == 2);
  CHECK(decode("\xdf\xbf") == std::pair<size_t, uint32_t>{2, 0x7ff});
  CHECK(decode("\xef\xbf\xbf") == std::pair<size_t, uint32_t>{3, 0xffff});
  CHECK(decode("\xf4\x8f\xbf\xbf") == std::pair<size_t, uint32_t>{4, 0x10ffff});
  // At an offset: the sequence that starts there.
  uint32_t rune = 0;
  CHECK(utf8Length("ab\xc3\xa9", 2, rune) == 2);
  CHECK(rune == 0xe9);
}

TEST_CASE("utf8Length refuses what is not valid UTF-8", "[core][encoding]") {
  for (std::string_view bad : {
           "\x80",                  // a continuation byte as lead
           "\xc3",                  // truncated
           "\xe2\x82",              // truncated
           "\xf0\x9f\x98",          // truncated
           "\xc3(",                 // a lead without its continuation
           "\xc0\x80",              // overlong NUL
           "\xe0\x80\xaf",          // overlong '/'
           "\xf0\x82\x82\xac",      // overlong euro sign
           "\xed\xa0\x80",          // U+D800, a surrogate
           "\xed\xbf\xbf",          // U+DFFF
           "\xf4\x90\x80\x80",      // U+110000
           "\xf8\x88\x80\x80\x80",  // five-byte forms do not exist
           "\xff",
       }) {
    INFO(hex(bad));
    CHECK(decode(bad).first == 0);
  }
}

TEST_CASE("UUIDv4 text sets the version and variant bits and keeps the rest", "[core][encoding]") {
  CHECK(uuid({}) == "00000000-0000-4000-8000-000000000000");
  std::array<unsigned char, 16> ones;
  ones.fill(0xff);
  CHECK(uuid(ones) == "ffffffff-ffff-4fff-bfff-ffffffffffff");
  CHECK(uuid({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
              0x0e, 0x0f}) == "00010203-0405-4607-8809-0a0b0c0d0e0f");
  CHECK(uuid({0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed, 0xfa, 0xce, 0x7a, 0xb0, 0x0b, 0x5c, 0xaf, 0xe0,
              0xba, 0xbe}) == "deadbeef-feed-4ace-bab0-0b5cafe0babe");
  std::string out = "id=";
  appendUuidV4(out, {});
  CHECK(out == "id=00000000-0000-4000-8000-000000000000");
}
