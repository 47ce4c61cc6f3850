// The Google credential chain (puller/storage/gcp_credentials.h) against the fake of Google's
// credential endpoints (tests/support/storage_fake_google_auth.py: none of them can run off
// Google Cloud) and the fake GCS, through the storage-initializer binary and the library the
// puller uses. The metadata address is always a loopback port here (GCE_METADATA_HOST), never
// 169.254.169.254.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "puller/storage/parallel.h"
#include "puller/storage/storage.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using storagetest::ScopedEnv;

using Run = storagetest::InitializerRun;
using storagetest::checkNoSecret;
using storagetest::jsonLines;
using storagetest::runInitializer;

namespace {

constexpr const char* kReadOnly = "https://www.googleapis.com/auth/devstorage.read_only";

std::vector<json> requestsTo(const std::string& log, const std::string& pathPrefix) {
  std::vector<json> out;
  for (auto& entry : jsonLines(log)) {
    if (entry["path"].get<std::string>().starts_with(pathPrefix)) out.push_back(entry);
  }
  return out;
}

// The distinct bearer tokens the fake GCS received, in order of first use.
std::vector<std::string> tokensSeen(const std::string& authLog) {
  std::vector<std::string> tokens;
  for (auto& entry : jsonLines(authLog)) {
    std::string token = entry["token"];
    if (std::find(tokens.begin(), tokens.end(), token) == tokens.end()) tokens.push_back(token);
  }
  return tokens;
}

// Every token the credential fake issued, which must appear in no output.
std::vector<std::string> issued(const std::string& file) {
  std::vector<std::string> tokens;
  if (!fs::exists(file)) return tokens;
  std::istringstream in(testsupport::readFile(file));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) tokens.push_back(line.substr(0, line.find(' ')));  // "<token> <expiry>"
  }
  return tokens;
}

// A bucket "private" with a model of five files below m/, served only to accepted tokens.
struct Setup {
  std::string dir = testsupport::makeTempDir("gcp-creds");
  std::string issuedFile = dir + "/issued";
  std::string authLog = dir + "/auth.jsonl";
  std::string requestLog = dir + "/requests.jsonl";
  std::string subjectFile = dir + "/subject-token";
  std::unique_ptr<storagetest::PythonFake> google;
  std::unique_ptr<storagetest::FakeGcs> gcs;

  explicit Setup(std::vector<std::string> googleArgs = {}, bool requireToken = true) {
    testsupport::writeFile(subjectFile, "subject-1\n");
    std::vector<std::string> args{"--issued",
                                  issuedFile,
                                  "--log",
                                  requestLog,
                                  "--subject-token-file",
                                  subjectFile,
                                  "--audience",
                                  "//iam.googleapis.com/projects/1/locations/global/"
                                  "workloadIdentityPools/pool/providers/kube"};
    args.insert(args.end(), googleArgs.begin(), googleArgs.end());
    google = std::make_unique<storagetest::PythonFake>("storage_fake_google_auth.py", args);
    std::vector<std::string> gcsArgs{"--accept-tokens", issuedFile, "--auth-log", authLog};
    if (requireToken) gcsArgs.push_back("--require-token");
    gcs = std::make_unique<storagetest::FakeGcs>(gcsArgs);
    fs::create_directories(gcs->root() + "/private/m/sub");
    for (const char* name : {"a.bin", "b.bin", "c.bin", "d.bin", "sub/e.bin"}) {
      testsupport::writeFile(gcs->root() + "/private/m/" + name, name);
    }
  }

  std::map<std::string, std::string> env() const {
    return {{"STORAGE_EMULATOR_HOST", gcs->endpoint()}, {"GCE_METADATA_HOST", google->hostPort()}};
  }

  void checkModel(const std::string& dest) const {
    CHECK(storagetest::listFiles(dest) ==
          std::set<std::string>{"a.bin", "b.bin", "c.bin", "d.bin", "sub/e.bin"});
    CHECK(testsupport::readFile(dest + "/sub/e.bin") == "sub/e.bin");
  }
};

