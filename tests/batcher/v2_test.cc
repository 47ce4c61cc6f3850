// Open Inference Protocol v2: which requests can be merged, the merged body, and splitting the
// model's outputs back by the callers' row counts.
#include <catch2/catch.hpp>

#include "batcher/v2.h"

using namespace batcher;

namespace {

v2::Request mustParse(std::string_view body) {
  auto request = v2::parseRequest(body);
  INFO(body);
  REQUIRE(request.has_value());
  return *request;
}

}  // namespace

TEST_CASE("v2 requests are read with their rows and exact data", "[batcher]") {
  auto request = mustParse(
      R"({"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1.10,2],[3,4e400]]},)"
      R"({"name":"y","shape":[2],"datatype":"BYTES","data":["p","q"]}]})");
  CHECK(request.id == "\"a\"");
  CHECK(request.rows == 2);
  REQUIRE(request.inputs.size() == 2);
  CHECK(request.inputs[0].data == "1.10,2,3,4e400");
  CHECK(request.inputs[1].data == "\"p\",\"q\"");
}

TEST_CASE("v2 requests that cannot be merged are refused", "[batcher]") {
  for (std::string_view body : {
           "not json",
           "[]",
           R"({"inputs":[]})",
           R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]})",
           R"({"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1]}]})",
           R"({"inputs":[{"name":"x","shape":[0],"datatype":"FP32","data":[]}]})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":1}]})",
           R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]})",
           R"({"inputs":[{"name":"x","shape":[1.0],"datatype":"FP32","data":[1]}]})",
           R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"extra":1}]})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"extra":1})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},)"
           R"({"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}]})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],)"
           R"("parameters":{"binary_data_size":4}}]})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],)"
           R"("parameters":{"binary_data_output":true}})",
           R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} x)",
       }) {
    INFO(body);
    CHECK_FALSE(v2::parseRequest(body).has_value());
  }
}

TEST_CASE("v2 signatures group requests that agree in names, types and trailing shape",
          "[batcher]") {
  auto a = mustParse(R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  auto b = mustParse(
      R"({"id":"b","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]})");
  auto otherShape =
      mustParse(R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})");
  auto otherType =
      mustParse(R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"INT32","data":[1,2,3]}]})");
  auto otherName =
      mustParse(R"({"inputs":[{"name":"z","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  auto otherParameters = mustParse(
      R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"parameters":{"p":1}})");
  CHECK(a.signature == b.signature);
  CHECK(a.signature != otherShape.signature);
  CHECK(a.signature != otherType.signature);
  CHECK(a.signature != otherName.signature);
  CHECK(a.signature != otherParameters.signature);
}

TEST_CASE("v2 inputs are concatenated along the first dimension", "[batcher]") {
  auto a = mustParse(
      R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"p":"q"},"data":[1.10,2]},)"
      R"({"name":"s","shape":[1],"datatype":"BYTES","data":["one"]}],"outputs":[{"name":"o"}]})");
  auto b = mustParse(
      R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"p":"q"},"data":[[3,4],[5,6]]},)"
      R"({"name":"s","shape":[2],"datatype":"BYTES","data":["two","three"]}],"outputs":[{"name":"o"}]})");
  CHECK(v2::mergeRequests({&a, &b}) ==
        R"({"inputs":[{"name":"x","shape":[3,2],"datatype":"FP32","parameters":{"p":"q"},)"
        R"("data":[1.10,2,3,4,5,6]},{"name":"s","shape":[3],"datatype":"BYTES","data":["one",)"
        R"("two","three"]}],"outputs":[{"name":"o"}]})");
}

