// SigV4 checked against a real implementation: every request our S3 client sends (listing,
// objects with odd keys, query strings, a session token) must carry the Authorization header
// that botocore computes for it (tests/support/storage_botocore_s3.py).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "puller/storage/http_client.h"
#include "puller/storage/s3.h"
#include "puller/storage/util.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using storagetest::BotocoreS3;
using storagetest::FakeAwsCredentials;
using storagetest::ScopedEnv;
using Vars = std::map<std::string, std::optional<std::string>>;
using namespace std::chrono_literals;

using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

constexpr const char* kAccessKey = "AKIDBOTOCORE";
constexpr const char* kSecret = "botocore/Secret+Key=Zq9";
constexpr const char* kSessionToken = "FwoGZXIvYXdzE+odd/token==";

// Keys with every class of character SigV4 encodes differently from a URL library.
const std::vector<std::string> kOddKeys{"plain.bin", "a b+c=d&e.bin", "ünï çødé/~tilde*star.bin",
                                        "percent%2F.bin", "(paren)'quote!$,;:@.bin"};

Vars s3Env(const BotocoreS3& s3) {
  Vars vars = storagetest::awsChainOff();
  vars["AWS_ENDPOINT_URL"] = s3.endpoint();
  vars["AWS_REGION"] = "eu-central-1";
  vars["S3_ENDPOINT"] = std::nullopt;
  vars["S3_USER_VIRTUAL_BUCKET"] = std::nullopt;
  return vars;
}

void putObjects(const BotocoreS3& s3) {
  for (const auto& key : kOddKeys) {
    fs::path path = fs::path(s3.root()) / "models" / "m" / key;
    fs::create_directories(path.parent_path());
    testsupport::writeFile(path.string(), "content of " + key);
  }
}

void checkDownloaded(const std::string& dir) {
  for (const auto& key : kOddKeys) {
    INFO(key);
    CHECK(testsupport::readFile(dir + "/" + key) == "content of " + key);
  }
}

}  // namespace

