// The GJSON evaluator against gjson v1.18.0: every line of the recorded conformance file, then
// one test case per area of the path syntax. The expected answers are gjson's (checked against
// the Go library); where gjson is odd the test says so.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>

#include "router/gjson.h"

namespace gjson = router::gjson;
using gjson::Type;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Case {
  std::string_view path;
  Type type;
  std::string_view raw;
};

// Checks the type and raw text gjson answers for each path on one document; a Null type with an
// empty raw means "does not exist".
void expectAll(std::string_view doc, std::initializer_list<Case> cases) {
  for (const Case& c : cases) {
    INFO("path " << c.path);
    gjson::Result r = gjson::get(doc, c.path);
    CHECK(gjson::typeName(r.type) == gjson::typeName(c.type));
    CHECK(r.raw == c.raw);
    CHECK(r.exists() == (c.type != Type::Null || !c.raw.empty()));
    CHECK_FALSE(r.limited);
  }
}

bool exists(std::string_view doc, std::string_view path) {
  return gjson::get(doc, path).exists();
}

// The example document of gjson's SYNTAX.md.
constexpr std::string_view kFriends = R"({
  "name": {"first": "Tom", "last": "Anderson"},
  "age":37,
  "children": ["Sara","Alex","Jack"],
  "fav.movie": "Deer Hunter",
  "friends": [
    {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
    {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
    {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
  ]
})";

}  // namespace

TEST_CASE("every line of the v1.18.0 conformance file gets gjson's four answers", "[gjson]") {
  const std::string file = KSA_GJSON_CONFORMANCE;
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in.good());
  std::string line;
  int lines = 0;
  int mismatches = 0;
  std::string report;
  while (std::getline(in, line)) {
    lines++;
    nlohmann::json c = nlohmann::json::parse(line);
    const std::string doc = c.at("json");
    const std::string path = c.at("path");
    bool valid = gjson::validBytes(doc);
    gjson::Result r = gjson::get(doc, path);
    std::string type(gjson::typeName(r.type));
    if (valid != c.at("valid").get<bool>() || r.exists() != c.at("exists").get<bool>() ||
        type != c.at("type").get<std::string>() || r.raw != c.at("raw").get<std::string>()) {
      mismatches++;
      nlohmann::json got = {
          {"valid", valid}, {"exists", r.exists()}, {"type", type}, {"raw", r.raw}};
      report += "line " + std::to_string(lines) + ": " + line + "\n  got " + got.dump() + "\n";
    }
  }
  INFO(report);
  CHECK(mismatches == 0);
  // The file holds 548 cases; a truncated copy must not pass silently.
  CHECK(lines == 548);
}

TEST_CASE("the vendored conformance file is the shared one, byte for byte", "[gjson]") {
  const std::string shared = KSA_GJSON_SHARED_CONFORMANCE;
  std::ifstream probe(shared, std::ios::binary);
  if (!probe.good()) {
    WARN("no shared copy beside the checkout (" << shared << "); nothing to compare");
    return;
  }
  CHECK(readFile(shared) == readFile(KSA_GJSON_CONFORMANCE));
}

TEST_CASE("validBytes is strict JSON with any value at the top", "[gjson][valid]") {
  for (std::string_view ok : {"0", "-0.5e+10", "\"x\"", " true ", "null", "false", "[]", "{}",
                              "\t\r\n[1, {\"a\": [null]}]\n", "\"\\u00e9\\n\\/\"",
                              "{\"a\":1,\"a\":2}", "\"\x01\x7f\xff\""}) {
    INFO(ok);
    // A control character inside a string is invalid; the last case has \x01 on purpose.
    CHECK(gjson::validBytes(ok) == (ok.find('\x01') == std::string_view::npos));
  }
  for (std::string_view bad :
       {"",        "   ",         "01",      "1.",      ".5",    "+1",  "-",   "1e",
        "[1,]",    "{\"a\":1,}",  "{'a':1}", "{a:1}",   "[1] 2", "NaN", "tru", "nul",
        "\"\\x\"", "\"\\u12g4\"", "[",       "{\"a\"}", "\"abc", "\v1"}) {
    INFO(bad);
    CHECK_FALSE(gjson::validBytes(bad));
  }
}

