// The batcher's JSON helpers: Go's syntax messages, field folding, string decoding and the
// exact-text reading of values.
#include <catch2/catch.hpp>

#include "batcher/json.h"

using namespace batcher;

namespace {

// Reads the elements of a root array, or returns the simdjson error.
simdjson::error_code elementsOf(std::string_view text, std::vector<std::string>& out) {
  json::Source source(text);
  json::od::document document;
  json::od::value root;
  std::vector<std::string_view> views;
  auto error = source.iterate(document);
  if (!error) error = document.get_value().get(root);
  if (!error) error = json::readElements(root, views);
  if (!error) error = json::expectEnd(document);
  for (auto view : views)
    out.emplace_back(view);
  return error;
}

}  // namespace

TEST_CASE("elements keep their exact text: numbers, strings, nested values", "[batcher]") {
  std::vector<std::string> elements;
  REQUIRE(!elementsOf(R"([ 12345678901234567890 , 1.10,1e400, -0.0E+5, "a\"b\u00e9",
      {"z":1, "a" : [1, 2]}, [ ], true, false, null ])",
                      elements));
  CHECK(elements == std::vector<std::string>{"12345678901234567890", "1.10", "1e400", "-0.0E+5",
                                             R"("a\"b\u00e9")", R"({"z":1, "a" : [1, 2]})", "[ ]",
                                             "true", "false", "null"});
}

TEST_CASE("invalid JSON anywhere in a value is refused", "[batcher]") {
  for (std::string_view text :
       {"[1 2]",       "[1,]",         "[01]",    "[1.]",       "[-]",
        "[.5]",        "[1e]",         "[tru]",   "[nul]",      "[\"a\\x\"]",
        "[{\"a\" 1}]", "[{\"a\":1,}]", "[{1:2}]", "[[1,2]",     "[1] x",
        "[\"a\tb\"]",  "[+1]",         "[NaN]",   "[\"\xff\"]", "[{\"a\":1 \"b\":2}]"}) {
    std::vector<std::string> elements;
    INFO(text);
    CHECK(elementsOf(text, elements) != simdjson::SUCCESS);
  }
}

TEST_CASE("leaves of nested arrays are flattened in row-major order", "[batcher]") {
  json::Source source(R"([[1, 2.50], [3, "x"]])");
  json::od::document document;
  json::od::value root;
  std::vector<std::string_view> leaves;
  REQUIRE(!source.iterate(document));
  REQUIRE(!document.get_value().get(root));
  REQUIRE(!json::readLeaves(root, leaves));
  CHECK(leaves == std::vector<std::string_view>{"1", "2.50", "3", "\"x\""});
}

TEST_CASE("JSON numbers follow RFC 8259", "[batcher]") {
  for (std::string_view good : {"0", "-0", "1", "10", "1.5", "1e5", "1E+5", "1e-05", "-1.25e10"}) {
    CHECK(json::isNumber(good));
  }
  for (std::string_view bad : {"", "-", "01", "1.", ".1", "1e", "+1", "0x1", "1e+", "--1", "1 "}) {
    CHECK_FALSE(json::isNumber(bad));
  }
}

TEST_CASE("field names match as Go's encoding/json matches them", "[batcher]") {
  CHECK(json::goFieldMatches("instances", "instances"));
  CHECK(json::goFieldMatches("Instances", "instances"));
  CHECK(json::goFieldMatches("INSTANCES", "instances"));
  CHECK(json::goFieldMatches("in\xc5\xbftances", "instances"));  // U+017F long s
  CHECK(json::goFieldMatches("\xc4\xb0nstances", "instances"));  // U+0130 I with dot
  CHECK_FALSE(json::goFieldMatches("instance", "instances"));
  CHECK_FALSE(json::goFieldMatches("instancess", "instances"));
  CHECK_FALSE(json::goFieldMatches("inst_ances", "instances"));
  CHECK_FALSE(json::goFieldMatches("\xc3\xafnstances", "instances"));  // U+00EF
}