TEST_CASE("SigV4: botocore computes the signature we send, with a session token and odd keys",
          "[storage][sigv4][initializer]") {
  BotocoreS3 s3(kAccessKey, kSecret, kSessionToken);
  putObjects(s3);
  Vars vars = s3Env(s3);
  vars["AWS_ACCESS_KEY_ID"] = kAccessKey;
  vars["AWS_SECRET_ACCESS_KEY"] = kSecret;
  vars["AWS_SESSION_TOKEN"] = kSessionToken;
  ScopedEnv env(vars);
  std::string dir = testsupport::makeTempDir("sigv4");
  Run result = runInitializer({"s3://models/m", dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  checkDownloaded(dir + "/out");
  // The listing and one GET per object, each verified, each with the token signed.
  auto requests = s3.requests();
  CHECK(requests.size() == 1 + kOddKeys.size());
  for (const auto& line : requests) {
    auto signedHeaders = nlohmann::json::parse(line)["signed"];
    CHECK(std::find(signedHeaders.begin(), signedHeaders.end(), "x-amz-security-token") !=
          signedHeaders.end());
  }
  CHECK(result.output.find(kSecret) == std::string::npos);
  CHECK(result.output.find(kSessionToken) == std::string::npos);
}

TEST_CASE("SigV4: botocore agrees on query strings that need encoding", "[storage][sigv4]") {
  BotocoreS3 s3(kAccessKey, kSecret, "");
  putObjects(s3);
  ScopedEnv env(s3Env(s3));
  storage::S3Config config = storage::s3ConfigFromEnv();
  config.credentials = {kAccessKey, kSecret, ""};
  storage::HttpRequest request = storage::s3Request(
      config, "models", "GET", "",
      {{"list-type", "2"}, {"prefix", "m/a b+c"}, {"continuation-token", "1/x+y==~*"}},
      storage::sha256Hex(""));
  storage::HttpResponse response = storage::httpFetch(request);
  INFO(response.body);
  CHECK(response.status == 200);
}

TEST_CASE(
    "SigV4: a wrong secret is refused by the botocore check, without the secret in the "
    "message",
    "[storage][sigv4][initializer]") {
  BotocoreS3 s3(kAccessKey, kSecret, "");
  putObjects(s3);
  Vars vars = s3Env(s3);
  vars["AWS_ACCESS_KEY_ID"] = kAccessKey;
  vars["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-Qw7";
  ScopedEnv env(vars);
  std::string dir = testsupport::makeTempDir("sigv4");
  Run result = runInitializer({"s3://models/m", dir + "/out"});
  CHECK(result.status == 1);
  CHECK_THAT(result.output,
             Catch::Contains("unable to list objects: SignatureDoesNotMatch: The request "
                             "signature we calculated does not match the signature you "
                             "provided. (HTTP 403)"));
  CHECK(result.output.find("not-the-secret-Qw7") == std::string::npos);
}

TEST_CASE("SigV4: credentials from web identity sign with the session token STS issued",
          "[storage][sigv4][aws][initializer]") {
  FakeAwsCredentials sts(kAccessKey, kSecret, 3600);
  BotocoreS3 s3(kAccessKey, kSecret, "sts-token-1");
  putObjects(s3);
  Vars vars = s3Env(s3);
  for (const auto& [name, value] : sts.env("web identity"))
    vars[name] = value;
  ScopedEnv env(vars);
  std::string dir = testsupport::makeTempDir("sigv4");
  Run result = runInitializer({"s3://models/m", dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  checkDownloaded(dir + "/out");
  CHECK(s3.requests().size() == 1 + kOddKeys.size());
  CHECK(result.output.find(kSecret) == std::string::npos);
  CHECK(result.output.find("sts-token-1") == std::string::npos);
}

// ---- robustness: retries and region redirects (the botocore S3 answers what S3 answers) ----

namespace {

Vars robustEnv(const BotocoreS3& s3) {
  Vars vars = s3Env(s3);
  vars["AWS_REGION"] = "us-east-1";
  vars["AWS_ACCESS_KEY_ID"] = kAccessKey;
  vars["AWS_SECRET_ACCESS_KEY"] = kSecret;
  vars["S3_MAX_ATTEMPTS"] = std::nullopt;
  return vars;
}

void putOne(const BotocoreS3& s3) {
  fs::create_directories(s3.root() + "/models/m");
  testsupport::writeFile(s3.root() + "/models/m/w.bin", "weights");
}

}  // namespace

TEST_CASE("S3: 503 SlowDown is retried with backoff, up to S3_MAX_ATTEMPTS",
          "[storage][s3][retry][initializer]") {
  SECTION("twice SlowDown, then the object (3 attempts by default)") {
    BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {"--slow-down", "2"});
    putOne(s3);
    ScopedEnv env(robustEnv(s3));
    std::string dir = testsupport::makeTempDir("retry");
    Run result = runInitializer({"s3://models/m", dir + "/out"});
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(testsupport::readFile(dir + "/out/w.bin") == "weights");
    CHECK(s3.requests().size() == 4);  // the listing, then three GETs of the object
    CHECK_THAT(result.output,
               Catch::Contains("failed to download m/w.bin: SlowDown: Please reduce your request "
                               "rate. (HTTP 503) (bucket models, region us-east-1); retrying (3 "
                               "of 3)"));
    CHECK(result.output.find(kSecret) == std::string::npos);
  }
  SECTION("more SlowDowns than attempts: the error names the bucket and region") {
    BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {"--slow-down", "5"});
    putOne(s3);
    Vars vars = robustEnv(s3);
    vars["S3_MAX_ATTEMPTS"] = "2";
    ScopedEnv env(vars);
    std::string dir = testsupport::makeTempDir("retry");
    Run result = runInitializer({"s3://models/m", dir + "/out"});
    CHECK(result.status == 1);
    CHECK_THAT(result.output,
               Catch::Contains("s3://models/m: failed to download m/w.bin: SlowDown: Please "
                               "reduce your request rate. (HTTP 503) (bucket models, region "
                               "us-east-1)\n"));
    CHECK(s3.requests().size() == 3);
  }
}

TEST_CASE("S3: a large object comes as signed ranged GETs, each part retried on its own",
          "[storage][s3][ranged][retry][initializer]") {
  // 70 MiB and 5 bytes: parts of 32 MiB, 32 MiB, and 6 MiB and 5 bytes.
  const uint64_t size = (uint64_t{70} << 20) + 5;
  const std::set<std::string> parts{"bytes=0-33554431", "bytes=33554432-67108863",
                                    "bytes=67108864-73400324"};
  std::string dir = testsupport::makeTempDir("ranged");
  storagetest::writePatternFile(dir + "/big.bin", size);
  auto putBig = [&](const BotocoreS3& s3) {
    fs::create_directories(s3.root() + "/models/big");
    fs::copy_file(dir + "/big.bin", s3.root() + "/models/big/w.bin");
  };
  SECTION("two parts answered SlowDown first: only those are sent again") {
    BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {"--slow-down", "2"});
    putBig(s3);
    ScopedEnv env(robustEnv(s3));
    Run result = runInitializer({"s3://models/big", dir + "/out"});
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(storagetest::sameContent(dir + "/big.bin", dir + "/out/w.bin"));
    std::multiset<std::string> sent;
    for (const auto& request : s3.requests()) {
      nlohmann::json line = nlohmann::json::parse(request);
      if (line["range"].is_null()) continue;  // the listing
      sent.insert(line["range"].get<std::string>());
      // The Range header is signed with the rest (botocore checked the signature).
      CHECK(std::find(line["signed"].begin(), line["signed"].end(), "range") !=
            line["signed"].end());
    }
    CHECK(sent.size() == 5);  // three parts, two of them twice
    CHECK(std::set<std::string>(sent.begin(), sent.end()) == parts);
    CHECK_THAT(result.output, Catch::Contains("SlowDown: Please reduce your request rate. (HTTP "
                                              "503) (bucket models, region us-east-1); retrying "
                                              "(2 of 3)"));
  }
  SECTION("a server that ignores Range, or answers another range: a clear error, no retry") {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"--ignore-range", "the server answered a ranged GET with the whole object (HTTP 200)"},
        {"--shift-range", "the server answered another range than bytes "}};
    for (const auto& [flag, error] : cases) {
      INFO(flag);
      BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {flag});
      putBig(s3);
      ScopedEnv env(robustEnv(s3));
      Run result = runInitializer({"s3://models/big", dir + "/" + flag});
      INFO(result.output);
      CHECK(result.status == 1);
      CHECK_THAT(result.output, Catch::Contains(error));
      CHECK(result.output.find("retrying") == std::string::npos);
      CHECK(s3.requests().size() <= 1 + parts.size());
    }
  }
  SECTION("S3_MAX_FILE_CONCURRENCY bounds the GETs in flight, files and parts alike") {
    const std::string peak = dir + "/peak";
    BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {"--peak-file", peak});
    putBig(s3);
    testsupport::writeFile(s3.root() + "/models/big/small.bin", "small");
    Vars vars = robustEnv(s3);
    vars["S3_MAX_FILE_CONCURRENCY"] = "1";
    ScopedEnv env(vars);
    Run one = runInitializer({"s3://models/big", dir + "/one"});
    INFO(one.output);
    REQUIRE(one.status == 0);
    CHECK(storagetest::sameContent(dir + "/big.bin", dir + "/one/w.bin"));
    CHECK(testsupport::readFile(peak) == "1");
    // Not a positive integer: the default, with a warning naming the variable.
    ScopedEnv bad(Vars{{"S3_MAX_FILE_CONCURRENCY", "many"}});
    Run fallback = runInitializer({"s3://models/big", dir + "/fallback"});
    INFO(fallback.output);
    REQUIRE(fallback.status == 0);
    CHECK_THAT(fallback.output,
               Catch::Contains("S3_MAX_FILE_CONCURRENCY=many is not a positive integer; using 8"));
  }
}

