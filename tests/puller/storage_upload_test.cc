// Uploads to real storage servers on loopback (s3rver, azurite) and to the fake of the GCS JSON
// API (no GCS server is packaged to run here); every object is read back and compared byte for
// byte: S3 and Azure through the download code (tested against the same servers), GCS from the
// fake's files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "puller/storage/s3.h"
#include "puller/storage/upload.h"
#include "puller/storage/util.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using storage::BlobService;
using storage::Uploader;
using storage::UploadOptions;
using storage::UploadReport;
using storagetest::ScopedEnv;
using Vars = std::map<std::string, std::optional<std::string>>;

namespace {

// Bytes of every value, in a pattern that a shifted or truncated copy would not match.
std::string patternBytes(size_t size, unsigned seed) {
  std::string out(size, '\0');
  uint32_t state = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    state = state * 1664525u + 1013904223u;
    out[i] = static_cast<char>(state >> 24);
  }
  return out;
}

std::unique_ptr<Uploader> make(BlobService service, const std::string& bucket,
                               const std::string& account = "") {
  std::string error;
  auto uploader = Uploader::create({service, bucket, account}, error);
  INFO(error);
  REQUIRE(uploader);
  return uploader;
}

std::string createError(BlobService service, const std::string& bucket,
                        const std::string& account = "") {
  std::string error;
  REQUIRE_FALSE(Uploader::create({service, bucket, account}, error));
  return error;
}

UploadOptions quickRetries(int attempts) {
  UploadOptions options;
  options.attempts = attempts;
  options.backoff = {.first = 10ms, .cap = 40ms};
  return options;
}

// Reads an object back with the download code: it lands under its base name.
std::string download(const std::string& uri, const std::string& key) {
  const std::string dir = testsupport::makeTempDir("readback") + "/d";
  const storage::Status status = storage::download(uri, dir);
  INFO(status.message);
  REQUIRE(status.ok);
  return testsupport::readFile(dir + "/" + key.substr(key.rfind('/') + 1));
}

std::map<std::string, std::optional<std::string>> azureEnv(const storagetest::Azurite& azurite) {
  return {{"AZURE_SERVICE_URL", azurite.endpoint() + "/"},
          {"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
          {"AZURE_STORAGE_ACCESS_KEY", storagetest::Azurite::kKey},
          {"AZURE_ACCOUNT_NAME", std::nullopt},
          {"AZURE_CLIENT_ID", std::nullopt},
          {"AZ_CLIENT_ID", std::nullopt},
          {"AZURE_ACCESS_TOKEN", std::nullopt}};
}

}  // namespace

TEST_CASE("S3: PutObject stores the object, read back byte for byte", "[storage][upload][s3]") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  auto uploader = make(BlobService::S3, "logs");
  const std::string key = "prefix/ns/isvc/predictor/logger/日本 a+b-0123-request.json";
  const std::string data = patternBytes((1 << 20) + 17, 1);
  UploadReport report;
  const storage::Status status = uploader->upload(key, data, "application/json", {}, &report);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(report.requests == 1);
  CHECK(report.parts == 0);
  CHECK(download("s3://logs/" + key, key) == data);
  CHECK(uploader->describe(key) == "s3://logs/" + key);

  // The same key again replaces the object; an empty object is an object.
  REQUIRE(uploader->upload(key, "second", "text/csv", {}).ok);
  CHECK(download("s3://logs/" + key, key) == "second");
  REQUIRE(uploader->upload("empty.json", "", "application/json", {}).ok);
  CHECK(download("s3://logs/empty.json", "empty.json").empty());
}

TEST_CASE("S3: above the threshold the object goes up in parts", "[storage][upload][s3]") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  auto uploader = make(BlobService::S3, "logs");
  UploadOptions options;
  options.multipartThreshold = 8 << 20;
  options.partSize = 5 << 20;
  const std::string data = patternBytes((12 << 20) + 123, 2);
  UploadReport report;
  const storage::Status status = uploader->upload("big/batch-request.parquet", data,
                                                  "application/octet-stream", options, &report);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(report.parts == 3);
  CHECK(report.requests == 5);  // initiate, three parts, complete
  CHECK(download("s3://logs/big/batch-request.parquet", "batch-request.parquet") == data);

  // At the threshold itself: one PutObject.
  REQUIRE(uploader->upload("small", data.substr(0, 8 << 20), "x/y", options, &report).ok);
  CHECK(report.parts == 0);
  CHECK(report.requests == 1);
}

