// Downloads from real storage servers on loopback: s3rver (S3), azurite (Azure Blob), nginx
// (http and https), and the documented-API fakes of GCS and the Hugging Face Hub; plus a
// hand-made S3 for the answers s3rver cannot give.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "puller/storage/storage.h"
#include "puller/storage/util.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using storagetest::listFiles;
using storagetest::ScopedEnv;
using Files = std::set<std::string>;

namespace {

std::string freshDir(const std::string& name) {
  return testsupport::makeTempDir(name) + "/model";
}

long maxRssKiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A path-style, anonymous S3 of bucket "bucket" for what s3rver cannot be made to do: list an
// object with one size and serve another body, with no Content-Length and ended by closing the
// connection (a misbehaving gateway, so the body reads as complete at the HTTP level), and keep
// a key with "//" or "/./" in it. One request per connection, answered in turn.
class HandMadeS3 {
 public:
  struct Object {
    std::string key;
    uint64_t listedSize;
    std::string body;
  };

  explicit HandMadeS3(std::vector<Object> objects) : objects_(std::move(objects)) {
    listener_ = testsupport::listenOnLoopback(16, port_);
    REQUIRE(listener_ >= 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~HandMadeS3() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  HandMadeS3(const HandMadeS3&) = delete;
  HandMadeS3& operator=(const HandMadeS3&) = delete;

  std::map<std::string, std::optional<std::string>> env() const {
    return {{"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(port_)},
            {"awsAnonymousCredential", "true"},
            {"S3_ENDPOINT", std::nullopt},
            {"S3_USER_VIRTUAL_BUCKET", std::nullopt}};
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      answer(fd);
      ::close(fd);
    }
  }

  void answer(int fd) {
    std::string head;
    char buffer[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      head.append(buffer, static_cast<size_t>(n));
    }
    // "GET /bucket/<key>?<query> HTTP/1.1"; the listing is not filtered, selection does that.
    std::string target = head.substr(4, head.find(' ', 4) - 4);
    std::string path = target.substr(0, target.find('?'));
    std::string response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    if (path == "/bucket" || path == "/bucket/") {
      std::string xml = "<ListBucketResult>";
      for (const auto& object : objects_) {
        xml += "<Contents><Key>" + object.key + "</Key><Size>" + std::to_string(object.listedSize) +
               "</Size></Contents>";
      }
      xml += "<IsTruncated>false</IsTruncated></ListBucketResult>";
      response =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(xml.size()) + "\r\n\r\n" + xml;
    }
    for (const auto& object : objects_) {
      if (path == "/bucket/" + object.key) {
        response = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + object.body;
      }
    }
    for (size_t sent = 0; sent < response.size();) {
      ssize_t n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  std::vector<Object> objects_;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("S3: a prefix keeps nested folders, a single object lands inside", "[storage][s3]") {
  storagetest::S3rver s3;
  s3.put("models/m1/model.pt", "weights");
  s3.put("models/m1/config/a.json", "{}");
  s3.put("models/m1/config/deep/b.txt", "b");
  s3.put("models/m10/other.pt", "not mine");
  ScopedEnv env(s3.env());

  std::string dest = freshDir("s3");
  auto status = storage::download("s3://models/models/m1", dest);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(listFiles(dest) == Files{"model.pt", "config/a.json", "config/deep/b.txt"});
  CHECK(testsupport::readFile(dest + "/model.pt") == "weights");

  std::string single = freshDir("s3");
  REQUIRE(storage::download("s3://models/models/m1/model.pt", single).ok);
  CHECK(listFiles(single) == Files{"model.pt"});

  std::string whole = freshDir("s3");
  REQUIRE(storage::download("s3://models", whole).ok);
  CHECK(listFiles(whole).size() == 4);
}

TEST_CASE("S3: a missing prefix, a missing bucket and a wrong key are clear errors",
          "[storage][s3]") {
  storagetest::S3rver s3;
  s3.put("m/file", "x");
  std::string dest = freshDir("s3");
  {
    ScopedEnv env(s3.env());
    auto status = storage::download("s3://models/nothing-here", dest);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message, Catch::Contains("s3://models/nothing-here") &&
                                   Catch::Contains("has no objects or does not exist"));
    status = storage::download("s3://no-such-bucket/m", dest);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message, Catch::Contains("NoSuchBucket"));
  }
  // s3rver 3.7 verifies only SigV2 signatures; for SigV4 it checks that the access key id is
  // known and accepts any signature (lib/middleware/authentication.js). So the wrong-key case it
  // can show is an unknown key id; the signature itself is checked against AWS's published
  // vectors in storage_unit_test.cc and against azurite's Shared Key check below.
  SECTION("unknown access key id") {
    auto vars = s3.env();
    vars["AWS_ACCESS_KEY_ID"] = "NOBODY";
    ScopedEnv env(vars);
    auto status = storage::download("s3://models/m", dest);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message,
               Catch::Contains("unable to list objects") && Catch::Contains("InvalidAccessKeyId"));
    CHECK_THAT(status.message, !Catch::Contains(storagetest::S3rver::kSecretKey));
  }
  CHECK(listFiles(dest).empty());
}

TEST_CASE("S3: a 300 MiB object comes as ranged parts written in place, with bounded memory",
          "[storage][s3][large][ranged]") {
  storagetest::S3rver s3;
  std::string sources = testsupport::makeTempDir("big");
  // Ten parts, the last one short, next to files below the ranged threshold.
  const uint64_t size = (uint64_t{300} << 20) + 7;
  storagetest::writePatternFile(sources + "/big.bin", size);
  storagetest::writePatternFile(sources + "/small.bin", (uint64_t{1} << 20) + 3);
  s3.put("big/model.bin", sources + "/big.bin", true);
  s3.put("big/extra/small.bin", sources + "/small.bin", true);
  s3.put("big/config.json", "{}");
  ScopedEnv env(s3.env());
  std::string dest = freshDir("s3");
  long before = maxRssKiB();
  auto status = storage::download("s3://models/big", dest);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(maxRssKiB() - before < 48 * 1024);  // far less than the object
  CHECK(listFiles(dest) == Files{"model.bin", "extra/small.bin", "config.json"});
  CHECK(fs::file_size(dest + "/model.bin") == size);
  CHECK(storagetest::sameContent(sources + "/big.bin", dest + "/model.bin"));
  CHECK(storagetest::sameContent(sources + "/small.bin", dest + "/extra/small.bin"));
}

TEST_CASE("Azure Blob: a 150 MiB blob comes as ranged parts signed with the account key",
          "[storage][azure][large][ranged]") {
  storagetest::Azurite azurite;
  azurite.createContainer("models");
  std::string sources = testsupport::makeTempDir("bigblob");
  const uint64_t size = (uint64_t{150} << 20) + 11;
  storagetest::writePatternFile(sources + "/big.bin", size);
  azurite.put("models", "big/weights.bin", sources + "/big.bin", true);
  // Shared Key signs x-ms-range with the other x-ms- headers: a wrong signature would be 403.
  ScopedEnv env({{"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
                 {"AZURE_STORAGE_ACCESS_KEY", storagetest::Azurite::kKey},
                 {"AZURE_CLIENT_ID", std::nullopt},
                 {"AZ_CLIENT_ID", std::nullopt}});
  std::string dest = freshDir("azure");
  auto status =
      storage::download("https://devstoreaccount1.blob.core.windows.net/models/big", dest);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(listFiles(dest) == Files{"weights.bin"});
  CHECK(storagetest::sameContent(sources + "/big.bin", dest + "/weights.bin"));
}

TEST_CASE("GCS (fake JSON API): a large object comes as ranged parts, small ones whole",
          "[storage][gcs][large][ranged]") {
  std::string log = testsupport::makeTempDir("gcsranges") + "/requests.jsonl";
  storagetest::FakeGcs gcs({"--auth-log", log});
  fs::create_directories(gcs.root() + "/bucket/m");
  const uint64_t size = (uint64_t{100} << 20) + 1;
  storagetest::writePatternFile(gcs.root() + "/bucket/m/big.bin", size);
  testsupport::writeFile(gcs.root() + "/bucket/m/small.json", "{}");
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  std::string dest = freshDir("gcs");
  auto status = storage::download("gs://bucket/m", dest);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(storagetest::sameContent(gcs.root() + "/bucket/m/big.bin", dest + "/big.bin"));
  CHECK(testsupport::readFile(dest + "/small.json") == "{}");
  std::multiset<std::string> ranges;
  for (const auto& line : storagetest::jsonLines(log)) {
    std::string path = line["path"].get<std::string>();
    if (path.ends_with("big.bin")) ranges.insert(line["range"].get<std::string>());
    if (path.ends_with("small.json")) CHECK(line["range"].is_null());
  }
  CHECK(ranges == std::multiset<std::string>{"bytes=0-33554431", "bytes=33554432-67108863",
                                             "bytes=67108864-100663295",
                                             "bytes=100663296-104857600"});
}

TEST_CASE(
    "S3: slashes and dot segments after the prefix are dropped and a body short of its "
    "listed size fails",
    "[storage][s3]") {
  HandMadeS3 s3({{"models/m1//weights.bin", 7, "weights"},
                 {"models/m1/config.json", 2, "{}"},
                 {"models/m1/./dot/x.bin", 3, "dot"},
                 {"models/cut/big.bin", 100000, std::string(50000, 'x')}});
  ScopedEnv env(s3.env());
  for (const char* uri : {"s3://bucket/models/m1", "s3://bucket/models/m1/"}) {
    INFO(uri);
    std::string dest = freshDir("s3");
    auto status = storage::download(uri, dest);
    INFO(status.message);
    REQUIRE(status.ok);
    CHECK(listFiles(dest) == Files{"weights.bin", "config.json", "dot/x.bin"});
    CHECK(testsupport::readFile(dest + "/weights.bin") == "weights");
    CHECK(testsupport::readFile(dest + "/dot/x.bin") == "dot");
  }
  auto cut = storage::download("s3://bucket/models/cut", freshDir("s3"));
  CHECK_FALSE(cut.ok);
  CHECK_FALSE(cut.permanent);
  CHECK_THAT(cut.message, Catch::Contains("\"models/cut/big.bin\" is 100000 bytes") &&
                              Catch::Contains("50000 bytes were received"));
}

TEST_CASE("Azure Blob: account key, nested prefix, single blob, wrong key", "[storage][azure]") {
  storagetest::Azurite azurite;
  azurite.createContainer("models");
  azurite.put("models", "sklearn/m1/model.joblib", "joblib");
  azurite.put("models", "sklearn/m1/sub/dir/extra.txt", "extra");
  azurite.put("models", "sklearn/m10/x", "not mine");
  std::string uri = "https://devstoreaccount1.blob.core.windows.net/models/sklearn/m1";
  std::map<std::string, std::optional<std::string>> vars{
      {"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
      {"AZURE_STORAGE_ACCESS_KEY", storagetest::Azurite::kKey},
      {"AZURE_CLIENT_ID", std::nullopt},
      {"AZ_CLIENT_ID", std::nullopt}};
  {
    ScopedEnv env(vars);
    std::string dest = freshDir("azure");
    auto status = storage::download(uri, dest);
    INFO(status.message);
    REQUIRE(status.ok);
    CHECK(listFiles(dest) == Files{"model.joblib", "sub/dir/extra.txt"});
    CHECK(testsupport::readFile(dest + "/model.joblib") == "joblib");

    std::string single = freshDir("azure");
    REQUIRE(storage::download(uri + "/model.joblib", single).ok);
    CHECK(listFiles(single) == Files{"model.joblib"});

    auto missing = storage::download(uri + "/nothing", freshDir("azure"));
    CHECK_FALSE(missing.ok);
    CHECK_THAT(missing.message, Catch::Contains("has no blobs"));
  }
  vars["AZURE_STORAGE_ACCESS_KEY"] = storage::base64Encode("a wrong key of some length");
  ScopedEnv env(vars);
  auto status = storage::download(uri, freshDir("azure"));
  CHECK_FALSE(status.ok);
  CHECK_THAT(status.message, Catch::Contains("403") && Catch::Contains("AuthorizationFailure"));
}

TEST_CASE("Azure Blob: a SAS in the URL is used and never shown", "[storage][azure]") {
  storagetest::Azurite azurite;
  azurite.createContainer("public");
  azurite.put("public", "m/model.onnx", "onnx");
  ScopedEnv env({{"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
                 {"AZURE_STORAGE_ACCESS_KEY", std::nullopt},
                 {"AZURE_CLIENT_ID", std::nullopt}});
  // A forged SAS: azurite rejects it, which shows it was sent; the message must not echo it.
  auto status = storage::download(
      "https://devstoreaccount1.blob.core.windows.net/public/m?sv=2021-08-06&sig=SECRETSIG",
      freshDir("azure"));
  CHECK_FALSE(status.ok);
  CHECK_THAT(status.message, Catch::Contains("?<redacted>") && !Catch::Contains("SECRETSIG"));
  CHECK_THAT(status.message, Catch::Contains("403"));
}

TEST_CASE("http(s): plain files, custom headers, archives by name and by Content-Type",
          "[storage][http]") {
  storagetest::Nginx nginx;
  std::string root = nginx.root();
  fs::create_directories(root + "/files");
  fs::create_directories(root + "/private");
  fs::create_directories(root + "/typed");
  testsupport::writeFile(root + "/files/model.joblib", "Temporary content\n");
  testsupport::writeFile(root + "/private/secret.bin", "secret");
  std::string fixtures = storagetest::archiveFixtures();
  for (const char* name : {"good.tar.gz", "good.zip", "good.tar", "dotdot.tar.gz"}) {
    fs::copy_file(fixtures + "/" + name, root + "/files/" + name);
  }
  fs::copy_file(fixtures + "/good.tar.gz", root + "/typed/modelpack");
  ScopedEnv tls({{"SSL_CERT_FILE", std::nullopt}, {"REQUESTS_CA_BUNDLE", std::nullopt}});

  SECTION("a plain file") {
    std::string dest = freshDir("http");
    REQUIRE(storage::download(nginx.url("/files/model.joblib"), dest).ok);
    CHECK(testsupport::readFile(dest + "/model.joblib") == "Temporary content\n");
  }
  SECTION("archives are extracted") {
    for (const char* name : {"good.tar.gz", "good.zip", "good.tar"}) {
      INFO(name);
      std::string dest = freshDir("http");
      auto status = storage::download(nginx.url("/files/") + name, dest);
      INFO(status.message);
      REQUIRE(status.ok);
      CHECK(listFiles(dest) == Files{"model/config.json", "model/weights/w.bin"});
    }
    std::string typed = freshDir("http");
    REQUIRE(storage::download(nginx.url("/typed/modelpack"), typed).ok);
    CHECK(listFiles(typed) == Files{"model/config.json", "model/weights/w.bin"});
  }
  SECTION("a hostile archive is refused and leaves nothing") {
    std::string dest = freshDir("http");
    auto status = storage::download(nginx.url("/files/dotdot.tar.gz"), dest);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message, Catch::Contains("refused"));
    CHECK(storagetest::listEntries(fs::path(dest).parent_path()) == Files{"model"});
    CHECK(storagetest::listEntries(dest).empty());
  }
  SECTION("<host>-headers supplies headers") {
    std::string dest = freshDir("http");
    auto denied = storage::download(nginx.url("/private/secret.bin"), dest);
    CHECK_FALSE(denied.ok);
    CHECK_THAT(denied.message, Catch::Contains("403"));
    ScopedEnv headers({{"127.0.0.1-headers", std::string(R"({"X-Model-Token":"let-me-in"})")}});
    REQUIRE(storage::download(nginx.url("/private/secret.bin"), dest).ok);
    CHECK(testsupport::readFile(dest + "/secret.bin") == "secret");
    // An IPv6 host is named without its brackets, as Go's url.Hostname() gives it.
    std::string v6 = "http://[::1]:" + std::to_string(nginx.httpPort()) + "/private/secret.bin";
    std::string v6Dest = freshDir("http");
    CHECK_FALSE(storage::download(v6, v6Dest).ok);
    ScopedEnv v6Headers({{"::1-headers", std::string(R"({"X-Model-Token":"let-me-in"})")}});
    auto status = storage::download(v6, v6Dest);
    INFO(status.message);
    REQUIRE(status.ok);
    CHECK(testsupport::readFile(v6Dest + "/secret.bin") == "secret");
  }
  SECTION("a missing file is a 404 error") {
    auto status = storage::download(nginx.url("/files/none.bin"), freshDir("http"));
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message, Catch::Contains("404"));
  }
  SECTION("https verifies the server against SSL_CERT_FILE") {
    auto untrusted = storage::download(nginx.httpsUrl("/files/model.joblib"), freshDir("http"));
    CHECK_FALSE(untrusted.ok);
    ScopedEnv ca({{"SSL_CERT_FILE", nginx.caFile()}});
    std::string dest = freshDir("http");
    auto status = storage::download(nginx.httpsUrl("/files/model.joblib"), dest);
    INFO(status.message);
    REQUIRE(status.ok);
    CHECK(testsupport::readFile(dest + "/model.joblib") == "Temporary content\n");
  }
}

TEST_CASE("http(s): a large file comes as parallel ranged GETs where the server takes ranges",
          "[storage][http][large][ranged]") {
  storagetest::Nginx nginx;
  const uint64_t size = (uint64_t{100} << 20) + 9;
  storagetest::writePatternFile(nginx.root() + "/big.bin", size);
  fs::create_directories(nginx.root() + "/noranges");
  storagetest::writePatternFile(nginx.root() + "/noranges/whole.bin", (uint64_t{40} << 20) + 1);
  testsupport::writeFile(nginx.root() + "/empty.bin", "");
  fs::create_directories(nginx.root() + "/norange416");
  testsupport::writeFile(nginx.root() + "/norange416/empty.bin", "");
  std::string dest = freshDir("http");
  for (const char* path :
       {"/big.bin", "/noranges/whole.bin", "/empty.bin", "/norange416/empty.bin"}) {
    auto status = storage::download(nginx.url(path), dest);
    INFO(path << ": " << status.message);
    REQUIRE(status.ok);
    CHECK(storagetest::sameContent(nginx.root() + path,
                                   dest + "/" + fs::path(path).filename().string()));
  }
  // The first part asked as a range says the size; the other three follow with If-Range (the
  // first answer's ETag), so a file replaced meanwhile cannot mix two versions.
  std::map<std::string, std::string> ifRange;  // by Range
  std::istringstream log(nginx.accessLog());
  std::vector<std::string> others;
  for (std::string line; std::getline(log, line);) {
    if (!line.starts_with("/big.bin ")) {
      others.push_back(line);
      continue;
    }
    CHECK_THAT(line, Catch::StartsWith("/big.bin 206 \"bytes="));
    size_t open = line.find('"');
    size_t close = line.find('"', open + 1);
    ifRange[line.substr(open + 1, close - open - 1)] = line.substr(close + 2);
  }
  CHECK(ifRange.size() == 4);
  CHECK(ifRange["bytes=0-33554431"] == "\"-\"");
  for (const char* part :
       {"bytes=33554432-67108863", "bytes=67108864-100663295", "bytes=100663296-104857608"}) {
    INFO(part);
    REQUIRE(ifRange.contains(part));
    CHECK(ifRange[part] != "\"-\"");
  }
  // A server without ranges answers the whole file to the first GET; one that refuses the
  // range of an empty file (416) is asked again without one.
  CHECK(others == std::vector<std::string>{"/noranges/whole.bin 200 \"bytes=0-33554431\" \"-\"",
                                           "/empty.bin 200 \"bytes=0-33554431\" \"-\"",
                                           "/norange416/empty.bin 416 \"bytes=0-33554431\" \"-\"",
                                           "/norange416/empty.bin 200 \"-\" \"-\""});
}

TEST_CASE("GCS (fake JSON API): pagination, nested prefix, single object, not found",
          "[storage][gcs]") {
  storagetest::FakeGcs gcs;
  fs::create_directories(gcs.root() + "/bucket/models/m1/sub");
  fs::create_directories(gcs.root() + "/bucket/models/m10");
  testsupport::writeFile(gcs.root() + "/bucket/models/m1/a.bin", "a");
  testsupport::writeFile(gcs.root() + "/bucket/models/m1/b.bin", "b");
  testsupport::writeFile(gcs.root() + "/bucket/models/m1/sub/c d+e.bin", "c");
  testsupport::writeFile(gcs.root() + "/bucket/models/m10/x", "x");
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  std::string dest = freshDir("gcs");
  auto status = storage::download("gs://bucket/models/m1", dest);  // pages of 2 items
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(listFiles(dest) == Files{"a.bin", "b.bin", "sub/c d+e.bin"});

  std::string single = freshDir("gcs");
  REQUIRE(storage::download("gs://bucket/models/m1/sub/c d+e.bin", single).ok);
  CHECK(testsupport::readFile(single + "/c d+e.bin") == "c");

  status = storage::download("gs://bucket/none", freshDir("gcs"));
  CHECK_FALSE(status.ok);
  CHECK_THAT(status.message,
             Catch::Contains("unable to download object/s because: storage: object doesn't exist"));
}

TEST_CASE("GCS (fake JSON API): a service account key becomes an RS256 JWT and a token",
          "[storage][gcs]") {
  std::string dir = testsupport::makeTempDir("gcs-key");
  testsupport::Process keygen({"/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                               "rsa_keygen_bits:2048", "-out", dir + "/key.pem"});
  REQUIRE(keygen.wait(std::chrono::seconds(30)) == 0);
  testsupport::Process pub(
      {"/usr/bin/openssl", "pkey", "-in", dir + "/key.pem", "-pubout", "-out", dir + "/pub.pem"});
  REQUIRE(pub.wait(std::chrono::seconds(30)) == 0);
  storagetest::FakeGcs gcs(
      {"--public-key", dir + "/pub.pem", "--require-token", "--token-log", dir + "/claims.jsonl"});
  fs::create_directories(gcs.root() + "/private/m");
  testsupport::writeFile(gcs.root() + "/private/m/model.bin", "private");
  std::string pem = testsupport::readFile(dir + "/key.pem");
  nlohmann::json key = {{"type", "service_account"},
                        {"client_email", "puller@project.iam.gserviceaccount.com"},
                        {"private_key", pem},
                        {"private_key_id", "k1"},
                        {"token_uri", gcs.endpoint() + "/token"}};
  testsupport::writeFile(dir + "/sa.json", key.dump());

  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto anonymous = storage::download("gs://private/m", freshDir("gcs"));
  CHECK_FALSE(anonymous.ok);
  CHECK_THAT(anonymous.message, Catch::Contains("401"));

  ScopedEnv credentials({{"GOOGLE_APPLICATION_CREDENTIALS", dir + "/sa.json"}});
  std::string dest = freshDir("gcs");
  auto status = storage::download("gs://private/m", dest);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(testsupport::readFile(dest + "/model.bin") == "private");
  auto claims = nlohmann::json::parse(testsupport::readFile(dir + "/claims.jsonl"));
  CHECK(claims["iss"] == "puller@project.iam.gserviceaccount.com");
  CHECK(claims["aud"] == gcs.endpoint() + "/token");
}

TEST_CASE("Hugging Face (fake Hub API): files of a revision, token, not found", "[storage][hf]") {
  storagetest::FakeHf hf({"--token", "hf_secret"});
  fs::create_directories(hf.root() + "/owner/model/sub");
  testsupport::writeFile(hf.root() + "/owner/model/config.json", "{}");
  testsupport::writeFile(hf.root() + "/owner/model/sub/model.safetensors", "tensors");
  testsupport::writeFile(hf.root() + "/owner/model/weights.tar", "kept as is");
  ScopedEnv env({{"HF_ENDPOINT", hf.endpoint()},
                 {"HF_TOKEN", "hf_secret"},
                 {"HUGGING_FACE_HUB_TOKEN", std::nullopt}});
  std::string dest = freshDir("hf");
  auto status = storage::download("hf://owner/model:main", dest);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(listFiles(dest) == Files{"config.json", "sub/model.safetensors", "weights.tar"});
  CHECK(testsupport::readFile(dest + "/sub/model.safetensors") == "tensors");

  auto missing = storage::download("hf://owner/absent", freshDir("hf"));
  CHECK_FALSE(missing.ok);
  CHECK_THAT(missing.message, Catch::Contains("not found"));
  // Without the variables, huggingface_hub's token file: HF_TOKEN_PATH, else $HF_HOME/token.
  std::string home = testsupport::makeTempDir("hf-home");
  ScopedEnv noToken({{"HF_TOKEN", std::nullopt},
                     {"HF_TOKEN_PATH", std::nullopt},
                     {"HF_HOME", home},
                     {"HF_HUB_DISABLE_IMPLICIT_TOKEN", std::nullopt}});
  auto denied = storage::download("hf://owner/model", freshDir("hf"));
  CHECK_FALSE(denied.ok);
  CHECK_THAT(denied.message,
             Catch::Contains("access denied") && Catch::Contains("no HF_TOKEN set, no token file"));
  testsupport::writeFile(home + "/token", "hf_secret\n");
  auto fromHome = storage::download("hf://owner/model", freshDir("hf"));
  INFO(fromHome.message);
  CHECK(fromHome.ok);
  {
    ScopedEnv disabled({{"HF_HUB_DISABLE_IMPLICIT_TOKEN", std::string("1")}});
    CHECK_FALSE(storage::download("hf://owner/model", freshDir("hf")).ok);
  }
  testsupport::writeFile(home + "/token", "hf_stale");
  denied = storage::download("hf://owner/model", freshDir("hf"));
  CHECK_THAT(denied.message, Catch::Contains("check the token from the token file " + home));
  CHECK_THAT(denied.message, !Catch::Contains("hf_stale"));
  std::string mounted = testsupport::makeTempDir("hf-secret") + "/token";
  testsupport::writeFile(mounted, "  hf_secret  ");
  ScopedEnv path({{"HF_TOKEN_PATH", mounted}});
  auto fromPath = storage::download("hf://owner/model", freshDir("hf"));
  INFO(fromPath.message);
  CHECK(fromPath.ok);
}

TEST_CASE("Hugging Face (fake Hub API): a large file comes as ranged parts through the CDN",
          "[storage][hf][large][ranged]") {
  for (bool sizes : {true, false}) {
    INFO("sizes in the listing: " << sizes);
    std::string log = testsupport::makeTempDir("hflog") + "/cdn.jsonl";
    std::vector<std::string> args{"--token", "hf_secret", "--log", log};
    if (!sizes) args.push_back("--no-blob-sizes");
    storagetest::FakeHf hf(args);
    fs::create_directories(hf.root() + "/owner/llm");
    const uint64_t size = (uint64_t{70} << 20) + 13;
    storagetest::writePatternFile(hf.root() + "/owner/llm/model.safetensors", size);
    testsupport::writeFile(hf.root() + "/owner/llm/config.json", "{}");
    ScopedEnv env({{"HF_ENDPOINT", hf.endpoint()},
                   {"HF_TOKEN", "hf_secret"},
                   {"HUGGING_FACE_HUB_TOKEN", std::nullopt}});
    std::string dest = freshDir("hf");
    auto status = storage::download("hf://owner/llm", dest);
    INFO(status.message);
    REQUIRE(status.ok);
    CHECK(storagetest::sameContent(hf.root() + "/owner/llm/model.safetensors",
                                   dest + "/model.safetensors"));
    CHECK(testsupport::readFile(dest + "/config.json") == "{}");
    std::set<std::string> ranges;
    for (const auto& line : storagetest::jsonLines(log)) {
      if (line["range"].is_string()) ranges.insert(line["range"].get<std::string>());
    }
    // A mirror without sizes gets one plain GET per file.
    CHECK(ranges == (sizes ? std::set<std::string>{"bytes=0-33554431", "bytes=33554432-67108863",
                                                   "bytes=67108864-73400332"}
                           : std::set<std::string>{}));
  }
}

TEST_CASE("Local paths, file:// and pvc:// copy files in", "[storage][local]") {
  std::string source = testsupport::makeTempDir("local");
  fs::create_directories(source + "/claim-root/models/m1/sub");
  testsupport::writeFile(source + "/claim-root/models/m1/a.bin", "a");
  testsupport::writeFile(source + "/claim-root/models/m1/sub/b.bin", "b");
  ScopedEnv env({{"KSERVE_PVC_MOUNT_ROOT", source + "/claim-root"}});
  std::string dest = freshDir("local");
  REQUIRE(storage::download("pvc://my-claim/models/m1", dest).ok);
  CHECK(listFiles(dest) == Files{"a.bin", "sub/b.bin"});
  std::string file = freshDir("local");
  REQUIRE(storage::download("file://" + source + "/claim-root/models/m1/a.bin", file).ok);
  CHECK(listFiles(file) == Files{"a.bin"});
  auto missing = storage::download(source + "/absent", freshDir("local"));
  CHECK_FALSE(missing.ok);
  CHECK_THAT(missing.message, Catch::Contains("no such file"));
}