TEST_CASE("validBytes has no nesting limit", "[gjson][valid]") {
  std::string deep(200000, '[');
  deep.append(200000, ']');
  CHECK(gjson::validBytes(deep));
  deep.back() = '}';
  CHECK_FALSE(gjson::validBytes(deep));
}

TEST_CASE("keys, nested keys and array indexes", "[gjson][keys]") {
  expectAll(kFriends,
            {
                {"name.last", Type::String, R"("Anderson")"},
                {"age", Type::Number, "37"},
                {"children", Type::JSON, R"(["Sara","Alex","Jack"])"},
                {"children.1", Type::String, R"("Alex")"},
                {"children.3", Type::Null, ""},
                {"friends.1.last", Type::String, R"("Craig")"},
                {"friends.1", Type::JSON,
                 R"({"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]})"},
                {"missing", Type::Null, ""},
                {"name.last.x", Type::Null, ""},
                {"", Type::Null, ""},
            });
  gjson::Result r = gjson::get(R"({"s":"a\"b\u00e9\n","n":-1.5e3})", "s");
  CHECK(r.str == "a\"b\xc3\xa9\n");
  CHECK(gjson::get(R"({"s":"a\"b\u00e9\n","n":-1.5e3})", "n").num == -1500);
}

TEST_CASE("wildcards and escapes in keys", "[gjson][keys]") {
  expectAll(kFriends, {
                          {"child*.2", Type::String, R"("Jack")"},
                          {"c?ildren.0", Type::String, R"("Sara")"},
                          {"fav\\.movie", Type::String, R"("Deer Hunter")"},
                          {"fav.movie", Type::Null, ""},
                          {"*.first", Type::String, R"("Tom")"},
                      });
  // An escaped star is literal, unless the key also has an unescaped wildcard: gjson removes the
  // backslash and matches the whole key as a pattern then.
  expectAll(R"({"abc":2,"ab*":1})", {{"ab\\*", Type::Number, "1"}, {"a?\\*", Type::Number, "2"}});
  // Keys with escapes in the document are compared decoded.
  expectAll(R"({"a\u0062":1})", {{"ab", Type::Number, "1"}, {"a?", Type::Number, "1"}});
  // A pipe in a key must be escaped.
  expectAll(R"({"k|v":1})", {{"k\\|v", Type::Number, "1"}, {"k|v", Type::Null, ""}});
}

TEST_CASE("# counts an array and #.key maps over it", "[gjson][arrays]") {
  expectAll(kFriends, {
                          {"children.#", Type::Number, "3"},
                          {"friends.#.first", Type::JSON, R"(["Dale","Roger","Jane"])"},
                          {"friends.#.nets.#", Type::JSON, "[3,2,2]"},
                          {"friends.#.missing", Type::JSON, "[]"},
                          {"name.#", Type::Null, ""},
                      });
  gjson::Result count = gjson::get("[1,2,3]", "#");
  CHECK(count.num == 3);
}

