// Blob URLs and object keys: upstream's store tests (missing bucket, configured prefix) as
// black-box cases, and the keys a client's Ce-Id cannot aim at another object.
#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "logger/blob/key.h"

using namespace logger::blob;

namespace {

BlobLocation parse(const std::string& url) {
  BlobLocation location;
  std::string error;
  INFO(url << ": " << error);
  REQUIRE(parseBlobUrl(url, location, error));
  return location;
}

std::string parseError(const std::string& url) {
  BlobLocation location;
  std::string error;
  REQUIRE_FALSE(parseBlobUrl(url, location, error));
  return error;
}

std::string directory(std::string_view prefix, std::string_view storePath,
                      std::string_view ns = "ns", std::string_view isvc = "inference",
                      std::string_view component = "predictor") {
  std::string dir;
  std::string error;
  INFO(error);
  REQUIRE(objectDirectory(prefix, ns, isvc, component, storePath, dir, error));
  return dir;
}

constexpr const char* kRequest = "org.kubeflow.serving.inference.request";
constexpr const char* kResponse = "org.kubeflow.serving.inference.response";

}  // namespace

TEST_CASE("blob URLs are told apart by upstream's prefix test", "[blob][key]") {
  for (const char* url : {"s3://b", "s3a://b", "gs://b", "gsx", "abfs://c@a", "abfss://c@a"})
    CHECK(looksLikeBlobUrl(url));
  for (const char* url : {"http://sink", "https://sink", "kafka://x", "file:///x", "", "S3://b"})
    CHECK_FALSE(looksLikeBlobUrl(url));
}

TEST_CASE("a blob URL gives the provider, the bucket and the prefix", "[blob][key]") {
  BlobLocation s3 = parse("s3://bucket/prefix");
  CHECK(s3.provider == Provider::S3);
  CHECK(s3.bucket == "bucket");
  CHECK(s3.prefix == "prefix");
  CHECK(s3.account.empty());
  BlobLocation gs = parse("gs://my_bucket/a/b/");
  CHECK(gs.provider == Provider::Gcs);
  CHECK(gs.bucket == "my_bucket");
  CHECK(gs.prefix == "a/b/");
  BlobLocation azure = parse("abfs://logs@myaccount.dfs.core.windows.net/p%20q");
  CHECK(azure.provider == Provider::Azure);
  CHECK(azure.bucket == "logs");
  CHECK(azure.account == "myaccount.dfs.core.windows.net");
  CHECK(azure.prefix == "p q");
  CHECK(parse("s3://bucket").prefix.empty());
  CHECK(parse("s3://bucket//double").prefix == "/double");  // one leading '/' is trimmed
}

TEST_CASE("blob URLs without a bucket or with another scheme are refused", "[blob][key]") {
  CHECK(parseError("s3://") == "no bucket specified in url");
  CHECK(parseError("s3:///prefix") == "no bucket specified in url");
  CHECK(parseError("abfs://@account/x") == "no bucket specified in url");
  CHECK(parseError("") == "unsupported blob URL scheme \"\": expected s3://, gs:// or abfs://");
  CHECK(parseError("s3a://bucket/x") ==
        "unsupported blob URL scheme \"s3a\": expected s3://, gs:// or abfs://");
  CHECK(parseError("abfss://c@a/x").starts_with("unsupported blob URL scheme \"abfss\""));
  CHECK(parseError("gs:bucket").starts_with("unsupported blob URL scheme"));
  CHECK(parseError("s3://bucket:9000/x") == "invalid bucket name \"bucket:9000\" in url");
  CHECK(parseError("s3://bu%zzcket/x").starts_with("malformed blob URL: "));
}

TEST_CASE("Go's path.Clean and path.Join", "[blob][key]") {
  CHECK(goPathClean("") == ".");
  CHECK(goPathClean("a//b/./c/..") == "a/b");
  CHECK(goPathClean("/../a") == "/a");
  CHECK(goPathClean("../../a/..") == "../..");
  CHECK(goPathClean("/") == "/");
  CHECK(goPathJoin({}) == "");
  CHECK(goPathJoin({"", ""}) == "");
  CHECK(goPathJoin({"prefix", "", "ns", "/logger/"}) == "prefix/ns/logger");
  CHECK(goPathJoin({"a", "../../b"}) == "../b");
}

TEST_CASE("upstream's configured-prefix key, for an id the agent made", "[blob][key]") {
  const BlobLocation location = parse("s3://bucket/prefix");
  ObjectKeys keys(directory(location.prefix, "/logger"), 0x0123456789abcdefULL);
  CHECK(keys.key("0123", ObjectKeys::IdOrigin::Generated, kRequest, "json") ==
        "prefix/ns/inference/predictor/logger/0123-request.json");
  CHECK(
      keys.key("7d2b4c1e-1f2a-4b3c-9d8e-0f1a2b3c4d5e", ObjectKeys::IdOrigin::Generated, kResponse,
               "parquet") ==
      "prefix/ns/inference/predictor/logger/7d2b4c1e-1f2a-4b3c-9d8e-0f1a2b3c4d5e-response.parquet");
}