TEST_CASE("syntax errors are worded as Go's scanner words them", "[batcher]") {
  CHECK(json::goSyntaxError("") == "unexpected end of JSON input");
  CHECK(json::goSyntaxError("  ") == "unexpected end of JSON input");
  CHECK(json::goSyntaxError("x-not-json") ==
        "invalid character 'x' looking for beginning of value");
  CHECK(json::goSyntaxError("{\"a\":1") == "unexpected end of JSON input");
  CHECK(json::goSyntaxError("{\"a\" 1}") == "invalid character '1' after object key");
  CHECK(json::goSyntaxError("{\"a\":1 \"b\"}") ==
        "invalid character '\"' after object key:value pair");
  CHECK(json::goSyntaxError("[1 2]") == "invalid character '2' after array element");
  CHECK(json::goSyntaxError("{1}") ==
        "invalid character '1' looking for beginning of object key string");
  CHECK(json::goSyntaxError("{} x") == "invalid character 'x' after top-level value");
  CHECK(json::goSyntaxError("[1.]") ==
        "invalid character ']' after decimal point in numeric literal");
  CHECK(json::goSyntaxError("1.") ==
        "invalid character ' ' after decimal point in numeric literal");
  CHECK(json::goSyntaxError("[1e]") == "invalid character ']' in exponent of numeric literal");
  CHECK(json::goSyntaxError("[-a]") == "invalid character 'a' in numeric literal");
  CHECK(json::goSyntaxError("[tru]") == "invalid character ']' in literal true (expecting 'e')");
  CHECK(json::goSyntaxError("\"a\\q\"") == "invalid character 'q' in string escape code");
  CHECK(json::goSyntaxError("\"\\u12x4\"") ==
        "invalid character 'x' in \\u hexadecimal character escape");
  CHECK(json::goSyntaxError("\"a\nb\"") == "invalid character '\\n' in string literal");
  CHECK(json::goSyntaxError("<html>") == "invalid character '<' looking for beginning of value");
  CHECK(json::goSyntaxError("'a'") == "invalid character '\\'' looking for beginning of value");
  CHECK(json::goSyntaxError("[01]") == "invalid character '1' after array element");
  CHECK(json::goSyntaxError(R"({"a":[1,{"b":null}],"c":"\u00e9"})").empty());
  CHECK(json::goSyntaxError(" 12 ").empty());
}

TEST_CASE("lone surrogate escapes are valid JSON and keep their exact text", "[batcher]") {
  std::vector<std::string> elements;
  REQUIRE(!elementsOf(R"(["\ud800", "a\udc00b" ,{"\udfff":"\ud800\u0041"}, "\ud83d\ude00"])",
                      elements));
  CHECK(elements == std::vector<std::string>{R"("\ud800")", R"("a\udc00b")",
                                             R"({"\udfff":"\ud800\u0041"})", R"("\ud83d\ude00")"});
}

TEST_CASE("a string followed by a colon is not taken for a key", "[batcher]") {
  for (std::string_view text :
       {R"(["k":1])", R"([1,"k":[true]},[]])", R"([{"a":"b":1}])", R"([{"a":"\ud800":{}}])"}) {
    std::vector<std::string> elements;
    INFO(text);
    CHECK(elementsOf(text, elements) != simdjson::SUCCESS);
  }
}

TEST_CASE("invalid keys are refused as Go refuses them", "[batcher]") {
  for (std::string_view text : {"[{\"a\tb\":1}]", "[{\"\\q\":1}]", "[{\"\\u12\":1}]",
                                "[{\"\\ud800\\u12x4\":1}]", "[{\"a\":1,\"b\\x\":2}]"}) {
    std::vector<std::string> elements;
    INFO(text);
    CHECK(elementsOf(text, elements) != simdjson::SUCCESS);
  }
}

TEST_CASE("string literals are decoded as Go's decoder decodes them", "[batcher]") {
  const std::string replacement = "\xef\xbf\xbd";  // U+FFFD
  const auto decode = [](std::string_view literal) {
    std::string out;
    INFO(literal);
    CHECK(json::unquote(literal, &out));
    return out;
  };
  CHECK(decode(R"("plain")") == "plain");
  CHECK(decode(R"("a\"\\\/\b\f\n\r\t")") == "a\"\\/\b\f\n\r\t");
  CHECK(decode(R"("caf\u00e9 \u20AC")") == "caf\xc3\xa9 \xe2\x82\xac");
  CHECK(decode(R"("\ud83d\ude00")") == "\xf0\x9f\x98\x80");
  CHECK(decode(R"("\ud800")") == replacement);
  CHECK(decode(R"("x\udc00y")") == "x" + replacement + "y");
  CHECK(decode(R"("\ud800\u0041")") == replacement + "A");
  CHECK(decode(R"("\udc00\ud800")") == replacement + replacement);
  CHECK(decode(R"("\ud800\ud800\udc00")") == replacement + "\xf0\x90\x80\x80");
  CHECK(decode("\"\xc3\xa9\"") == "\xc3\xa9");
  for (std::string_view bad : {"", "\"", "plain", R"("a\x")", R"("\u12")", R"("\u12g4")",
                               R"("a"b")", R"("a\")", "\"a\tb\"", "\"a\nb\""}) {
    INFO(bad);
    CHECK_FALSE(json::unquote(bad));
  }
}
