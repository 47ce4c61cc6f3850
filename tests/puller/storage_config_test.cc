// STORAGE_CONFIG / STORAGE_OVERRIDE_CONFIG (the storageSpec `storage-config` secret, as
// OpenDataHub generates it) and the `<scheme-placeholder>://` URI, through storage-initializer
// against an S3 that verifies signatures with botocore (so the keys used are the ones checked).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "puller/storage/s3.h"
#include "puller/storage/storage_config.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using storagetest::BotocoreS3;
using storagetest::ScopedEnv;
using Vars = std::map<std::string, std::optional<std::string>>;
using namespace std::chrono_literals;

using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

constexpr const char* kAccessKey = "AKIDODH";
constexpr const char* kSecret = "odh-secret-Hn4";

// No S3 setting at all in the environment: everything must come from STORAGE_CONFIG.
Vars cleanEnv() {
  Vars vars = storagetest::awsChainOff();
  for (const char* name : {"AWS_ENDPOINT_URL", "S3_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION",
                           "S3_USER_VIRTUAL_BUCKET", "S3_VERIFY_SSL", "AWS_CA_BUNDLE",
                           "STORAGE_CONFIG", "STORAGE_OVERRIDE_CONFIG"}) {
    vars[name] = std::nullopt;
  }
  return vars;
}

std::string odhSecret(const BotocoreS3& s3, const std::string& secret) {
  return nlohmann::json{{"type", "s3"},
                        {"access_key_id", kAccessKey},
                        {"secret_access_key", secret},
                        {"endpoint_url", s3.endpoint()},
                        {"region", "eu-west-3"},
                        {"bucket", "models"}}
      .dump();
}

void putModel(const BotocoreS3& s3) {
  fs::create_directories(s3.root() + "/models/m/sub");
  testsupport::writeFile(s3.root() + "/models/m/sub/w.bin", "weights");
}

}  // namespace

TEST_CASE("STORAGE_CONFIG: the placeholder URI downloads from the bucket with the secret's keys",
          "[storage][storage-config][initializer]") {
  BotocoreS3 s3(kAccessKey, kSecret, "");
  putModel(s3);
  Vars vars = cleanEnv();
  vars["STORAGE_CONFIG"] = odhSecret(s3, kSecret);
  ScopedEnv env(vars);
  std::string dir = testsupport::makeTempDir("storage-config");
  Run result =
      runInitializer({"<scheme-placeholder>://m", dir + "/a", "s3://models/m", dir + "/b"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/a/sub/w.bin") == "weights");
  CHECK(testsupport::readFile(dir + "/b/sub/w.bin") == "weights");
  // Signed for the secret's region (botocore recomputes with the scope we sent).
  CHECK(s3.requests().size() == 4);
  CHECK(result.output.find(kSecret) == std::string::npos);
}

TEST_CASE("STORAGE_CONFIG: the override's keys win, and the secret wins over the environment",
          "[storage][storage-config][initializer]") {
  BotocoreS3 s3(kAccessKey, kSecret, "");
  putModel(s3);
  Vars vars = cleanEnv();
  vars["STORAGE_CONFIG"] = odhSecret(s3, "a-stale-secret");
  vars["STORAGE_OVERRIDE_CONFIG"] = nlohmann::json{{"secret_access_key", kSecret}}.dump();
  // What the environment says loses to the secret.
  vars["AWS_ENDPOINT_URL"] = "http://127.0.0.1:" + std::to_string(testsupport::freePort());
  vars["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  vars["AWS_SECRET_ACCESS_KEY"] = "env-secret";
  ScopedEnv env(vars);
  std::string dir = testsupport::makeTempDir("storage-config");
  Run result = runInitializer({"<scheme-placeholder>://m", dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out/sub/w.bin") == "weights");
}

TEST_CASE("STORAGE_CONFIG: s3 keys map onto the S3 settings", "[storage][storage-config]") {
  Vars vars = cleanEnv();
  vars["S3_VERIFY_SSL"] = "1";
  vars["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:1";  // endpoint_url wins over it
  vars["STORAGE_CONFIG"] = nlohmann::json{
      {"type", "s3"},
      {"endpoint_url", "https://minio.example:9000"},
      {"region", "eu-west-3"},
      {"verify_ssl", "0"},
      {"ca_bundle", "/etc/odh/ca.crt"},
      {"anonymous", true}}.dump();
  ScopedEnv env(vars);
  storage::S3Config config = storage::s3ConfigFromEnv();
  CHECK(config.scheme == "https");
  CHECK(config.host == "minio.example:9000");
  CHECK(config.pathStyle);
  CHECK(config.region == "eu-west-3");
  CHECK_FALSE(config.verifyTls);
  CHECK(config.caFile == "/etc/odh/ca.crt");
  CHECK(config.anonymous);
}

TEST_CASE("STORAGE_CONFIG: bad input fails with a clear message and no secret",
          "[storage][storage-config][initializer]") {
  std::string dir = testsupport::makeTempDir("storage-config");
  SECTION("not JSON") {
    Vars vars = cleanEnv();
    vars["STORAGE_CONFIG"] = "{\"type\": \"s3\", \"secret_access_key\": \"leak-me-7\"";
    ScopedEnv env(vars);
    Run result = runInitializer({"<scheme-placeholder>://m", dir + "/out"});
    CHECK(result.status == 1);
    CHECK_THAT(result.output,
               Catch::Contains("storage-initializer: failed to download <scheme-placeholder>://m: "
                               "<scheme-placeholder>://m: STORAGE_CONFIG is not a JSON object\n"));
    CHECK(result.output.find("leak-me-7") == std::string::npos);
  }
  SECTION("placeholder without a bucket") {
    Vars vars = cleanEnv();
    vars["STORAGE_CONFIG"] = R"({"type": "s3"})";
    ScopedEnv env(vars);
    Run result = runInitializer({"<scheme-placeholder>://m", dir + "/out"});
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("<scheme-placeholder>://m: a <scheme-placeholder> "
                                              "URI needs a bucket in STORAGE_CONFIG\n"));
  }
  SECTION("placeholder without STORAGE_CONFIG") {
    ScopedEnv env(cleanEnv());
    Run result = runInitializer({"<scheme-placeholder>://m", dir + "/out"});
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("<scheme-placeholder>://m: a <scheme-placeholder> "
                                              "URI needs STORAGE_CONFIG\n"));
  }
}

TEST_CASE("STORAGE_CONFIG: an hdfs or webhdfs type rewrites the placeholder to hdfs://",
          "[storage][storage-config]") {
  for (const char* type : {"hdfs", "webhdfs"}) {
    Vars vars = cleanEnv();
    vars["STORAGE_CONFIG"] = nlohmann::json{{"type", type}, {"HDFS_NAMENODE", "nn:8020"}}.dump();
    ScopedEnv env(vars);
    storage::StorageSpec spec;
    REQUIRE(storage::storageSpecFromEnv(spec).ok);
    std::string uri;
    REQUIRE(storage::rewritePlaceholderUri("<scheme-placeholder>://data/m", spec, uri).ok);
    CHECK(uri == "hdfs://data/m");
  }
}
