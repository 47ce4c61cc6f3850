#include "router/json_text.h"

#include <catch2/catch.hpp>

using namespace router;

TEST_CASE("mapPredictionsToInstances keeps the predictions' text", "[router][json]") {
  CHECK(mapPredictionsToInstances(R"({"predictions":["test","test2"]})") ==
        R"({"instances":["test","test2"]})");
  // Other fields are dropped; numbers keep their text; keys match without regard to case.
  CHECK(mapPredictionsToInstances(R"({"model":"m","Predictions":[1.0, 12345678901234567890]})") ==
        R"({"instances":[1.0, 12345678901234567890]})");
  // Nothing to map: the input as it was.
  for (const char* unchanged :
       {R"({"predictions":[]})", R"({"predictions":null})", R"({"instances":[1]})",
        R"({"predictions":"x"})", R"({"predictions":[1],"instances":"bad"})", R"([1,2])",
        "not json", ""}) {
    INFO(unchanged);
    CHECK(mapPredictionsToInstances(unchanged) == unchanged);
  }
  // The last of repeated keys counts, as in Go.
  CHECK(mapPredictionsToInstances(R"({"predictions":[1],"predictions":[2]})") ==
        R"({"instances":[2]})");
}

TEST_CASE("an Ensemble step's answer must be a JSON object or null, in Go's words",
          "[router][json]") {
  CHECK_FALSE(ensembleResultProblem(R"( {"a":1} )"));
  CHECK_FALSE(ensembleResultProblem("null"));
  CHECK(*ensembleResultProblem("") == "unexpected end of JSON input");
  CHECK(*ensembleResultProblem("[1]") ==
        "json: cannot unmarshal array into Go value of type map[string]interface {}");
  CHECK(*ensembleResultProblem("\"s\"") ==
        "json: cannot unmarshal string into Go value of type map[string]interface {}");
  CHECK(*ensembleResultProblem("12") ==
        "json: cannot unmarshal number into Go value of type map[string]interface {}");
  CHECK(*ensembleResultProblem("true") ==
        "json: cannot unmarshal bool into Go value of type map[string]interface {}");
  CHECK(*ensembleResultProblem("<html>") == "invalid character '<' looking for beginning of value");
  CHECK_THAT(*ensembleResultProblem(R"({"a":)"), Catch::Contains("not a complete JSON value"));
}

TEST_CASE("the Ensemble's answer sorts keys bytewise and keeps each value's text",
          "[router][json]") {
  CHECK(mergeEnsemble({{"b", " {\"x\":1.0}\n"}, {"a", "null"}, {"B", "{}"}, {"10", "{}"}}) ==
        R"({"10":{},"B":{},"a":null,"b":{"x":1.0}})");
  CHECK(mergeEnsemble({}) == "{}");
  CHECK(mergeEnsemble({{"<tag>", "{}"}}) == R"({"\u003ctag\u003e":{}})");
}

TEST_CASE("the error body is upstream's, with Go's escaping", "[router][json]") {
  CHECK(errorBody("a <b> & \"c\"") ==
        R"({"error":"Failed to process request","cause":"a \u003cb\u003e \u0026 \"c\""})");
}

TEST_CASE("v2ResponseAsRequest sends an OIP answer's outputs on as inputs", "[json_text]") {
  using router::v2ResponseAsRequest;
  CHECK(
      v2ResponseAsRequest(
          R"( {"model_name":"a","id":"r1","outputs":[{"name":"o","shape":[1],"datatype":"FP32","data":[1.0]}]} )") ==
      R"({"id":"r1","inputs":[{"name":"o","shape":[1],"datatype":"FP32","data":[1.0]}]})");
  CHECK(v2ResponseAsRequest(R"({"outputs":[]})") == R"({"inputs":[]})");
  CHECK_FALSE(v2ResponseAsRequest(R"({"predictions":[1]})"));
  CHECK_FALSE(v2ResponseAsRequest(R"({"outputs":{}})"));
  CHECK_FALSE(v2ResponseAsRequest(R"([{"outputs":[]}])"));
  CHECK_FALSE(v2ResponseAsRequest("not json"));
}

TEST_CASE("sequenceOutputs keeps step order, JSON text, and quotes the rest", "[json_text]") {
  CHECK(router::sequenceOutputs({{"b", " {\"x\":1.0} "}, {"a", "text \"q\""}, {"0", "[]"}}) ==
        R"({"b":{"x":1.0},"a":"text \"q\"","0":[]})");
  CHECK(router::sequenceOutputs({}) == "{}");
}