TEST_CASE("S3: a ranged download that failed goes on where it stopped when run again",
          "[storage][s3][ranged][resume][initializer]") {
  // Five parts, one at a time, one attempt each: two arrive, the third fails.
  const uint64_t size = (uint64_t{150} << 20) + 3;
  std::string dir = testsupport::makeTempDir("resume");
  storagetest::writePatternFile(dir + "/big.bin", size);
  auto rangesSince = [](const BotocoreS3& s3, size_t from) {
    std::set<std::string> ranges;
    const auto requests = s3.requests();
    for (size_t i = from; i < requests.size(); ++i) {
      nlohmann::json line = nlohmann::json::parse(requests[i]);
      if (line["range"].is_string()) ranges.insert(line["range"].get<std::string>());
    }
    return ranges;
  };
  BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {"--fail-after", "2", "1"});
  fs::create_directories(s3.root() + "/models/big");
  fs::copy_file(dir + "/big.bin", s3.root() + "/models/big/w.bin");
  Vars vars = robustEnv(s3);
  vars["S3_MAX_FILE_CONCURRENCY"] = "1";
  vars["S3_MAX_ATTEMPTS"] = "1";
  ScopedEnv env(vars);

  Run failed = runInitializer({"s3://models/big", dir + "/out"});
  INFO(failed.output);
  REQUIRE(failed.status == 1);
  CHECK(fs::exists(dir + "/out/w.bin.kserve-parts"));
  const size_t before = s3.requests().size();
  Run resumed = runInitializer({"s3://models/big", dir + "/out"});
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.output, Catch::Contains("big/w.bin: 67108864 of 157286403 bytes are in "
                                             "place from an earlier download; fetching the rest"));
  CHECK(rangesSince(s3, before) == std::set<std::string>{"bytes=67108864-100663295",
                                                         "bytes=100663296-134217727",
                                                         "bytes=134217728-157286402"});
  CHECK(storagetest::sameContent(dir + "/big.bin", dir + "/out/w.bin"));
  CHECK(storagetest::listEntries(dir + "/out") == std::set<std::string>{"w.bin"});

  // An object replaced since (a new ETag): the parts in place belong to the old one.
  BotocoreS3 other(kAccessKey, kSecret, "", "", "", {"--fail-after", "2", "1"});
  fs::create_directories(other.root() + "/models/big");
  fs::copy_file(dir + "/big.bin", other.root() + "/models/big/w.bin");
  vars["AWS_ENDPOINT_URL"] = other.endpoint();
  ScopedEnv otherEnv(vars);
  REQUIRE(runInitializer({"s3://models/big", dir + "/again"}).status == 1);
  fs::remove(other.root() + "/models/big/w.bin");
  storagetest::writePatternFile(other.root() + "/models/big/w.bin", size);
  const size_t replacedFrom = other.requests().size();
  Run replaced = runInitializer({"s3://models/big", dir + "/again"});
  INFO(replaced.output);
  REQUIRE(replaced.status == 0);
  CHECK(replaced.output.find("in place from an earlier download") == std::string::npos);
  CHECK(rangesSince(other, replacedFrom).size() == 5);
  CHECK(storagetest::sameContent(dir + "/big.bin", dir + "/again/w.bin"));

  // A model file named as a journal is the model's: no journal is kept beside it (fetched at
  // the same time as the parts, it would be overwritten, then removed with the journal).
  testsupport::writeFile(other.root() + "/models/big/w.bin.kserve-parts", "mine");
  vars["S3_MAX_FILE_CONCURRENCY"] = std::nullopt;
  ScopedEnv parallel(vars);
  Run named = runInitializer({"s3://models/big", dir + "/named"});
  INFO(named.output);
  REQUIRE(named.status == 0);
  CHECK(testsupport::readFile(dir + "/named/w.bin.kserve-parts") == "mine");
  CHECK(storagetest::sameContent(dir + "/big.bin", dir + "/named/w.bin"));
}

TEST_CASE("S3: a 301 PermanentRedirect with x-amz-bucket-region is followed once",
          "[storage][s3][redirect][initializer]") {
  BotocoreS3 s3(kAccessKey, kSecret, "", "", "", {"--bucket-region", "eu-west-3"});
  putOne(s3);
  ScopedEnv env(robustEnv(s3));
  std::string dir = testsupport::makeTempDir("redirect");
  Run result = runInitializer({"s3://models/m", dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out/w.bin") == "weights");
  CHECK_THAT(result.output,
             Catch::Contains("bucket models is in region eu-west-3, not us-east-1; following"));
}