TEST_CASE("#(...) returns the first match, #(...)# all of them", "[gjson][queries]") {
  expectAll(kFriends, {
                          {"friends.#(last==\"Murphy\").first", Type::String, R"("Dale")"},
                          {"friends.#(last==\"Murphy\")#.first", Type::JSON, R"(["Dale","Jane"])"},
                          {"friends.#(last=Murphy)#.first", Type::JSON, R"(["Dale","Jane"])"},
                          {"friends.#(age>45)#.last", Type::JSON, R"(["Craig","Murphy"])"},
                          {"friends.#(age>=47)#.age", Type::JSON, "[68,47]"},
                          {"friends.#(age<47)#.age", Type::JSON, "[44]"},
                          {"friends.#(age<=47)#.age", Type::JSON, "[44,47]"},
                          {"friends.#(age!=44)#.age", Type::JSON, "[68,47]"},
                          {"friends.#(first%\"D*\").last", Type::String, R"("Murphy")"},
                          {"friends.#(first!%\"D*\").last", Type::String, R"("Craig")"},
                          {"friends.#(first%J?ne).age", Type::Number, "47"},
                          {"friends.#(nets.#(==\"fb\"))#.first", Type::JSON, R"(["Dale","Roger"])"},
                          {"friends.#(last==\"Nobody\")", Type::Null, ""},
                          {"friends.#(last==\"Nobody\")#", Type::JSON, "[]"},
                          {"friends.#(age)#.first", Type::JSON, R"(["Dale","Roger","Jane"])"},
                          {"friends.#[last=\"Craig\"].first", Type::String, R"("Roger")"},
                          {"children.#(!=\"Alex\")#", Type::JSON, R"(["Sara","Jack"])"},
                          {"children.#(>\"Jack\")", Type::String, R"("Sara")"},
                      });
}

TEST_CASE("query values compare by the element's type", "[gjson][queries]") {
  // The right-hand side is text: strings compare to it bytewise, numbers to it read as a
  // float (0 when it is not one), true and false to the words, null and containers not at all.
  constexpr std::string_view doc =
      R"({"a":[1,"1",true,false,null,{"x":1},[1],1.5e1,"b\"c",-0.0,12345678901234567890]})";
  expectAll(doc,
            {
                {"a.#(==1)#", Type::JSON, R"([1,"1"])"},
                {"a.#(==\"1\")#", Type::JSON, R"([1,"1"])"},
                {"a.#(==15)", Type::Number, "1.5e1"},
                {"a.#(==\"b\\\"c\")", Type::String, R"("b\"c")"},
                {"a.#(==0)", Type::Number, "-0.0"},
                {"a.#(>1e19)", Type::String, R"("b\"c")"},
                {"a.#(>1e19)#", Type::JSON, R"(["b\"c",12345678901234567890])"},
                {"a.#(==abc)", Type::Number, "-0.0"},
                {"a.#(==true)#", Type::JSON, "[true,-0.0]"},
                {"a.#(!=true)#", Type::JSON, R"([1,"1",false,1.5e1,"b\"c",12345678901234567890])"},
                {"a.#(>false)#", Type::JSON, "[1,true,1.5e1,12345678901234567890]"},
                {"a.#(<true)#", Type::JSON, R"(["1",false,"b\"c"])"},
                {"a.#(>=x)#", Type::JSON, "[1,true,1.5e1,-0.0,12345678901234567890]"},
                {"a.#(==null)#", Type::JSON, "[-0.0]"},
                {"a.#(x==1).x", Type::Number, "1"},
                {"a.#(x)", Type::JSON, R"({"x":1})"},
            });
}

TEST_CASE("the ~ operator coerces the value before comparing", "[gjson][queries]") {
  constexpr std::string_view doc =
      R"({"a":[{"v":true},{"v":"TRUE"},{"v":1},{"v":"0"},{"v":false},{"v":null},{"v":"x"},{"w":1}]})";
  expectAll(doc, {
                     {"a.#(v==~true)#.v", Type::JSON, R"([true,"TRUE",1])"},
                     {"a.#(v==~false)#.v", Type::JSON, R"(["0",false,null])"},
                     // ~null also matches a missing value.
                     {"a.#(v==~null)#", Type::JSON, R"([{"v":null},{"w":1}])"},
                     {"a.#(v==~*)#.v", Type::JSON, R"([true,"TRUE",1,"0",false,null,"x"])"},
                     {"a.#(v!=~true)#.v", Type::JSON, R"(["0",false,null,"x"])"},
                     {"a.#(v==~other)#", Type::JSON, "[]"},
                 });
}