TEST_CASE("the key directory skips empty parts, is cleaned, and never starts with /",
          "[blob][key]") {
  CHECK(directory("", "/logger", "", "", "") == "logger");  // upstream: "/logger"
  CHECK(directory("a/b/", "./x//y/", "ns", "", "c") == "a/b/ns/c/x/y");
  CHECK(directory("", ".", "", "", "") == "");
  CHECK(directory("p", "../q") == "p/ns/inference/q");
  ObjectKeys keys(directory("", "/", "", "", ""), 1);
  CHECK(keys.key("id", ObjectKeys::IdOrigin::Generated, kRequest, "csv") == "id-request.csv");
}

TEST_CASE("a key directory above the bucket's root or too long is refused", "[blob][key]") {
  std::string dir;
  std::string error;
  CHECK_FALSE(objectDirectory("", "", "", "", "../../etc", dir, error));
  CHECK(error == "the object key directory \"../../etc\" is above the bucket's root");
  CHECK_FALSE(objectDirectory("a", "", "", "", "../..", dir, error));
  CHECK_FALSE(objectDirectory(std::string(600, 'p'), "", "", "", "x", dir, error));
  CHECK(error == "the object key directory is longer than 512 bytes");
}

TEST_CASE("a client's id cannot escape the directory or overwrite another batch", "[blob][key]") {
  ObjectKeys keys("prefix/logger", 0xfedcba9876543210ULL);
  const std::string first =
      keys.key("../../other/x", ObjectKeys::IdOrigin::Client, kRequest, "json");
  CHECK(first == "prefix/logger/..%2F..%2Fother%2Fx-fedcba9876543210-1-request.json");
  // The same id again, as a client may send it: another key.
  const std::string second =
      keys.key("../../other/x", ObjectKeys::IdOrigin::Client, kRequest, "json");
  CHECK(second == "prefix/logger/..%2F..%2Fother%2Fx-fedcba9876543210-2-request.json");
  // A client id equal to an id the agent made cannot take that key either.
  CHECK(keys.key("0123", ObjectKeys::IdOrigin::Client, kRequest, "json") ==
        "prefix/logger/0123-fedcba9876543210-3-request.json");
  CHECK(keys.key("", ObjectKeys::IdOrigin::Client, kRequest, "json") ==
        "prefix/logger/-fedcba9876543210-4-request.json");
  CHECK(keys.key("a%2Fb é", ObjectKeys::IdOrigin::Client, kRequest, "json") ==
        "prefix/logger/a%252Fb%20%C3%A9-fedcba9876543210-5-request.json");
}

TEST_CASE("an id the agent made that is not plain text is made unique too", "[blob][key]") {
  ObjectKeys keys("d", 0);
  CHECK(keys.key("a/b", ObjectKeys::IdOrigin::Generated, kRequest, "json") ==
        "d/a%2Fb-0000000000000000-1-request.json");
  CHECK(keys.key("", ObjectKeys::IdOrigin::Generated, kRequest, "json") ==
        "d/-0000000000000000-2-request.json");
}

TEST_CASE("long ids are cut, and the suffix and extension cannot carry a path", "[blob][key]") {
  ObjectKeys keys("d", 0);
  std::string encoded;
  for (int i = 0; i < 66; ++i)
    encoded += "%2F";  // 66 escapes are 198 bytes: a 67th would pass the 200-byte cut
  CHECK(keys.key(std::string(5000, '/'), ObjectKeys::IdOrigin::Client, kRequest, "json") ==
        "d/" + encoded + "-0000000000000000-1-request.json");
  CHECK(keys.key("id", ObjectKeys::IdOrigin::Generated, "no-dots/../x", "../ext") ==
        "d/id-%2Fx...%2Fext");
  CHECK(keys.key("id", ObjectKeys::IdOrigin::Generated, kResponse, "tar.gz") ==
        "d/id-response.tar.gz");
}

TEST_CASE("process tokens differ and keys stay unique across threads", "[blob][key]") {
  CHECK(ObjectKeys::randomToken() != ObjectKeys::randomToken());
  ObjectKeys keys("d", ObjectKeys::randomToken());
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& list : made) {
    threads.emplace_back([&keys, &list] {
      for (int i = 0; i < 500; ++i)
        list.push_back(keys.key("same", ObjectKeys::IdOrigin::Client, kRequest, "json"));
    });
  }
  for (auto& thread : threads)
    thread.join();
  std::set<std::string> unique;
  for (const auto& list : made)
    unique.insert(list.begin(), list.end());
  CHECK(unique.size() == 2000);
}
