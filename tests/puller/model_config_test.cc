// models.json parsing, spec comparison and the diff into operations.
#include <catch2/catch.hpp>

#include "puller/model_config.h"
#include "puller/model_dir.h"
#include "tests/support/process.h"

using puller::ModelOp;
using puller::OpType;

namespace {

std::vector<puller::ModelEntry> parse(const std::string& text) {
  std::string error;
  auto models = puller::parseModelConfig(text, error);
  INFO(error);
  REQUIRE(models);
  return *models;
}

std::vector<std::string> describe(const std::vector<ModelOp>& ops) {
  std::vector<std::string> out;
  for (const auto& op : ops)
    out.push_back((op.type == OpType::Add ? "add " : "remove ") + op.name);
  return out;
}

}  // namespace

TEST_CASE("models.json entries parse with upstream's schema", "[puller][config]") {
  auto models = parse(R"([{"modelName":"m1","modelSpec":{"storageUri":"s3://b/m1",
      "framework":"sklearn","memory":"100Mi","extra":1}},{"modelName":"m2","modelSpec":{}}])");
  REQUIRE(models.size() == 2);
  CHECK(models[0].spec.storageUri == "s3://b/m1");
  CHECK(models[0].spec.memory == "100Mi");
  CHECK(models[1].spec.storageUri.empty());
  CHECK(parse("[]").empty());
}

TEST_CASE("Bad models.json is refused with a reason", "[puller][config]") {
  for (const char* text :
       {"{", "null", "{}", R"([{"modelSpec":{}}])", R"([{"modelName":"../x","modelSpec":{}}])",
        R"([{"modelName":".hidden","modelSpec":{}}])",
        R"([{"modelName":"a","modelSpec":{}},{"modelName":"a","modelSpec":{}}])",
        R"([{"modelName":"a","modelSpec":{"memory":"lots"}}])"}) {
    std::string error;
    INFO(text);
    CHECK_FALSE(puller::parseModelConfig(text, error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("A model name too long for its staging folder is refused with the limit",
          "[puller][config]") {
  auto config = [](const std::string& name) {
    return R"([{"modelName":")" + name + R"(","modelSpec":{}}])";
  };
  std::string longest(puller::kMaxModelNameBytes, 'm');
  CHECK(parse(config(longest)).size() == 1);
  std::string error;
  CHECK_FALSE(puller::parseModelConfig(config(longest + "m"), error));
  CHECK_THAT(error, Catch::Contains("is 244 bytes") && Catch::Contains("at most 243"));
  // The limit is the real one: the longest name gets its staging folder, one more byte does not.
  std::string dir = testsupport::makeTempDir("names");
  std::string stagingError;
  CHECK_FALSE(puller::makeStagingFolder(dir, longest, stagingError).empty());
  CHECK(puller::makeStagingFolder(dir, longest + "m", stagingError).empty());
  CHECK_THAT(stagingError, Catch::Contains("File name too long"));
}

TEST_CASE("Memory quantities compare by value", "[puller][config]") {
  CHECK(*puller::parseQuantity("1Gi") == Approx(1073741824.0));
  CHECK(*puller::parseQuantity("1e3") == Approx(1000.0));
  CHECK(*puller::parseQuantity("500m") == Approx(0.5));
  CHECK_FALSE(puller::parseQuantity("1Qi"));
  puller::ModelSpec a{"s3://b/m", "sklearn", "1Gi"};
  puller::ModelSpec b{"s3://b/m", "sklearn", "1024Mi"};
  CHECK(puller::sameSpec(a, b));
  CHECK(a.markerName() == b.markerName());
  b.storageUri = "s3://b/m2";
  CHECK_FALSE(puller::sameSpec(a, b));
  CHECK(a.toJson() == R"({"framework":"sklearn","memory":"1Gi","storageUri":"s3://b/m"})");
}

TEST_CASE("The diff adds, replaces and removes, and remembers the new spec", "[puller][config]") {
  puller::Tracker tracker;
  auto ops = puller::diffModels(tracker, parse(R"([
      {"modelName":"m1","modelSpec":{"storageUri":"s3://b/m1"}},
      {"modelName":"m2","modelSpec":{"storageUri":"s3://b/m2"}}])"));
  CHECK(describe(ops) == std::vector<std::string>{"add m1", "add m2"});
  ops = puller::diffModels(tracker, parse(R"([
      {"modelName":"m2","modelSpec":{"storageUri":"s3://b/m2-v2"}},
      {"modelName":"m3","modelSpec":{"storageUri":"s3://b/m3"}}])"));
  CHECK(describe(ops) == std::vector<std::string>{"remove m2", "add m2", "add m3", "remove m1"});
  CHECK(ops[1].spec.storageUri == "s3://b/m2-v2");
  // Upstream kept the old spec here and reloaded m2 on every later sync.
  ops = puller::diffModels(tracker, parse(R"([
      {"modelName":"m2","modelSpec":{"storageUri":"s3://b/m2-v2"}},
      {"modelName":"m3","modelSpec":{"storageUri":"s3://b/m3"}}])"));
  CHECK(ops.empty());
}