TEST_CASE("% patterns follow tidwall/match, with its complexity limit", "[gjson][queries]") {
  expectAll(R"(["my-red-server-1","blue","Red","a*b","\u00e9t\u00e9"])",
            {
                {"#(%*red*)#", Type::JSON, R"(["my-red-server-1"])"},
                {"#(%\"*red*\")#", Type::JSON, R"(["my-red-server-1"])"},
                {"#(!%*red*)#", Type::JSON, R"(["blue","Red","a*b","\u00e9t\u00e9"])"},
                {"#(%a\\*b)", Type::String, R"("a*b")"},
                {"#(%?t?)", Type::String, R"("\u00e9t\u00e9")"},
                {"#(%bl?e)", Type::String, R"("blue")"},
            });
  // A pattern that would backtrack for ages is stopped and counts as no match.
  std::string text(2000, 'a');
  std::string pattern;
  for (int k = 0; k < 40; k++)
    pattern += "*a";
  pattern += "*b";
  std::string doc = "[\"" + text + "\"]";
  CHECK_FALSE(exists(doc, "#(%" + pattern + ")"));
  CHECK(exists(doc, "#(%" + pattern.substr(0, pattern.size() - 2) + ")"));
}

TEST_CASE("| and . chaining differ after queries", "[gjson][chaining]") {
  expectAll(kFriends, {
                          {"friends.#(last=\"Murphy\")#|#", Type::Number, "2"},
                          {"friends.#(last=\"Murphy\")#.#", Type::JSON, "[]"},
                          {"friends.#(last=\"Murphy\")#|0.first", Type::String, R"("Dale")"},
                          {"friends.#(last=\"Murphy\")#.first|1", Type::String, R"("Jane")"},
                          {"children|1", Type::String, R"("Alex")"},
                          {"name|last", Type::String, R"("Anderson")"},
                          {"friends.#.first|@reverse", Type::JSON, R"(["Jane","Roger","Dale"])"},
                      });
}

TEST_CASE("modifiers: @this, @reverse, @ugly, @pretty, @valid", "[gjson][modifiers]") {
  expectAll(R"({"b":[1, 2],"a":{"x" : 1}})",
            {
                {"@this", Type::JSON, R"({"b":[1, 2],"a":{"x" : 1}})"},
                {"b.@reverse", Type::JSON, "[2,1]"},
                {"b|@reverse|0", Type::Number, "2"},
                {"@reverse", Type::JSON, R"({"a":{"x" : 1},"b":[1, 2]})"},
                {"@ugly", Type::JSON, R"({"b":[1,2],"a":{"x":1}})"},
                {"@pretty", Type::JSON, "{\n  \"b\": [1, 2],\n  \"a\": {\n    \"x\": 1\n  }\n}\n"},
                {"@pretty:{\"sortKeys\":true}", Type::JSON,
                 "{\n  \"a\": {\n    \"x\": 1\n  },\n  \"b\": [1, 2]\n}\n"},
                // The prefix opens every line but the first: gjson reads the text back from its
                // first bracket.
                {"@pretty:{\"indent\":\"\\t\",\"prefix\":\"  \",\"width\":3}", Type::JSON,
                 "{\n  \t\"b\": [\n  \t\t1,\n  \t\t2\n  \t],\n  \t\"a\": {\n  \t\t\"x\": 1\n  "
                 "\t}\n  }\n"},
                {"@valid", Type::JSON, R"({"b":[1, 2],"a":{"x" : 1}})"},
                {"@nosuch", Type::Null, ""},
            });
  expectAll("[1,2", {{"@valid", Type::Null, ""}, {"@this", Type::JSON, "[1,2"}});
}