TEST_CASE("v2 outputs are split back by the callers' rows", "[batcher]") {
  auto a = mustParse(
      R"({"id":"a","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})");
  auto b =
      mustParse(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[3,4,5,6]}]})");
  auto split = v2::splitResponse(
      R"({"model_name":"m","id":"gen","outputs":[{"name":"y","shape":[3,2],"datatype":"FP64",)"
      R"("data":[[0.10,0.2],[0.3,0.4],[0.5,12345678901234567890]]},{"name":"c","datatype":"INT64",)"
      R"("shape":[3],"data":[7,8,9]}]})",
      {&a, &b});
  REQUIRE(split.error.empty());
  REQUIRE(split.bodies.size() == 2);
  CHECK(split.bodies[0] ==
        R"({"model_name":"m","id":"a","outputs":[{"name":"y","shape":[1,2],"datatype":"FP64",)"
        R"("data":[0.10,0.2]},{"name":"c","datatype":"INT64","shape":[1],"data":[7]}]})");
  CHECK(split.bodies[1] ==
        R"({"model_name":"m","id":"gen","outputs":[{"name":"y","shape":[2,2],"datatype":"FP64",)"
        R"("data":[0.3,0.4,0.5,12345678901234567890]},{"name":"c","datatype":"INT64","shape":[2],)"
        R"("data":[8,9]}]})");
}

TEST_CASE("a caller's id is added when the model's answer has none", "[batcher]") {
  auto a = mustParse(
      R"({"id":"mine","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})");
  auto split = v2::splitResponse(
      R"({"model_name":"m","outputs":[{"name":"y","shape":[1],"datatype":"FP32","data":[2]}]})",
      {&a});
  REQUIRE(split.error.empty());
  CHECK(
      split.bodies[0] ==
      R"({"model_name":"m","id":"mine","outputs":[{"name":"y","shape":[1],"datatype":"FP32","data":[2]}]})");
}

TEST_CASE("v2 answers that cannot be split are reported", "[batcher]") {
  auto a = mustParse(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})");
  auto b = mustParse(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[2]}]})");
  for (std::string_view body : {
           "oops",
           R"({"model_name":"m"})",
           R"({"outputs":{}})",
           R"({"outputs":[{"name":"y","shape":[3],"datatype":"FP32","data":[1,2,3]}]})",
           R"({"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[1]}]})",
           R"({"outputs":[{"name":"y","datatype":"FP32","data":[1,2]}]})",
           R"({"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}],"outputs":[]})",
       }) {
    INFO(body);
    auto split = v2::splitResponse(body, {&a, &b});
    CHECK_FALSE(split.error.empty());
    CHECK(split.bodies.empty());
  }
}

TEST_CASE("v2 error bodies use the protocol's error object", "[batcher]") {
  CHECK(v2::errorBody("boom \"x\"") == R"({"error":"boom \"x\""})");
}

TEST_CASE("v2 lone surrogate escapes are merged and split with their exact text", "[batcher]") {
  auto a =
      mustParse(R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["\ud800"]}]})");
  auto b =
      mustParse(R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["x\udc00"]}]})");
  CHECK(v2::mergeRequests({&a, &b}) ==
        R"({"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["\ud800","x\udc00"]}]})");
  auto split = v2::splitResponse(
      R"({"model\u005fname":"m","\ud800":"<\udfff>","outputs":[{"name":"o","\udc00":1,)"
      R"("shape":[2],"datatype":"BYTES","data":["\ud800","x\udc00"]}]})",
      {&a, &b});
  REQUIRE(split.error.empty());
  CHECK(split.bodies[0] ==
        R"({"model\u005fname":"m","\ud800":"<\udfff>","outputs":[{"name":"o","\udc00":1,)"
        R"("shape":[1],"datatype":"BYTES","data":["\ud800"]}]})");
  CHECK(split.bodies[1] ==
        R"({"model\u005fname":"m","\ud800":"<\udfff>","outputs":[{"name":"o","\udc00":1,)"
        R"("shape":[1],"datatype":"BYTES","data":["x\udc00"]}]})");
}

TEST_CASE("an empty v2 answer is reported as empty", "[batcher]") {
  auto a = mustParse(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})");
  for (std::string_view body : {"", " \r\n"}) {
    auto split = v2::splitResponse(body, {&a});
    CHECK(split.error == "the model's answer is empty");
    CHECK(split.bodies.empty());
  }
}