std::string writeJson(const std::string& path, const json& value) {
  testsupport::writeFile(path, value.dump());
  return path;
}

// An authorized_user file for the fake's refresh grant (client cid/csecret).
json authorizedUser(const Setup& s, const std::string& refreshToken = "rtoken") {
  return {{"type", "authorized_user"},
          {"client_id", "cid"},
          {"client_secret", "csecret"},
          {"refresh_token", refreshToken},
          {"token_uri", s.google->endpoint() + "/token"}};
}

}  // namespace

TEST_CASE("GCP metadata server: one token for a parallel download, sent to GCS, never logged",
          "[storage][gcp][initializer]") {
  Setup s;
  Run run = runInitializer({"gs://private/m", s.dir + "/out"}, s.env(),
                           {"GOOGLE_APPLICATION_CREDENTIALS"});
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto asked = requestsTo(s.requestLog, "/computeMetadata/");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0]["method"] == "GET");
  CHECK(asked[0]["headers"]["Metadata-Flavor"] == "Google");
  CHECK(asked[0]["query"]["scopes"] == json::array({kReadOnly}));
  // Three listing pages and five objects, all with the one token.
  CHECK(jsonLines(s.authLog).size() == 8);
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"metadata-token-1"});
  CHECK_THAT(run.output, Catch::Contains("gs://private: using the metadata server's service "
                                         "account token (" +
                                         s.google->hostPort() + ")"));
  checkNoSecret(run.output, issued(s.issuedFile));
}

TEST_CASE("GCP metadata server: the token is cached per process and refreshed before it expires",
          "[storage][gcp]") {
  Setup s({"--lifetime", "3"});
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", s.google->hostPort()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  REQUIRE(storage::download("gs://private/m", s.dir + "/one").ok);
  REQUIRE(storage::download("gs://private/m", s.dir + "/two").ok);
  // Shared by the second download: the token is 3 s long and refreshes at 2.25 s.
  CHECK(requestsTo(s.requestLog, "/computeMetadata/").size() == 1);
  std::this_thread::sleep_for(2400ms);
  auto status = storage::download("gs://private/m", s.dir + "/three");
  INFO(status.message);
  REQUIRE(status.ok);
  s.checkModel(s.dir + "/three");
  CHECK(requestsTo(s.requestLog, "/computeMetadata/").size() == 2);
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"metadata-token-1", "metadata-token-2"});
}

TEST_CASE("GCP: a download that outlives its token switches to a fresh one mid-way",
          "[storage][gcp]") {
  // Tokens live 3 s and GCS refuses them after; four rounds of kFileConcurrency objects at
  // 0.8 s each take about 3.2 s.
  Setup s({"--lifetime", "3"});
  storagetest::FakeGcs slow({"--require-token", "--accept-tokens", s.issuedFile, "--auth-log",
                             s.dir + "/slow-auth.jsonl", "--media-delay", "0.8", "--page-size",
                             "100"});
  fs::create_directories(slow.root() + "/big/m");
  const size_t objects = 4 * storage::kFileConcurrency;
  for (size_t i = 0; i < objects; ++i) {
    testsupport::writeFile(slow.root() + "/big/m/part-" + std::to_string(i), std::to_string(i));
  }
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", slow.endpoint()},
                 {"GCE_METADATA_HOST", s.google->hostPort()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto status = storage::download("gs://big/m", s.dir + "/out");
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(storagetest::listFiles(s.dir + "/out").size() == objects);
  CHECK(tokensSeen(s.dir + "/slow-auth.jsonl") ==
        std::vector<std::string>{"metadata-token-1", "metadata-token-2"});
}

TEST_CASE("GCP metadata server: 503 answers while it starts are retried", "[storage][gcp]") {
  Setup s({"--metadata-fail", "2"});
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", s.google->hostPort()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto status = storage::download("gs://private/m", s.dir + "/out");
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(requestsTo(s.requestLog, "/computeMetadata/").size() == 3);
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"metadata-token-1"});
}