TEST_CASE("modifiers: @keys, @values, @join, @flatten, @group", "[gjson][modifiers]") {
  expectAll(R"({"a":1,"b":[2],"c":{"d":3}})", {
                                                  {"@keys", Type::JSON, R"(["a","b","c"])"},
                                                  {"@values", Type::JSON, R"([1,[2],{"d":3}])"},
                                                  {"b.@keys", Type::JSON, "[null]"},
                                              });
  expectAll(R"([{"a":1,"b":2},{"a":3},4])",
            {
                {"@join", Type::JSON, R"({"a":3,"b":2})"},
                {"@join:{\"preserve\":true}", Type::JSON, R"({"a":1,"b":2,"a":3})"},
            });
  expectAll("[1,[2],[3,4],[5,[6,7]]]",
            {
                {"@flatten", Type::JSON, "[1,2,3,4,5,[6,7]]"},
                {"@flatten:{\"deep\":true}", Type::JSON, "[1,2,3,4,5,6,7]"},
            });
  expectAll(R"({"id":["123","456"],"val":[2,1]})",
            {{"@group", Type::JSON, R"([{"id":"123","val":2},{"id":"456","val":1}])"}});
}

TEST_CASE("modifiers: @tostr, @fromstr and @dig", "[gjson][modifiers]") {
  expectAll(R"({"s":"{\"id\":1,\"n\":\"x\"}","o":{"a":"<&>"}})",
            {
                {"s.@fromstr", Type::JSON, R"({"id":1,"n":"x"})"},
                {"s|@fromstr|n", Type::String, R"("x")"},
                {"o.@tostr", Type::String, R"("{\"a\":\"\u003c\u0026\u003e\"}")"},
                {"o.a.@tostr", Type::String, R"("\"\u003c\u0026\u003e\"")"},
            });
  expectAll(R"({"a":{"name":1,"b":[{"name":2},{"c":{"name":3}}]},"name":0})",
            {{"@dig:name", Type::JSON, "[0,1,2,3]"}, {"@dig:nothing", Type::JSON, "[]"}});
}

TEST_CASE("[...] and {...} multipaths build new JSON", "[gjson][multipaths]") {
  expectAll(
      kFriends,
      {
          {"{name.first,age,\"the_murphys\":friends.#(last=\"Murphy\")#.first}", Type::JSON,
           R"({"first":"Tom","age":37,"the_murphys":["Dale","Jane"]})"},
          {"[name.first,age,missing]", Type::JSON, R"(["Tom",37])"},
          {"{name.first,nick:missing}", Type::JSON, R"({"first":"Tom"})"},
          {"{friends.#(age>45)#}", Type::JSON,
           R"({"_":[{"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},{"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}]})"},
          {"[age,children.#]|1", Type::Number, "3"},
          {"[missing]", Type::JSON, "[]"},
          {"{\"a<b\":age}", Type::JSON, R"({"a<b":37})"},
          {"{a<b:age}", Type::JSON, R"({"a\u003cb":37})"},
      });
}

TEST_CASE("!literals and JSON lines", "[gjson][literals]") {
  expectAll(kFriends, {
                          {"!true", Type::True, "true"},
                          {"!\"x\"", Type::String, R"("x")"},
                          {"{name.first,\"alive\":!true,\"n\":!1.5}", Type::JSON,
                           R"({"first":"Tom","alive":true,"n":1.5})"},
                          {"!{\"a\":[1,2]}.a.1", Type::Number, "2"},
                          {"!NULL", Type::Number, "NULL"},
                      });
  expectAll("{\"name\":\"a\",\"n\":1}\n{\"name\":\"b\"}\n[3]\n",
            {
                {"..#", Type::Number, "3"},
                {"..1.name", Type::String, R"("b")"},
                {"..#.name", Type::JSON, R"(["a","b"])"},
                {"..2", Type::JSON, "[3]"},
            });
}

