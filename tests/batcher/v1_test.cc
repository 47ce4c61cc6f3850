// Protocol v1: parsing callers' bodies as upstream (Go) does, building the merged body, reading
// the model's predictions and wording every caller reply.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "batcher/v1.h"

using namespace batcher;

TEST_CASE("v1 instances are kept as their exact text", "[batcher]") {
  auto parsed = v1::parseRequest(
      R"({"instances": [ [1, 2.50], 12345678901234567890 , {"b":1,"a":2} ], "parameters":{}})");
  REQUIRE(parsed.error.empty());
  CHECK(parsed.request.count == 3);
  CHECK(parsed.request.instances == R"([1, 2.50], 12345678901234567890 , {"b":1,"a":2})");
}

TEST_CASE("v1 field names match case-insensitively and the last one wins", "[batcher]") {
  auto upper = v1::parseRequest(R"({"Instances":[1]})");
  REQUIRE(upper.error.empty());
  CHECK(upper.request.instances == "1");

  auto last = v1::parseRequest(R"({"instances":[1],"INSTANCES":[2,3]})");
  REQUIRE(last.error.empty());
  CHECK(last.request.count == 2);
  CHECK(last.request.instances == "2,3");

  auto escaped = v1::parseRequest(R"({"\u0069nstances":[7]})");
  REQUIRE(escaped.error.empty());
  CHECK(escaped.request.instances == "7");
}

TEST_CASE("v1 bodies Go cannot unmarshal get upstream's 400 text", "[batcher]") {
  for (std::string_view body :
       {"", "not json", "[1,2]", "\"instances\"", "42", "true", "{\"instances\":5}",
        "{\"instances\":{}}", "{\"instances\":\"a\"}", "{\"instances\":[1,]}",
        "{\"instances\":[1]} trailing", "{\"instances\":[1],\"x\":tru}",
        "{\"instances\":[1],\"instances\":5}", "{\"instances\":5,\"instances\":[1]}", "nul",
        "\xef\xbb\xbf{\"instances\":[1]}", R"({"instances":[1,"k":[true]},[]]})",
        R"({"x":"y":[1,2]},"instances":[1]})"}) {
    INFO(body);
    CHECK(v1::parseRequest(body).error == v1::kCantUnmarshal);
  }
}

TEST_CASE("v1 bodies without instances get upstream's 400 text", "[batcher]") {
  for (std::string_view body :
       {"{}", "{\"instances\":[]}", "{\"instances\":null}", "null", " null ", "{\"inputs\":[1]}",
        "{\"instances\":[1],\"instances\":null}"}) {
    INFO(body);
    CHECK(v1::parseRequest(body).error == v1::kNoInstances);
  }
}

TEST_CASE("the merged v1 body splices every caller's instances in order", "[batcher]") {
  CHECK(v1::buildBatchBody({"1", "[2, 3], 4", "{\"k\":1.10}"}) ==
        R"({"instances":[1,[2, 3], 4,{"k":1.10}]})");
}

TEST_CASE("v1 predictions are read as exact text and sliced per caller", "[batcher]") {
  auto parsed = v1::parseResponse(R"({"model":"m","predictions":[1.10, [2,3] ,"x",1e400]})");
  REQUIRE(parsed.error.empty());
  REQUIRE(parsed.predictions.size() == 4);
  CHECK(v1::successBody("id-1", parsed.predictions, 1, 2) ==
        R"({"message":"","batchId":"id-1","predictions":[[2,3],"x"]})");
  CHECK(v1::successBody("id-1", parsed.predictions, 3, 1) ==
        R"({"message":"","batchId":"id-1","predictions":[1e400]})");
}

TEST_CASE("v1 model answers Go cannot decode give Go's error text", "[batcher]") {
  CHECK(v1::parseResponse("x-not-json").error ==
        "invalid character 'x' looking for beginning of value");
  CHECK(v1::parseResponse("").error == "unexpected end of JSON input");
  CHECK(v1::parseResponse(R"({"predictions":[1})").error ==
        "invalid character '}' after array element");
  CHECK(v1::parseResponse(R"({"predictions":"a"})").error ==
        "json: cannot unmarshal string into Go struct field PredictionResponse.predictions of "
        "type []interface {}");
  CHECK(v1::parseResponse(R"({"predictions":{}})").error ==
        "json: cannot unmarshal object into Go struct field PredictionResponse.predictions of "
        "type []interface {}");
  CHECK(v1::parseResponse("[1,2]").error ==
        "json: cannot unmarshal array into Go value of type batcher.PredictionResponse");
  CHECK(v1::parseResponse("3").error ==
        "json: cannot unmarshal number into Go value of type batcher.PredictionResponse");
}

TEST_CASE("v1 model answers without predictions decode to none", "[batcher]") {
  for (std::string_view body : {"{}", "null", R"({"predictions":null})", R"({"other":[1]})"}) {
    INFO(body);
    auto parsed = v1::parseResponse(body);
    CHECK(parsed.error.empty());
    CHECK(parsed.predictions.empty());
  }
  auto folded = v1::parseResponse(R"({"Predictions":[1]})");
  CHECK(folded.predictions.size() == 1);
}

TEST_CASE("v1 error replies carry the message, the batch id and null predictions", "[batcher]") {
  CHECK(v1::errorBody(v1::kSizeMismatch, "abc") ==
        R"({"message":"size of prediction is not equal to the size of instances",)"
        R"("batchId":"abc","predictions":null})");
  CHECK(v1::errorBody("{\"error\":\"<boom>\"}\n", "") ==
        R"({"message":"{\"error\":\"\u003cboom\u003e\"}\n","batchId":"","predictions":null})");
}

TEST_CASE("batch ids are distinct random UUIDv4s", "[batcher]") {
  std::mt19937_64 random(42);
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = v1::newBatchId(random);
    CHECK(std::regex_match(id, uuid));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("v1 lone surrogate escapes are accepted as Go accepts them", "[batcher]") {
  auto instance = v1::parseRequest(R"({"instances":["\ud800", "a\udfffb"]})");
  REQUIRE(instance.error.empty());
  CHECK(instance.request.instances == R"("\ud800", "a\udfffb")");

  auto ignored = v1::parseRequest(R"({"instances":[1],"note":"\udc00","\ud800":{"k":"\udc00"}})");
  REQUIRE(ignored.error.empty());
  CHECK(ignored.request.instances == "1");

  // Go decodes the key before matching: a lone surrogate becomes U+FFFD, which matches nothing,
  // while an escaped U+017F folds to 's'.
  CHECK(v1::parseRequest(R"({"instance\ud873":[1]})").error == v1::kNoInstances);
  auto folded = v1::parseRequest(R"({"in\u017ftances":[2]})");
  REQUIRE(folded.error.empty());
  CHECK(folded.request.instances == "2");

  auto response = v1::parseResponse(R"({"predictions":["\ud800",{"\udc00":1}],"x":"\udfff"})");
  REQUIRE(response.error.empty());
  CHECK(response.predictions == std::vector<std::string_view>{R"("\ud800")", R"({"\udc00":1})"});
}