TEST_CASE("GCP: no credentials anywhere, a private bucket fails naming what was tried, quickly",
          "[storage][gcp][initializer]") {
  Setup s;
  const std::string nothing = "127.0.0.1:" + std::to_string(testsupport::freePort());
  auto started = std::chrono::steady_clock::now();
  Run run =
      runInitializer({"gs://private/m", s.dir + "/out"},
                     {{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()}, {"GCE_METADATA_HOST", nothing}},
                     {"GOOGLE_APPLICATION_CREDENTIALS"});
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(run.status == 1);
  CHECK_THAT(
      run.output,
      Catch::Contains(
          "storage-initializer: failed to download gs://private/m: gs://private/m: unable to "
          "list objects: GET " +
          s.gcs->endpoint() +
          "/storage/v1/b/private/o?<redacted>: HTTP 401 (Anonymous caller "
          "does not have storage.objects.list access); the request was "
          "anonymous: no credentials (GOOGLE_APPLICATION_CREDENTIALS is unset "
          "and no metadata server answered at " +
          nothing + ")\n"));
}

TEST_CASE("GCP: a public bucket is read anonymously when no credential exists", "[storage][gcp]") {
  Setup s({}, false);
  const std::string nothing = "127.0.0.1:" + std::to_string(testsupport::freePort());
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", nothing},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto status = storage::download("gs://private/m", s.dir + "/out");
  INFO(status.message);
  REQUIRE(status.ok);
  s.checkModel(s.dir + "/out");
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{""});
}

TEST_CASE("GCP: a metadata address that answers 404 (another cloud's) means anonymous",
          "[storage][gcp]") {
  Setup s({}, false);
  // Not Google's metadata server: the GCS fake itself answers 404 on the metadata path.
  const std::string notGoogle = s.gcs->endpoint().substr(7);
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", notGoogle},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  auto status = storage::download("gs://private/m", s.dir + "/out");
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{""});
  // Private now: the message says why the request was anonymous.
  storagetest::FakeGcs strict({"--require-token"});
  fs::create_directories(strict.root() + "/private/m");
  ScopedEnv strictEnv({{"STORAGE_EMULATOR_HOST", strict.endpoint()}});
  CHECK_THAT(
      storage::download("gs://private/m", s.dir + "/out2").message,
      Catch::EndsWith("the request was anonymous: no credentials "
                      "(GOOGLE_APPLICATION_CREDENTIALS is unset and the metadata server at " +
                      notGoogle + " has no service account token (HTTP 404))"));
}

TEST_CASE("GCP: with STORAGE_EMULATOR_HOST or NO_GCE_CHECK the metadata server is not asked",
          "[storage][gcp]") {
  Setup s({}, false);
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", std::nullopt},
                 {"GCE_METADATA_IP", s.google->hostPort()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}});
  REQUIRE(storage::download("gs://private/m", s.dir + "/out").ok);
  {
    ScopedEnv check({{"GCE_METADATA_HOST", s.google->hostPort()}, {"NO_GCE_CHECK", "True"}});
    REQUIRE(storage::download("gs://private/m", s.dir + "/out2").ok);
  }
  CHECK(requestsTo(s.requestLog, "/computeMetadata/").empty());
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{""});
}