TEST_CASE("the KServe condition forms answer as the router expects", "[gjson][kserve]") {
  // Switch and Sequence conditions from KServe's tests, samples and e2e suite (spec §5, §7.2).
  constexpr std::string_view instances =
      R"({"instances":[{"modelId":"1","intval":5,"strval":"my-red-server-1"},{"modelId":"2","intval":12,"strval":"blue"}]})";
  CHECK(exists(instances, "instances.#(modelId==\"1\")"));
  CHECK(exists(instances, "instances.#(modelId==\"2\")"));
  CHECK_FALSE(exists(instances, "instances.#(modelId==\"3\")"));
  CHECK(exists(instances, "instances.#(intval>10)"));
  CHECK_FALSE(exists(instances, "instances.#(intval>100)"));
  CHECK(exists(instances, "instances.#(intval>100)#"));  // [] exists
  CHECK(exists(instances, "instances.#(strval%*red-server*)"));
  CHECK_FALSE(exists(instances, "instances.#(strval%*RED*)"));  // case-sensitive
  CHECK(exists(instances, "instances.#(modelId==1)"));          // compared as text: "1" == "1"
  CHECK_FALSE(exists(instances, "instances.#(intval==\"5x\")"));

  constexpr std::string_view dog = R"({"predictions":[{"label":"dog","score":[0.8,0.2]}]})";
  CHECK(exists(dog, "predictions.#(label==\"dog\")"));
  CHECK_FALSE(exists(R"({"predictions":[{"label":"cat"}]})", "predictions.#(label==\"dog\")"));

  constexpr std::string_view picker = R"({"decision_picker":"ERROR","key1":{"name":"abc"}})";
  CHECK(exists(picker, "[@this].#(decision_picker==ERROR)"));
  CHECK_FALSE(exists(picker, "[@this].#(decision_picker==SUCCESS)"));
  CHECK(exists(R"({"source":"client"})", "[@this].#(source==client)"));
  CHECK_FALSE(exists(R"({"source":"client1"})", "[@this].#(source==client)"));
  CHECK(exists(R"({"predictions":["dog","cat"]})", "[@this].#(predictions.0==\"dog\")"));
  CHECK(exists(R"({"country_code":"IN"})", "[@this].#(country_code==IN)"));
  CHECK(exists(R"({"confidence":0.5})", "[@this].#(confidence>0.45)"));
  CHECK_FALSE(exists(R"({"confidence":0.45})", "[@this].#(confidence>0.45)"));

  // Existence, not truth: false, null, 0, "" and empty containers exist; an empty path does not.
  constexpr std::string_view values = R"({"a":null,"b":false,"c":[],"d":{},"e":0,"f":""})";
  for (std::string_view key : {"a", "b", "c", "d", "e", "f"})
    CHECK(exists(values, key));
  CHECK_FALSE(exists(values, ""));
  // The obsolete `{ .predictions.class == "dog" }` syntax is a multipath: it always exists.
  CHECK(exists(dog, "{ .predictions.class == \"dog\" }"));
  CHECK(exists("", "{ .predictions.class == \"dog\" }"));
}

TEST_CASE("invalid documents get gjson's lenient answers", "[gjson][lenient]") {
  expectAll("[1,2",
            {{"0", Type::Number, "1"}, {"#", Type::Number, "2"}, {"..0", Type::JSON, "[1,2"}});
  expectAll(R"({"a":1,})", {{"a", Type::Number, "1"}, {"@keys", Type::JSON, R"(["a"])"}});
  expectAll("{a:1}", {{"a", Type::Null, ""}, {"@this", Type::JSON, "{a:1}"}});
  expectAll(R"({"a":NaN,"b":-Inf})", {{"a", Type::Number, "NaN"}, {"b", Type::Number, "-Inf"}});
  expectAll(R"({"a":01})", {{"a", Type::Number, "01"}});
  // The first bracket anywhere starts the document, even inside a string.
  expectAll(R"("x[5]")", {{"0", Type::Number, "5"}});
  expectAll(R"({"s":"unterminated)", {{"s", Type::Null, ""}});
  CHECK(std::isnan(gjson::get(R"({"a":NaN})", "a").num));
}