TEST_CASE("S3: no credentials are refused at creation unless anonymous is asked for",
          "[storage][upload][s3]") {
  ScopedEnv env(storagetest::awsChainOff());
  CHECK(createError(BlobService::S3, "logs") ==
        "no AWS credentials found; tried: environment (AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY are not set), web identity (AWS_ROLE_ARN and "
        "AWS_WEB_IDENTITY_TOKEN_FILE are not both set), shared files (no [default] profile in "
        "/nonexistent/aws/credentials or /nonexistent/aws/config), container credentials "
        "(AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_CREDENTIALS_RELATIVE_URI are not "
        "set), instance metadata (disabled by AWS_EC2_METADATA_DISABLED). Set "
        "awsAnonymousCredential=true for unsigned requests");
  ScopedEnv anonymous(Vars{{"awsAnonymousCredential", "true"}});
  CHECK(make(BlobService::S3, "logs"));
  CHECK(createError(BlobService::S3, "") == "no bucket specified");
}

// s3rver 3.7 checks that a SigV4 access key id is known but not the signature itself (see
// storage_servers_test.cc), so the refusal it can show is an unknown key id.
TEST_CASE("S3: refused credentials fail at once, without the secret in the message",
          "[storage][upload][s3]") {
  storagetest::S3rver s3("logs");
  auto vars = s3.env();
  vars["AWS_ACCESS_KEY_ID"] = "NOBODY";
  vars["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-xyz";
  ScopedEnv env(vars);
  auto uploader = make(BlobService::S3, "logs");
  UploadReport report;
  const storage::Status status =
      uploader->upload("k", "data", "text/plain", quickRetries(5), &report);
  CHECK_FALSE(status.ok);
  CHECK(report.requests == 1);
  CHECK_THAT(status.message, Catch::StartsWith("cannot upload s3://logs/k: ") &&
                                 Catch::Contains("InvalidAccessKeyId") && Catch::Contains("403"));
  CHECK_THAT(status.message, !Catch::Contains("not-the-secret"));
}

TEST_CASE("uploads retry connection errors with backoff and then say how often they tried",
          "[storage][upload]") {
  const uint16_t closed = testsupport::freePort();
  ScopedEnv env({{"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(closed)},
                 {"AWS_ACCESS_KEY_ID", "AKID"},
                 {"AWS_SECRET_ACCESS_KEY", "secret"},
                 {"S3_USER_VIRTUAL_BUCKET", std::nullopt}});
  auto uploader = make(BlobService::S3, "logs");
  UploadReport report;
  const auto started = std::chrono::steady_clock::now();
  const storage::Status status =
      uploader->upload("k", "data", "text/plain", quickRetries(3), &report);
  CHECK_FALSE(status.ok);
  CHECK(report.requests == 3);
  CHECK(report.retries == 2);
  CHECK_THAT(status.message, Catch::Contains("after 3 attempts"));
  CHECK(std::chrono::steady_clock::now() - started >= 10ms);  // two backoffs of at least 5 ms
}

TEST_CASE("a cancelled upload stops retrying", "[storage][upload]") {
  const uint16_t closed = testsupport::freePort();
  ScopedEnv env({{"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(closed)},
                 {"AWS_ACCESS_KEY_ID", "AKID"},
                 {"AWS_SECRET_ACCESS_KEY", "secret"}});
  auto uploader = make(BlobService::S3, "logs");
  std::atomic<bool> cancel{false};
  UploadOptions options = quickRetries(1000);
  options.backoff = {.first = 200ms, .cap = 200ms};
  options.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancel = true;
  });
  UploadReport report;
  const auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(uploader->upload("k", "data", "text/plain", options, &report).ok);
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(report.requests < 10);
}

TEST_CASE("GCS: a media upload stores the object with its content type", "[storage][upload][gcs]") {
  const std::string dir = testsupport::makeTempDir("gcs-upload");
  storagetest::FakeGcs gcs({"--upload-log", dir + "/uploads.jsonl"});
  fs::create_directories(gcs.root() + "/logs");
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto uploader = make(BlobService::Gcs, "logs");
  const std::string key = "p/ns/x y+z/0123-response.csv";
  const std::string data = patternBytes(3 << 20, 3);
  UploadReport report;
  const storage::Status status = uploader->upload(key, data, "text/csv", {}, &report);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(report.requests == 1);
  CHECK(testsupport::readFile(gcs.root() + "/logs/" + key) == data);
  const auto logged = nlohmann::json::parse(testsupport::readFile(dir + "/uploads.jsonl"));
  CHECK(logged["name"] == key);
  CHECK(logged["contentType"] == "text/csv");
  CHECK(uploader->describe(key) == "gs://logs/" + key);
}

TEST_CASE("GCS: 503 answers are retried until the upload goes through", "[storage][upload][gcs]") {
  storagetest::FakeGcs gcs({"--fail-uploads", "2"});
  fs::create_directories(gcs.root() + "/logs");
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto uploader = make(BlobService::Gcs, "logs");
  UploadReport report;
  const storage::Status status =
      uploader->upload("a/b.json", "{}", "application/json", quickRetries(5), &report);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(report.requests == 3);
  CHECK(report.retries == 2);
  CHECK(testsupport::readFile(gcs.root() + "/logs/a/b.json") == "{}");
}

TEST_CASE("GCS: a server that keeps failing gives its error after the last attempt",
          "[storage][upload][gcs]") {
  storagetest::FakeGcs gcs({"--fail-uploads", "100"});
  fs::create_directories(gcs.root() + "/logs");
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto uploader = make(BlobService::Gcs, "logs");
  const storage::Status status = uploader->upload("k", "v", "text/plain", quickRetries(3));
  CHECK_FALSE(status.ok);
  CHECK(status.message == "cannot upload gs://logs/k: POST " + gcs.endpoint() +
                              "/upload/storage/v1/b/logs/o?<redacted>: HTTP 503 (Backend Error) "
                              "(after 3 attempts)");
}

TEST_CASE("GCS: a service account key gets a read-write token for uploads",
          "[storage][upload][gcs]") {
  const std::string dir = testsupport::makeTempDir("gcs-key");
  testsupport::Process keygen({"/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                               "rsa_keygen_bits:2048", "-out", dir + "/key.pem"});
  REQUIRE(keygen.wait(30s) == 0);
  testsupport::Process pub(
      {"/usr/bin/openssl", "pkey", "-in", dir + "/key.pem", "-pubout", "-out", dir + "/pub.pem"});
  REQUIRE(pub.wait(30s) == 0);
  storagetest::FakeGcs gcs(
      {"--public-key", dir + "/pub.pem", "--require-token", "--token-log", dir + "/claims.jsonl"});
  fs::create_directories(gcs.root() + "/logs");
  const nlohmann::json key = {{"type", "service_account"},
                              {"client_email", "logger@project.iam.gserviceaccount.com"},
                              {"private_key", testsupport::readFile(dir + "/key.pem")},
                              {"token_uri", gcs.endpoint() + "/token"}};
  testsupport::writeFile(dir + "/sa.json", key.dump());
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  CHECK_THAT(
      make(BlobService::Gcs, "logs")->upload("k", "v", "text/plain", quickRetries(1)).message,
      Catch::Contains("401"));

  ScopedEnv credentials({{"GOOGLE_APPLICATION_CREDENTIALS", dir + "/sa.json"}});
  auto uploader = make(BlobService::Gcs, "logs");
  for (int i = 0; i < 3; ++i) {
    const storage::Status status =
        uploader->upload("k" + std::to_string(i), "v", "text/plain", quickRetries(1));
    INFO(status.message);
    REQUIRE(status.ok);
  }
  CHECK(testsupport::readFile(gcs.root() + "/logs/k2") == "v");
  // One token for the three uploads, asked with the read-write scope.
  const std::string claims = testsupport::readFile(dir + "/claims.jsonl");
  CHECK(std::count(claims.begin(), claims.end(), '\n') == 1);
  CHECK(nlohmann::json::parse(claims)["scope"] ==
        "https://www.googleapis.com/auth/devstorage.read_write");
}

TEST_CASE("Azure: Put Blob with the account key, read back byte for byte",
          "[storage][upload][azure]") {
  storagetest::Azurite azurite;
  azurite.createContainer("logs");
  ScopedEnv env(azureEnv(azurite));
  auto uploader = make(BlobService::Azure, "logs", storagetest::Azurite::kAccount);
  const std::string key = "ns/isvc/logger/0123-fedcba9876543210-1-request.parquet";
  const std::string data = patternBytes((2 << 20) + 5, 4);
  UploadReport report;
  const storage::Status status =
      uploader->upload(key, data, "application/octet-stream", {}, &report);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(report.requests == 1);
  CHECK(download("https://devstoreaccount1.blob.core.windows.net/logs/" + key, key) == data);
  CHECK(uploader->describe(key) == "abfs://logs@devstoreaccount1/" + key);

  // The account comes from the endpoint's path when neither the URL nor the environment names
  // it (azurite's path-style URLs).
  auto fromEndpoint = make(BlobService::Azure, "logs");
  REQUIRE(fromEndpoint->upload("k é.json", "{}", "application/json", {}).ok);
  CHECK(download("https://devstoreaccount1.blob.core.windows.net/logs/k é.json", "k é.json") ==
        "{}");
}

TEST_CASE("Azure: a wrong key or a missing container fail without retries",
          "[storage][upload][azure]") {
  storagetest::Azurite azurite;
  azurite.createContainer("logs");
  auto vars = azureEnv(azurite);
  {
    ScopedEnv env(vars);
    UploadReport report;
    const storage::Status missing = make(BlobService::Azure, "nothere", "devstoreaccount1")
                                        ->upload("k", "v", "text/plain", quickRetries(4), &report);
    CHECK_FALSE(missing.ok);
    CHECK(report.requests == 1);
    CHECK_THAT(missing.message, Catch::Contains("ContainerNotFound") && Catch::Contains("404"));
  }
  vars["AZURE_STORAGE_ACCESS_KEY"] = storage::base64Encode("a wrong key of some length");
  ScopedEnv env(vars);
  const storage::Status wrong = make(BlobService::Azure, "logs", "devstoreaccount1")
                                    ->upload("k", "v", "text/plain", quickRetries(4));
  CHECK_FALSE(wrong.ok);
  CHECK_THAT(wrong.message, Catch::Contains("403"));
  CHECK_THAT(wrong.message, !Catch::Contains(*vars["AZURE_STORAGE_ACCESS_KEY"]));
}

TEST_CASE("Azure: the endpoint and credentials are checked at creation",
          "[storage][upload][azure]") {
  ScopedEnv env({{"AZURE_SERVICE_URL", std::nullopt},
                 {"AZURE_STORAGE_BLOB_ENDPOINT", std::nullopt},
                 {"AZURE_ACCOUNT_NAME", std::nullopt},
                 {"AZURE_STORAGE_ACCESS_KEY", std::nullopt},
                 {"AZURE_CLIENT_ID", std::nullopt},
                 {"AZ_CLIENT_ID", std::nullopt},
                 {"AZURE_TENANT_ID", std::nullopt},
                 {"AZURE_CLIENT_SECRET", std::nullopt},
                 {"AZURE_ACCESS_TOKEN", std::nullopt}});
  CHECK(createError(BlobService::Azure, "logs") ==
        "no Azure Blob endpoint: set AZURE_SERVICE_URL or AZURE_ACCOUNT_NAME, or name the account "
        "in the URL (abfs://container@account/...)");
  CHECK(createError(BlobService::Azure, "logs", "acct.dfs.core.windows.net") ==
        "no Azure credentials: set AZURE_STORAGE_ACCESS_KEY, AZURE_CLIENT_ID with "
        "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or AZURE_ACCESS_TOKEN");
  {
    ScopedEnv key(Vars{{"AZURE_STORAGE_ACCESS_KEY", "not base64!"}});
    CHECK(createError(BlobService::Azure, "logs", "acct") ==
          "AZURE_STORAGE_ACCESS_KEY is not valid base64");
  }
  {
    ScopedEnv principal(Vars{{"AZURE_CLIENT_ID", "id"}, {"AZURE_CLIENT_SECRET", "secret"}});
    CHECK(createError(BlobService::Azure, "logs", "acct") ==
          "AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is missing");
  }
  {
    ScopedEnv workload(Vars{{"AZURE_CLIENT_ID", "id"}, {"AZURE_FEDERATED_TOKEN_FILE", "/t"}});
    CHECK(createError(BlobService::Azure, "logs", "acct") ==
          "AZURE_FEDERATED_TOKEN_FILE is set but AZURE_TENANT_ID is missing");
  }
  ScopedEnv token({{"AZURE_ACCESS_TOKEN", "t"}, {"AZURE_ACCOUNT_NAME", "named"}});
  const auto uploader = make(BlobService::Azure, "logs", "acct.dfs.core.windows.net");
  CHECK(uploader->describe("k") == "abfs://logs@acct.dfs.core.windows.net/k");
}

// s3rver does not check SigV4 signatures; this fake does, with its own implementation of AWS's
// algorithm (tests/support/storage_sigv4_s3.py), for every request of a PutObject and of a
// multipart upload, keys with spaces, '+' and UTF-8 included.
TEST_CASE("S3: every upload request carries a signature an independent SigV4 check accepts",
          "[storage][upload][s3]") {
  const uint16_t port = testsupport::freePort();
  testsupport::Process fake({"/usr/bin/env", "python3",
                             testsupport::sourcePath("tests/support/storage_sigv4_s3.py"), "--port",
                             std::to_string(port), "--access-key", "AKIDEXAMPLE", "--secret-key",
                             "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"});
  REQUIRE(testsupport::waitForPort(port, 15s));
  Vars vars{{"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(port)},
            {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
            {"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
            {"AWS_SESSION_TOKEN", "a session token/with+signs="},
            {"AWS_REGION", "eu-west-3"},
            {"S3_USER_VIRTUAL_BUCKET", std::nullopt},
            {"awsAnonymousCredential", std::nullopt}};
  ScopedEnv env(vars);
  auto uploader = make(BlobService::S3, "logs");
  const std::string key = "p/日本 a+b=c;d/0123-fedcba9876543210-1-request.json";
  UploadReport report;
  storage::Status status = uploader->upload(key, "{\"a\":1}", "application/json", {}, &report);
  INFO(status.message << "\n" << fake.output());
  REQUIRE(status.ok);
  CHECK(report.requests == 1);

  UploadOptions options;
  options.multipartThreshold = 1 << 20;
  options.partSize = 1 << 20;
  const std::string data = patternBytes((3 << 20) + 1, 5);
  status = uploader->upload(key + ".big", data, "application/octet-stream", options, &report);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(report.parts == 4);
  CHECK(report.retries == 0);
  const storage::S3Config config = storage::s3ConfigFromEnv();
  const storage::HttpResponse read = storage::httpFetch(
      storage::s3Request(config, "logs", "GET", key + ".big", {}, storage::sha256Hex("")));
  REQUIRE(read.status == 200);
  CHECK(read.body == data);

  vars["AWS_SECRET_ACCESS_KEY"] = "not-the-secret";
  ScopedEnv wrong(vars);
  status = make(BlobService::S3, "logs")->upload(key, "x", "text/plain", quickRetries(3), &report);
  CHECK_FALSE(status.ok);
  CHECK(report.requests == 1);
  CHECK_THAT(status.message, Catch::Contains("SignatureDoesNotMatch (HTTP 403)"));
}