TEST_CASE("GCP authorized user: refresh token grant, and each refusal says which credential",
          "[storage][gcp][initializer]") {
  Setup s({"--client-id", "cid", "--client-secret", "csecret", "--refresh-token", "rtoken"});
  const std::string user = writeJson(s.dir + "/user.json", authorizedUser(s));
  auto environment = s.env();
  environment["GOOGLE_APPLICATION_CREDENTIALS"] = user;
  Run run = runInitializer({"gs://private/m", s.dir + "/out"}, environment);
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto asked = requestsTo(s.requestLog, "/token");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0]["body"] == json{{"grant_type", "refresh_token"},
                                 {"client_id", "cid"},
                                 {"client_secret", "csecret"},
                                 {"refresh_token", "rtoken"}});
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"user-token-1"});
  CHECK(requestsTo(s.requestLog, "/computeMetadata/").empty());
  checkNoSecret(run.output, issued(s.issuedFile));
  checkNoSecret(run.output, {"csecret", "rtoken"});

  // The token endpoint refuses the refresh token.
  const std::string revoked =
      writeJson(s.dir + "/revoked.json", authorizedUser(s, "revoked-refresh-token"));
  environment["GOOGLE_APPLICATION_CREDENTIALS"] = revoked;
  run = runInitializer({"gs://private/m", s.dir + "/out2"}, environment);
  CHECK(run.status == 1);
  CHECK_THAT(
      run.output,
      Catch::Contains(
          "storage-initializer: failed to download gs://private/m: gs://private/m: cannot get "
          "a Google access token with the authorized user credentials in "
          "GOOGLE_APPLICATION_CREDENTIALS (" +
          revoked + "): POST " + s.google->endpoint() +
          "/token: HTTP 400 (invalid_grant: Bad Request)\n"));
  checkNoSecret(run.output, {"csecret", "revoked-refresh-token"});

  // GCS refuses the token: a storage server that trusts none of this fake's tokens.
  storagetest::FakeGcs strict({"--require-token"});
  fs::create_directories(strict.root() + "/private/m");
  testsupport::writeFile(strict.root() + "/private/m/a.bin", "a");
  environment["GOOGLE_APPLICATION_CREDENTIALS"] = user;
  environment["STORAGE_EMULATOR_HOST"] = strict.endpoint();
  run = runInitializer({"gs://private/m", s.dir + "/out3"}, environment);
  CHECK(run.status == 1);
  CHECK_THAT(
      run.output,
      Catch::Contains(
          "storage-initializer: failed to download gs://private/m: gs://private/m: unable to "
          "list objects: GET " +
          strict.endpoint() +
          "/storage/v1/b/private/o?<redacted>: HTTP 401 (Invalid Credentials); "
          "the request carried a token from the authorized user credentials "
          "in GOOGLE_APPLICATION_CREDENTIALS (" +
          user + ")\n"));
  checkNoSecret(run.output, issued(s.issuedFile));
}