TEST_CASE("numbers compare as Go's strconv.ParseFloat reads them", "[gjson][numbers]") {
  expectAll("[1000,1e400,-1e400,0.1]", {
                                           {"#(==1_000)", Type::Number, "1000"},
                                           {"#(==0x3e8p0)", Type::Number, "1000"},
                                           {"#(==1e3)", Type::Number, "1000"},
                                           {"#(>1e308)", Type::Number, "1e400"},
                                           {"#(==inf)", Type::Number, "1e400"},
                                           {"#(==-Infinity)", Type::Number, "-1e400"},
                                           {"#(==.1)", Type::Number, "0.1"},
                                           {"#(==_1)#", Type::JSON, "[]"},
                                       });
  CHECK(gjson::get(R"({"n":1.5e3})", "n").toString() == "1500");
  CHECK(gjson::get(R"({"n":-12})", "n").toString() == "-12");
  CHECK(gjson::get(R"({"n":1e21})", "n").toString() == "1000000000000000000000");
  CHECK(gjson::get(R"({"s":"1.50"})", "s|@fromstr").raw == "1.50");
  CHECK(gjson::get(R"({"n":1.50})", "n|@fromstr").raw == "1.5");
}

TEST_CASE("paths deeper than kMaxDepth stop with limited set", "[gjson][limits]") {
  std::string path = "a";
  for (int k = 0; k < gjson::kMaxDepth + 10; k++)
    path += ".a";
  std::string doc = "{}";
  gjson::Result r = gjson::get(doc, path);
  CHECK_FALSE(r.exists());
  CHECK_FALSE(r.limited);  // the document ends before the path gets deep
  std::string nested;
  for (int k = 0; k < gjson::kMaxDepth + 10; k++)
    nested += "{\"a\":";
  nested += "1";
  nested.append(gjson::kMaxDepth + 10, '}');
  r = gjson::get(nested, path.substr(0, path.size() - 20));
  CHECK(r.limited);
  CHECK_FALSE(r.exists());
  r = gjson::get(nested, "@pretty");
  CHECK(r.limited);
  // Plain paths of ordinary depth are not affected.
  CHECK(gjson::get(nested, "a.a.a").type == Type::JSON);
}

TEST_CASE("text built beyond kMaxBuiltBytes stops with limited set", "[gjson][limits]") {
  constexpr std::string_view doc = R"({"a":"0123456789"})";
  // Each step doubles the text: 16 steps build 1.3 MB, 40 would build terabytes.
  std::string path = "@this";
  for (int k = 0; k < 16; k++)
    path += "|[@this,@this]";
  gjson::Result r = gjson::get(doc, path);
  CHECK_FALSE(r.limited);
  CHECK(r.raw.size() == (doc.size() + 3) * 65536 - 3);
  for (int k = 16; k < 40; k++)
    path += "|[@this,@this]";
  r = gjson::get(doc, path);
  CHECK(r.limited);
  CHECK_FALSE(r.exists());
  // @pretty with a long indent on a deep document would print hundreds of megabytes.
  std::string deep(400, '[');
  deep += "1";
  deep.append(400, ']');
  r = gjson::get(deep, "@pretty:{\"width\":1,\"indent\":\"" + std::string(2000, ' ') + "\"}");
  CHECK(r.limited);
}

TEST_CASE("Result::toString and typeName follow gjson", "[gjson]") {
  CHECK(gjson::typeName(Type::Null) == "Null");
  CHECK(gjson::typeName(Type::JSON) == "JSON");
  CHECK(gjson::get(kFriends, "name.first").toString() == "Tom");
  CHECK(gjson::get(kFriends, "children").toString() == R"(["Sara","Alex","Jack"])");
  CHECK(gjson::get("[true,false]", "0").toString() == "true");
  CHECK(gjson::get("[true,false]", "1").toString() == "false");
  CHECK(gjson::get("[true,false]", "5").toString().empty());
}