TEST_CASE("GCP external_account: STS exchange of the file's subject token, then impersonation",
          "[storage][gcp][initializer]") {
  Setup s;
  const std::string file = writeJson(
      s.dir + "/wif.json",
      {{"type", "external_account"},
       {"audience",
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/"
        "kube"},
       {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"},
       {"token_url", s.google->endpoint() + "/v1/token"},
       {"service_account_impersonation_url",
        s.google->endpoint() +
            "/v1/projects/-/serviceAccounts/models@p.iam.gserviceaccount.com:generateAccessToken"},
       {"credential_source", {{"file", s.subjectFile}}}});
  auto environment = s.env();
  environment["GOOGLE_APPLICATION_CREDENTIALS"] = file;
  Run run = runInitializer({"gs://private/m", s.dir + "/out"}, environment);
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto exchanges = requestsTo(s.requestLog, "/v1/token");
  REQUIRE(exchanges.size() == 1);
  CHECK(exchanges[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded");
  CHECK(exchanges[0]["body"] ==
        json{{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
             {"audience",
              "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/"
              "providers/kube"},
             {"scope", "https://www.googleapis.com/auth/cloud-platform"},
             {"requested_token_type", "urn:ietf:params:oauth:token-type:access_token"},
             {"subject_token", "subject-1"},
             {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"}});
  auto impersonations = requestsTo(s.requestLog, "/v1/projects/");
  REQUIRE(impersonations.size() == 1);
  CHECK(impersonations[0]["headers"]["Authorization"] == "Bearer sts-token-1");
  CHECK(impersonations[0]["body"] == json{{"scope", {kReadOnly}}, {"lifetime", "3600s"}});
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"impersonated-token-2"});
  CHECK_THAT(run.output,
             Catch::Contains("using the workload identity federation credentials in "
                             "GOOGLE_APPLICATION_CREDENTIALS (" +
                             file + ") impersonating models@p.iam.gserviceaccount.com"));
  checkNoSecret(run.output, issued(s.issuedFile));
  checkNoSecret(run.output, {"subject-1"});
}

TEST_CASE("GCP external_account: the rotated subject token is read again on refresh",
          "[storage][gcp]") {
  Setup s({"--lifetime", "3"});
  const std::string file = writeJson(
      s.dir + "/wif.json",
      {{"type", "external_account"},
       {"audience",
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/"
        "kube"},
       {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"},
       {"token_url", s.google->endpoint() + "/v1/token"},
       {"credential_source", {{"file", s.subjectFile}}}});
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", s.google->hostPort()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", file}});
  REQUIRE(storage::download("gs://private/m", s.dir + "/one").ok);
  // The kubelet rotates the projected token; the fake now accepts only the new one.
  testsupport::writeFile(s.subjectFile, "subject-2\n");
  std::this_thread::sleep_for(2400ms);
  auto status = storage::download("gs://private/m", s.dir + "/two");
  INFO(status.message);
  REQUIRE(status.ok);
  auto exchanges = requestsTo(s.requestLog, "/v1/token");
  REQUIRE(exchanges.size() == 2);
  CHECK(exchanges[0]["body"]["subject_token"] == "subject-1");
  CHECK(exchanges[1]["body"]["subject_token"] == "subject-2");
  // Without impersonation the exchange asks for the storage scope itself.
  CHECK(exchanges[1]["body"]["scope"] == kReadOnly);
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"sts-token-1", "sts-token-2"});
}

TEST_CASE("GCP external_account: a url subject token source with a JSON field", "[storage][gcp]") {
  Setup s;
  const std::string file = writeJson(
      s.dir + "/wif.json",
      {{"type", "external_account"},
       {"audience",
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/"
        "kube"},
       {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"},
       {"token_url", s.google->endpoint() + "/v1/token"},
       {"credential_source",
        {{"url", s.google->endpoint() + "/subject"},
         {"headers", {{"X-Subject", "yes"}}},
         {"format", {{"type", "json"}, {"subject_token_field_name", "id_token"}}}}}});
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", s.gcs->endpoint()},
                 {"GCE_METADATA_HOST", s.google->hostPort()},
                 {"GOOGLE_APPLICATION_CREDENTIALS", file}});
  auto status = storage::download("gs://private/m", s.dir + "/out");
  INFO(status.message);
  REQUIRE(status.ok);
  auto exchanges = requestsTo(s.requestLog, "/v1/token");
  REQUIRE(exchanges.size() == 1);
  CHECK(exchanges[0]["body"]["subject_token"] == "subject-1");
}

TEST_CASE("GCP: an unsupported or unreadable credentials file is a clear error", "[storage][gcp]") {
  std::string dir = testsupport::makeTempDir("gcp-bad");
  const std::string nothing = "127.0.0.1:" + std::to_string(testsupport::freePort());
  ScopedEnv env({{"STORAGE_EMULATOR_HOST", "http://" + nothing}, {"GCE_METADATA_HOST", nothing}});
  {
    ScopedEnv file({{"GOOGLE_APPLICATION_CREDENTIALS",
                     writeJson(dir + "/x.json", {{"type", "external_account_authorized_user"}})}});
    CHECK(storage::download("gs://b/m", dir + "/out").message ==
          "gs://b/m: unsupported credentials type \"external_account_authorized_user\" in "
          "GOOGLE_APPLICATION_CREDENTIALS (" +
              dir +
              "/x.json); expected service_account, authorized_user, external_account or "
              "impersonated_service_account");
  }
  {
    ScopedEnv file({{"GOOGLE_APPLICATION_CREDENTIALS",
                     writeJson(dir + "/imp.json",
                               {{"type", "impersonated_service_account"},
                                {"service_account_impersonation_url",
                                 "https://iamcredentials.googleapis.com/v1/projects/-/"
                                 "serviceAccounts/t@p.iam.gserviceaccount.com:"
                                 "generateAccessToken"},
                                {"source_credentials", {{"type", "gdch_service_account"}}}})}});
    CHECK(storage::download("gs://b/m", dir + "/out").message ==
          "gs://b/m: the impersonated_service_account credentials in "
          "GOOGLE_APPLICATION_CREDENTIALS (" +
              dir +
              "/imp.json) need a service_account_impersonation_url naming the account and "
              "source_credentials of type service_account, authorized_user or external_account");
  }
  {
    ScopedEnv file({{"GOOGLE_APPLICATION_CREDENTIALS", dir + "/absent.json"}});
    CHECK(storage::download("gs://b/m", dir + "/out").message ==
          "gs://b/m: cannot read the GOOGLE_APPLICATION_CREDENTIALS file " + dir + "/absent.json");
  }
}

TEST_CASE(
    "GCP impersonated_service_account: the source's token buys the target's, through "
    "delegates",
    "[storage][gcp][initializer]") {
  const std::string delegate = "hop@p.iam.gserviceaccount.com";
  Setup s({"--client-id", "cid", "--client-secret", "csecret", "--refresh-token", "rtoken",
           "--delegate", delegate});
  auto impersonation = [&](const json& delegates) {
    return json{
        {"type", "impersonated_service_account"},
        {"service_account_impersonation_url",
         s.google->endpoint() +
             "/v1/projects/-/serviceAccounts/target@p.iam.gserviceaccount.com:generateAccessToken"},
        {"delegates", delegates},
        {"source_credentials", authorizedUser(s)}};
  };
  const std::string file = writeJson(s.dir + "/imp.json", impersonation({delegate}));
  auto environment = s.env();
  environment["GOOGLE_APPLICATION_CREDENTIALS"] = file;
  Run run = runInitializer({"gs://private/m", s.dir + "/out"}, environment);
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  REQUIRE(requestsTo(s.requestLog, "/token").size() == 1);
  auto asked = requestsTo(s.requestLog, "/v1/projects/");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0]["headers"]["Authorization"] == "Bearer user-token-1");
  CHECK(asked[0]["body"] ==
        json{{"delegates", {delegate}}, {"scope", {kReadOnly}}, {"lifetime", "3600s"}});
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"impersonated-token-2"});
  CHECK_THAT(run.output,
             Catch::Contains("using the credentials in GOOGLE_APPLICATION_CREDENTIALS (" + file +
                             ") impersonating target@p.iam.gserviceaccount.com with "
                             "authorized_user credentials"));
  checkNoSecret(run.output, issued(s.issuedFile));
  checkNoSecret(run.output, {"csecret", "rtoken"});

  // IAM Credentials refuses a delegate the target does not trust; the error says so.
  environment["GOOGLE_APPLICATION_CREDENTIALS"] =
      writeJson(s.dir + "/stranger.json", impersonation({"stranger@p.iam.gserviceaccount.com"}));
  run = runInitializer({"gs://private/m", s.dir + "/out2"}, environment);
  CHECK(run.status == 1);
  CHECK_THAT(run.output, Catch::Contains("HTTP 403") && Catch::Contains("delegate not permitted"));
  checkNoSecret(run.output, issued(s.issuedFile));
}

TEST_CASE("GCP: the file gcloud writes is used when GOOGLE_APPLICATION_CREDENTIALS is unset",
          "[storage][gcp][initializer]") {
  Setup s({"--client-id", "cid", "--client-secret", "csecret", "--refresh-token", "rtoken"});
  const std::string config = s.dir + "/gcloud";
  fs::create_directories(config);
  const std::string file =
      writeJson(config + "/application_default_credentials.json", authorizedUser(s));
  auto environment = s.env();
  environment["CLOUDSDK_CONFIG"] = config;
  Run run = runInitializer({"gs://private/m", s.dir + "/out"}, environment,
                           {"GOOGLE_APPLICATION_CREDENTIALS"});
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  CHECK(tokensSeen(s.authLog) == std::vector<std::string>{"user-token-1"});
  CHECK(requestsTo(s.requestLog, "/computeMetadata/").empty());
  CHECK_THAT(run.output,
             Catch::Contains("using the authorized user credentials in gcloud's application "
                             "default credentials (" +
                             file + ")"));
}
