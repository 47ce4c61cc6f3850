// The AWS credential chain (environment, web identity, container credentials, IMDSv2): the exact
// requests each step sends (checked by tests/support/storage_fake_aws_credentials.py, which
// exists because no STS, Pod Identity agent or metadata service runs off AWS), caching and
// refresh, the messages for "no credentials" and "refused", and downloads through the
// storage-initializer binary from s3rver with each step.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "puller/storage/aws_credentials.h"
#include "puller/storage/aws_profile.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using storagetest::FakeAwsCredentials;
using storagetest::S3rver;
using storagetest::ScopedEnv;
using Vars = std::map<std::string, std::optional<std::string>>;
using namespace std::chrono_literals;

using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

// The chain's secret in these tests; it must never appear in any output.
constexpr const char* kSecret = "fake-secret-Zq9XvB";

const std::string kNoCredentials =
    "no AWS credentials found; tried: environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "are not set), web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not both set), "
    "shared files (no [default] profile in /nonexistent/aws/credentials or "
    "/nonexistent/aws/config), container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI and "
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI are not set), instance metadata (disabled by "
    "AWS_EC2_METADATA_DISABLED). Set awsAnonymousCredential=true for unsigned requests";

Vars merged(Vars base, const Vars& more) {
  for (const auto& [name, value] : more)
    base[name] = value;
  return base;
}

std::vector<nlohmann::json> parsed(const std::vector<std::string>& lines) {
  std::vector<nlohmann::json> out;
  for (const auto& line : lines)
    out.push_back(nlohmann::json::parse(line));
  return out;
}

// The failure line the initializer ends with (an info line about the download comes first).
std::string failureLine(const std::string& output) {
  size_t start = output.find("storage-initializer: failed");
  return start == std::string::npos ? output : output.substr(start);
}

}  // namespace

TEST_CASE("AWS chain: nothing configured fails with what was tried", "[storage][aws]") {
  ScopedEnv env(storagetest::awsChainOff());
  storage::aws::clearCredentialCache();
  auto result = storage::aws::resolveCredentials();
  CHECK_FALSE(result.ok);
  CHECK(result.error == kNoCredentials);
}

TEST_CASE("AWS chain: half a key pair in the environment is an error, not the next source",
          "[storage][aws]") {
  ScopedEnv env(merged(storagetest::awsChainOff(), {{"AWS_ACCESS_KEY_ID", "AKIDONLY"}}));
  auto result = storage::aws::resolveCredentials();
  CHECK_FALSE(result.ok);
  CHECK(result.error ==
        "AWS credentials in the environment are incomplete: AWS_SECRET_ACCESS_KEY is not set");
}

TEST_CASE("AWS chain: environment keys win over every other source", "[storage][aws]") {
  FakeAwsCredentials fake("AKIDSTS", kSecret, 3600);
  ScopedEnv env(merged(fake.env("web identity"), {{"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                                  {"AWS_SECRET_ACCESS_KEY", "env-secret"},
                                                  {"AWS_SESSION_TOKEN", "env-session"}}));
  auto result = storage::aws::resolveCredentials();
  REQUIRE(result.ok);
  CHECK(result.source == "environment");
  CHECK(result.credentials.accessKeyId == "AKIDENV");
  CHECK(result.credentials.sessionToken == "env-session");
  CHECK(fake.requests().empty());
}

TEST_CASE("AWS chain: the STS endpoint follows the region, the legacy switch and the override",
          "[storage][aws]") {
  Vars base{{"AWS_ENDPOINT_URL_STS", std::nullopt},
            {"AWS_STS_REGIONAL_ENDPOINTS", std::nullopt},
            {"AWS_REGION", std::nullopt},
            {"AWS_DEFAULT_REGION", std::nullopt}};
  {
    ScopedEnv env(base);
    CHECK(storage::aws::stsEndpointFromEnv() == "https://sts.amazonaws.com");
  }
  {
    ScopedEnv env(merged(
        base, {{"AWS_DEFAULT_REGION", "eu-west-1"}, {"AWS_STS_REGIONAL_ENDPOINTS", "regional"}}));
    CHECK(storage::aws::stsEndpointFromEnv() == "https://sts.eu-west-1.amazonaws.com");
  }
  {
    ScopedEnv env(merged(base, {{"AWS_REGION", "cn-north-1"}}));
    CHECK(storage::aws::stsEndpointFromEnv() == "https://sts.cn-north-1.amazonaws.com.cn");
  }
  {
    ScopedEnv env(
        merged(base, {{"AWS_REGION", "eu-west-1"}, {"AWS_STS_REGIONAL_ENDPOINTS", "legacy"}}));
    CHECK(storage::aws::stsEndpointFromEnv() == "https://sts.amazonaws.com");
  }
  {
    ScopedEnv env(merged(
        base, {{"AWS_REGION", "eu-west-1"}, {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/sts"}}));
    CHECK(storage::aws::stsEndpointFromEnv() == "http://127.0.0.1:1/sts");
  }
}

TEST_CASE(
    "AWS chain: web identity posts the form STS expects, caches, and refreshes with the "
    "token file as it is then",
    "[storage][aws]") {
  // Four-second credentials (whole seconds, so 3 to 4 s left when they arrive): refreshed half-way,
  // 1.5 to 2 s after they were issued.
  FakeAwsCredentials fake("AKIDSTS", kSecret, 4);
  ScopedEnv env(merged(fake.env("web identity"), {{"AWS_ROLE_SESSION_NAME", "kserve-test"}}));
  storage::aws::clearCredentialCache();

  auto first = storage::aws::resolveCredentials();
  REQUIRE(first.ok);
  CHECK(first.source == "web identity");
  CHECK(first.credentials.accessKeyId == "AKIDSTS");
  CHECK(first.credentials.secretAccessKey == kSecret);
  CHECK(first.credentials.sessionToken == "sts-token-1");

  // Parallel downloads share the cached credentials: no second exchange.
  std::vector<std::thread> threads;
  std::atomic<int> same{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (storage::aws::resolveCredentials().credentials.sessionToken == "sts-token-1") ++same;
    });
  }
  for (auto& thread : threads)
    thread.join();
  CHECK(same == 8);
  REQUIRE(fake.requests().size() == 1);

  auto request = parsed(fake.requests()).front();
  CHECK(request["method"] == "POST");
  CHECK(request["path"] == "/");
  CHECK(request["headers"]["content-type"] == "application/x-www-form-urlencoded; charset=utf-8");
  CHECK_FALSE(request["headers"].contains("authorization"));
  CHECK(request["form"] == nlohmann::json{{"Action", "AssumeRoleWithWebIdentity"},
                                          {"Version", "2011-06-15"},
                                          {"RoleArn", FakeAwsCredentials::kRoleArn},
                                          {"RoleSessionName", "kserve-test"},
                                          {"WebIdentityToken", "eyJ.projected-sa-token.one"}});

  // The kubelet rotates the projected token; the refresh must send the new one.
  testsupport::writeFile(fake.webIdentityTokenFile(), "eyJ.projected-sa-token.two\n");
  std::this_thread::sleep_for(2500ms);
  auto second = storage::aws::resolveCredentials();
  REQUIRE(second.ok);
  CHECK(second.credentials.sessionToken == "sts-token-2");
  auto requests = parsed(fake.requests());
  REQUIRE(requests.size() == 2);
  CHECK(requests[1]["form"]["WebIdentityToken"] == "eyJ.projected-sa-token.two");
}

TEST_CASE("AWS chain: a session name is generated when AWS_ROLE_SESSION_NAME is unset",
          "[storage][aws]") {
  FakeAwsCredentials fake("AKIDSTS", kSecret, 3600);
  ScopedEnv env(fake.env("web identity"));
  storage::aws::clearCredentialCache();
  REQUIRE(storage::aws::resolveCredentials().ok);
  auto request = parsed(fake.requests()).at(0);
  CHECK_THAT(request["form"]["RoleSessionName"].get<std::string>(),
             Catch::StartsWith("kserve-storage-"));
}

TEST_CASE("AWS chain: a refused web identity is an error naming the role and STS's answer",
          "[storage][aws]") {
  FakeAwsCredentials fake("AKIDSTS", kSecret, 3600, {"--refuse"});
  ScopedEnv env(fake.env("web identity"));
  storage::aws::clearCredentialCache();
  auto result = storage::aws::resolveCredentials();
  CHECK_FALSE(result.ok);
  CHECK(result.error == "AWS web identity (role " + std::string(FakeAwsCredentials::kRoleArn) +
                            ", STS " + fake.endpoint() +
                            "): AssumeRoleWithWebIdentity refused: InvalidIdentityToken: "
                            "Couldn't retrieve verification key from your identity provider "
                            "(HTTP 400)");
  // A final answer is not retried.
  CHECK(fake.requests().size() == 1);
}

TEST_CASE(
    "AWS chain: container credentials send the token file as Authorization, re-read on "
    "refresh",
    "[storage][aws]") {
  FakeAwsCredentials fake("AKIDPOD", kSecret, 4);
  ScopedEnv env(fake.env("container"));
  storage::aws::clearCredentialCache();
  auto first = storage::aws::resolveCredentials();
  REQUIRE(first.ok);
  CHECK(first.source == "container credentials");
  CHECK(first.credentials.accessKeyId == "AKIDPOD");
  CHECK(first.credentials.sessionToken == "container-token-1");
  testsupport::writeFile(fake.containerTokenFile(), "pod-identity-token-two\n");
  std::this_thread::sleep_for(2500ms);
  auto second = storage::aws::resolveCredentials();
  REQUIRE(second.ok);
  CHECK(second.credentials.sessionToken == "container-token-2");
  auto requests = parsed(fake.requests());
  REQUIRE(requests.size() == 2);
  CHECK(requests[0]["method"] == "GET");
  CHECK(requests[0]["path"] == "/v1/credentials");
  CHECK(requests[0]["headers"]["authorization"] == "pod-identity-token-one");
  CHECK(requests[1]["headers"]["authorization"] == "pod-identity-token-two");
}

TEST_CASE("AWS chain: container credentials over plain http only to the agent addresses",
          "[storage][aws]") {
  ScopedEnv env(merged(storagetest::awsChainOff(),
                       {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/v1/credentials"}}));
  storage::aws::clearCredentialCache();
  auto result = storage::aws::resolveCredentials();
  CHECK_FALSE(result.ok);
  CHECK(result.error ==
        "AWS container credentials (http://10.1.2.3/v1/credentials): plain http is only allowed "
        "to loopback, 169.254.170.2, 169.254.170.23 and fd00:ec2::23");
}

TEST_CASE("AWS chain: a refused container token is an error", "[storage][aws]") {
  FakeAwsCredentials fake("AKIDPOD", kSecret, 3600, {"--refuse"});
  ScopedEnv env(fake.env("container"));
  storage::aws::clearCredentialCache();
  auto result = storage::aws::resolveCredentials();
  CHECK_FALSE(result.ok);
  CHECK(result.error ==
        "AWS container credentials (" + fake.endpoint() + "/v1/credentials): refused: HTTP 403");
}

TEST_CASE("AWS chain: IMDSv2 asks for a session token, then the role, then its credentials",
          "[storage][aws]") {
  FakeAwsCredentials fake("AKIDNODE", kSecret, 3600);
  ScopedEnv env(fake.env("imds"));
  storage::aws::clearCredentialCache();
  auto result = storage::aws::resolveCredentials();
  REQUIRE(result.ok);
  CHECK(result.source == "instance metadata");
  CHECK(result.credentials.accessKeyId == "AKIDNODE");
  CHECK(result.credentials.sessionToken == "imds-token-1");
  auto requests = parsed(fake.requests());
  REQUIRE(requests.size() == 3);
  CHECK(requests[0]["method"] == "PUT");
  CHECK(requests[0]["path"] == "/latest/api/token");
  CHECK(requests[0]["headers"]["x-aws-ec2-metadata-token-ttl-seconds"] == "21600");
  CHECK(requests[1]["path"] == "/latest/meta-data/iam/security-credentials/");
  CHECK(requests[1]["headers"]["x-aws-ec2-metadata-token"] == "imds-session-0");
  CHECK(requests[2]["path"] == "/latest/meta-data/iam/security-credentials/kserve-node-role");
  CHECK(requests[2]["headers"]["x-aws-ec2-metadata-token"] == "imds-session-0");
}

TEST_CASE("AWS chain: an IMDSv1-only service is read without a token unless v1 is disabled",
          "[storage][aws]") {
  FakeAwsCredentials fake("AKIDNODE", kSecret, 3600, {"--imds-v1-only"});
  SECTION("v1 fallback") {
    ScopedEnv env(fake.env("imds"));
    storage::aws::clearCredentialCache();
    auto result = storage::aws::resolveCredentials();
    REQUIRE(result.ok);
    CHECK(result.credentials.sessionToken == "imds-token-1");
    auto requests = parsed(fake.requests());
    REQUIRE(requests.size() == 3);
    CHECK(requests[0]["method"] == "PUT");
    CHECK_FALSE(requests[1]["headers"].contains("x-aws-ec2-metadata-token"));
  }
  SECTION("AWS_EC2_METADATA_V1_DISABLED") {
    ScopedEnv env(merged(fake.env("imds"), {{"AWS_EC2_METADATA_V1_DISABLED", "true"}}));
    storage::aws::clearCredentialCache();
    auto result = storage::aws::resolveCredentials();
    CHECK_FALSE(result.ok);
    CHECK_THAT(result.error,
               Catch::Contains("instance metadata (token request refused: HTTP 405)"));
    CHECK(fake.requests().size() == 1);
  }
}

TEST_CASE("AWS chain: a metadata endpoint that does not answer ends the chain within a second",
          "[storage][aws]") {
  const uint16_t closed = testsupport::freePort();
  ScopedEnv env(merged(
      storagetest::awsChainOff(),
      {{"AWS_EC2_METADATA_DISABLED", std::nullopt},
       {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + std::to_string(closed)}}));
  storage::aws::clearCredentialCache();
  auto start = std::chrono::steady_clock::now();
  auto result = storage::aws::resolveCredentials();
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  CHECK_FALSE(result.ok);
  CHECK_THAT(result.error,
             Catch::StartsWith("no AWS credentials found; tried: ") &&
                 Catch::Contains("instance metadata (no answer from http://127.0.0.1:" +
                                 std::to_string(closed) + " within 1000 ms: ") &&
                 Catch::EndsWith(". Set awsAnonymousCredential=true for unsigned requests"));
}

// ---- through the storage-initializer binary, from s3rver ----

// s3rver 3.7 knows the access key id "S3RVER" and does not check signatures; each chain step
// hands out that key pair. The secret is S3RVER too, so the check that no secret is printed
// looks for it and for the session token.
TEST_CASE("AWS chain: the shared files' profile, as AWS_PROFILE chooses it", "[storage][aws]") {
  std::string dir = testsupport::makeTempDir("aws-profile");
  testsupport::writeFile(dir + "/credentials",
                         "[default]\n"
                         "aws_access_key_id = AKIDDEFAULT\n"
                         "aws_secret_access_key = default-secret\n"
                         "# a comment\n"
                         "[other]\r\n"
                         "AWS_ACCESS_KEY_ID=AKIDOTHER\r\n"
                         "aws_secret_access_key=other-secret\r\n"
                         "aws_session_token = other-session\r\n"
                         "[half]\n"
                         "aws_access_key_id = AKIDHALF\n");
  testsupport::writeFile(dir + "/config",
                         "[default]\n"
                         "region = eu-west-3\n"
                         "[profile cfg]\n"
                         "aws_access_key_id = AKIDCFG\n"
                         "aws_secret_access_key = cfg-secret\n"
                         "s3 =\n"
                         "  addressing_style = path\n"
                         "[profile other]\n"
                         "aws_access_key_id = AKIDIGNORED\n"
                         "region = ap-south-1\n"
                         "[bare]\n"
                         "aws_access_key_id = AKIDBARE\n"
                         "aws_secret_access_key = bare-secret\n");
  Vars files =
      merged(storagetest::awsChainOff(), {{"AWS_SHARED_CREDENTIALS_FILE", dir + "/credentials"},
                                          {"AWS_CONFIG_FILE", dir + "/config"},
                                          {"AWS_REGION", std::nullopt},
                                          {"AWS_DEFAULT_REGION", std::nullopt}});
  auto resolve = [&](std::optional<std::string> profile) {
    ScopedEnv env(merged(files, {{"AWS_PROFILE", profile}}));
    storage::aws::clearCredentialCache();
    return storage::aws::resolveCredentials();
  };
  auto fallback = resolve(std::nullopt);
  REQUIRE(fallback.ok);
  CHECK(fallback.source == "shared profile");
  CHECK(fallback.credentials.accessKeyId == "AKIDDEFAULT");
  CHECK(fallback.credentials.secretAccessKey == "default-secret");
  CHECK(fallback.credentials.sessionToken.empty());
  // The credentials file wins over the config file; keys are case-insensitive; CRLF is fine.
  auto other = resolve("other");
  REQUIRE(other.ok);
  CHECK(other.credentials.accessKeyId == "AKIDOTHER");
  CHECK(other.credentials.sessionToken == "other-session");
  auto config = resolve("cfg");
  REQUIRE(config.ok);
  CHECK(config.credentials.accessKeyId == "AKIDCFG");
  CHECK(config.credentials.secretAccessKey == "cfg-secret");
  // In the config file a profile's section is [profile <name>]; [bare] is none.
  auto bare = resolve("bare");
  CHECK_FALSE(bare.ok);
  CHECK(bare.error == "the AWS profile \"bare\" (AWS_PROFILE) is not in " + dir +
                          "/credentials or " + dir + "/config");
  auto half = resolve("half");
  CHECK_FALSE(half.ok);
  CHECK(half.error == "AWS profile \"half\": incomplete keys: aws_secret_access_key is not set");
  {
    ScopedEnv env(files);
    CHECK(storage::aws::configuredRegion() == "eu-west-3");
    CHECK(storage::aws::stsEndpointFromEnv() == "https://sts.eu-west-3.amazonaws.com");
  }
  {
    ScopedEnv env(merged(files, {{"AWS_PROFILE", "other"}}));
    CHECK(storage::aws::configuredRegion() == "ap-south-1");
  }
  {
    ScopedEnv env(merged(files, {{"AWS_DEFAULT_REGION", "us-west-2"}}));
    CHECK(storage::aws::configuredRegion() == "us-west-2");
  }
  for (const auto& result : {fallback, other, config, bare, half}) {
    for (const char* secret : {"default-secret", "other-secret", "cfg-secret", "bare-secret"})
      CHECK(result.error.find(secret) == std::string::npos);
  }
}

TEST_CASE("AWS chain: the profile's web identity and credential_process", "[storage][aws]") {
  std::string dir = testsupport::makeTempDir("aws-profile");
  Vars files = merged(storagetest::awsChainOff(), {{"AWS_CONFIG_FILE", dir + "/config"}});

  SECTION("role_arn with web_identity_token_file is web identity, as the variables are") {
    FakeAwsCredentials fake("AKIDSTS", kSecret, 3600);
    testsupport::writeFile(
        dir + "/config", std::string("[profile irsa]\nrole_arn = ") + FakeAwsCredentials::kRoleArn +
                             "\nweb_identity_token_file = " + fake.webIdentityTokenFile() +
                             "\nrole_session_name = from-profile\n");
    ScopedEnv env(
        merged(files, {{"AWS_PROFILE", "irsa"}, {"AWS_ENDPOINT_URL_STS", fake.endpoint()}}));
    storage::aws::clearCredentialCache();
    auto result = storage::aws::resolveCredentials();
    REQUIRE(result.ok);
    CHECK(result.source == "web identity");
    CHECK(result.credentials.secretAccessKey == kSecret);
    auto requests = parsed(fake.requests());
    REQUIRE(requests.size() == 1);
    CHECK(requests[0]["form"]["RoleArn"] == FakeAwsCredentials::kRoleArn);
    CHECK(requests[0]["form"]["RoleSessionName"] == "from-profile");
  }
  SECTION("credential_process: its JSON, quoting as shlex, and its failures in one line") {
    std::string script = dir + "/cred tool";
    testsupport::writeFile(
        script,
        "#!/bin/sh\n"
        "if [ \"$1\" = ok ]; then\n"
        "  printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"%s\", "
        "\"SessionToken\": \"proc-session\", \"Expiration\": \"2099-01-01T00:00:00Z\"}' \"$2\"\n"
        "elif [ \"$1\" = garbage ]; then echo not json\n"
        "else echo 'token service unreachable' >&2; exit 3; fi\n");
    fs::permissions(script, fs::perms::owner_all);
    auto run = [&](const std::string& arguments) {
      testsupport::writeFile(dir + "/config", "[default]\ncredential_process = \"" + script +
                                                  "\" " + arguments + "\n");
      ScopedEnv env(files);
      storage::aws::clearCredentialCache();
      return storage::aws::resolveCredentials();
    };
    auto ok = run(std::string("ok ") + kSecret);
    REQUIRE(ok.ok);
    CHECK(ok.source == "shared profile");
    CHECK(ok.credentials.accessKeyId == "AKIDPROC");
    CHECK(ok.credentials.secretAccessKey == kSecret);
    CHECK(ok.credentials.sessionToken == "proc-session");
    auto failed = run("fail");
    CHECK_FALSE(failed.ok);
    CHECK(failed.error == "AWS profile \"default\": credential_process " + script +
                              " exited with status 3: token service unreachable");
    auto garbage = run("garbage");
    CHECK_FALSE(garbage.ok);
    CHECK_THAT(garbage.error, Catch::Contains("did not print a JSON object with Version 1"));
  }
}

namespace {

constexpr const char* kBaseKey = "AKIDBASE";
constexpr const char* kBaseSecret = "base-secret-Hw3uPq";
constexpr const char* kFirstRole = "arn:aws:iam::111111111111:role/hop";
constexpr const char* kSecondRole = "arn:aws:iam::222222222222:role/models";

// The fake STS grants the two roles, to callers that sign with the base keys or with credentials
// it issued, and only with the external id.
std::vector<std::string> roleArgs() {
  return {"--source-access-key", kBaseKey,   "--source-secret-key", kBaseSecret,
          "--assume-role",       kFirstRole, "--assume-role",       kSecondRole,
          "--external-id",       "ext-7"};
}

std::string authorization(const nlohmann::json& request) {
  return request["headers"].value("authorization", "");
}

}  // namespace

TEST_CASE(
    "AWS chain: a profile's role (source_profile, credential_source) through signed "
    "AssumeRole",
    "[storage][aws]") {
  std::string dir = testsupport::makeTempDir("aws-roles");
  FakeAwsCredentials fake("AKIDROLE", kSecret, 3600, roleArgs());
  Vars files = merged(storagetest::awsChainOff(), {{"AWS_CONFIG_FILE", dir + "/config"},
                                                   {"AWS_ENDPOINT_URL_STS", fake.endpoint()},
                                                   {"AWS_REGION", "eu-west-1"}});
  const std::string base = std::string("[profile base]\naws_access_key_id = ") + kBaseKey +
                           "\naws_secret_access_key = " + kBaseSecret + "\n";
  auto resolve = [&](const std::string& config, const std::string& profile, Vars more = {}) {
    testsupport::writeFile(dir + "/config", config);
    Vars vars = merged(files, {{"AWS_PROFILE", profile}});
    ScopedEnv env(merged(vars, more));
    storage::aws::clearCredentialCache();
    return storage::aws::resolveCredentials();
  };

  SECTION("a chain of two roles: each hop signed with the credentials of the one before") {
    auto result = resolve(base + "[profile hop]\nrole_arn = " + kFirstRole +
                              "\nsource_profile = base\nexternal_id = ext-7\n"
                              "role_session_name = first-hop\n"
                              "[profile models]\nrole_arn = " +
                              kSecondRole +
                              "\nsource_profile = hop\nexternal_id = ext-7\n"
                              "duration_seconds = 900\n",
                          "models");
    INFO(result.error);
    REQUIRE(result.ok);
    CHECK(result.source == "shared profile");
    CHECK(result.credentials.accessKeyId == "AKIDROLE");
    CHECK(result.credentials.sessionToken == "sts-token-2");
    auto requests = parsed(fake.requests());
    REQUIRE(requests.size() == 2);
    CHECK(requests[0]["form"]["Action"] == "AssumeRole");
    CHECK(requests[0]["form"]["RoleArn"] == kFirstRole);
    CHECK(requests[0]["form"]["RoleSessionName"] == "first-hop");
    CHECK(requests[0]["form"]["ExternalId"] == "ext-7");
    CHECK_THAT(authorization(requests[0]),
               Catch::StartsWith(std::string("AWS4-HMAC-SHA256 Credential=") + kBaseKey + "/") &&
                   Catch::Contains("/eu-west-1/sts/aws4_request"));
    CHECK_FALSE(requests[0]["headers"].contains("x-amz-security-token"));
    CHECK(requests[1]["form"]["RoleArn"] == kSecondRole);
    CHECK(requests[1]["form"]["DurationSeconds"] == "900");
    CHECK_THAT(requests[1]["form"]["RoleSessionName"].get<std::string>(),
               Catch::StartsWith("kserve-storage-"));
    CHECK_THAT(authorization(requests[1]), Catch::Contains("Credential=AKIDROLE/"));
    CHECK(requests[1]["headers"]["x-amz-security-token"] == "sts-token-1");
  }
  SECTION("a profile that is its own source uses its keys") {
    auto result =
        resolve(std::string("[profile self]\naws_access_key_id = ") + kBaseKey +
                    "\naws_secret_access_key = " + kBaseSecret + "\nrole_arn = " + kFirstRole +
                    "\nsource_profile = self\nexternal_id = ext-7\n",
                "self");
    INFO(result.error);
    REQUIRE(result.ok);
    CHECK(result.credentials.accessKeyId == "AKIDROLE");
    auto requests = parsed(fake.requests());
    REQUIRE(requests.size() == 1);
    CHECK_THAT(authorization(requests[0]), Catch::Contains(std::string("Credential=") + kBaseKey));
  }
  SECTION("credential_source EcsContainer: the container's credentials assume the role") {
    auto result =
        resolve(std::string("[profile pod]\nrole_arn = ") + kFirstRole +
                    "\ncredential_source = EcsContainer\nexternal_id = ext-7\n",
                "pod",
                {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.endpoint() + "/v1/credentials"},
                 {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", fake.containerTokenFile()}});
    INFO(result.error);
    REQUIRE(result.ok);
    CHECK(result.credentials.sessionToken == "sts-token-1");
    auto requests = parsed(fake.requests());
    REQUIRE(requests.size() == 2);
    CHECK(requests[0]["path"] == "/v1/credentials");
    CHECK(requests[1]["headers"]["x-amz-security-token"] == "container-token-1");
  }
  SECTION("refusals and mistakes are errors that name the profile, never a secret") {
    struct Case {
      std::string config;
      std::string error;
    };
    const std::string role = std::string("role_arn = ") + kFirstRole + "\n";
    const std::vector<Case> cases{
        {"[profile p]\n" + role + "source_profile = p2\n[profile p2]\n" + role +
             "source_profile = p\n",
         "AWS profile \"p2\": source_profile makes a loop: p -> p2 -> p"},
        {"[profile p]\n" + role + "source_profile = absent\n",
         "AWS profile \"p\": source_profile \"absent\" is not in"},
        {"[profile p]\n" + role + "source_profile = empty\n[profile empty]\nregion = x\n",
         "AWS profile \"p\": source_profile \"empty\" holds no credentials"},
        {"[profile p]\n" + role,
         "role_arn needs exactly one of source_profile and credential_source"},
        {"[profile p]\n" + role + "source_profile = base\ncredential_source = Environment\n" + base,
         "role_arn needs exactly one of source_profile and credential_source"},
        {"[profile p]\nsso_session = corp\nsso_account_id = 1\n",
         "AWS profile \"p\": SSO profiles are not supported"},
        {"[profile p]\n" + role + "credential_source = Lambda\n",
         "credential_source Lambda is not one of Environment, Ec2InstanceMetadata, EcsContainer"},
        {"[profile p]\n" + role + "credential_source = Environment\n",
         "credential_source Environment found no credentials: environment (AWS_ACCESS_KEY_ID"},
        {"[profile p]\n" + role + "source_profile = base\nmfa_serial = arn:aws:iam::1:mfa/u\n" +
             base,
         "the role asks for an MFA code (mfa_serial), which a pod cannot enter"},
        {"[profile p]\n" + role + "source_profile = base\nexternal_id = wrong\n" + base,
         std::string("AWS profile \"p\": role ") + kFirstRole + ", STS " + fake.endpoint() +
             ": AssumeRole refused: AccessDenied: not authorized to perform: sts:AssumeRole "
             "(HTTP 403)"},
        {"[profile p]\nrole_arn = arn:aws:iam::3:role/other\nsource_profile = base\n"
         "external_id = ext-7\n" +
             base,
         "AssumeRole refused: AccessDenied"},
        {"[profile p]\n" + role +
             "source_profile = bad\nexternal_id = ext-7\n[profile bad]\naws_access_key_id = " +
             kBaseKey + "\naws_secret_access_key = not-the-secret\n",
         "AssumeRole refused: SignatureDoesNotMatch"},
    };
    for (const Case& c : cases) {
      INFO(c.config);
      auto result = resolve(c.config, "p");
      CHECK_FALSE(result.ok);
      CHECK_THAT(result.error, Catch::Contains(c.error));
      CHECK_THAT(result.error, !Catch::Contains(kBaseSecret) && !Catch::Contains("not-the-secret"));
    }
  }
}

TEST_CASE("storage-initializer downloads from S3 with keys from a mounted credentials file",
          "[storage][aws][initializer]") {
  S3rver s3;
  s3.put("m/model.bin", "weights");
  std::string dir = testsupport::makeTempDir("aws-profile");
  testsupport::writeFile(dir + "/credentials",
                         std::string("[models]\naws_access_key_id = ") + S3rver::kAccessKey +
                             "\naws_secret_access_key = " + S3rver::kSecretKey + "\n");
  Vars vars = merged(s3.env(), storagetest::awsChainOff());
  vars["AWS_SHARED_CREDENTIALS_FILE"] = dir + "/credentials";
  vars["AWS_PROFILE"] = "models";
  ScopedEnv env(vars);
  Run result = runInitializer({"s3://models/m", dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out/model.bin") == "weights");
  CHECK_THAT(result.output, Catch::Contains("AWS credentials from shared profile"));
  // s3rver refuses unknown key ids, so the download itself shows that these keys signed.
  vars["AWS_PROFILE"] = "absent";
  ScopedEnv absent(vars);
  Run missing = runInitializer({"s3://models/m", dir + "/missing"});
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output, Catch::Contains("the AWS profile \"absent\" (AWS_PROFILE) is not in"));
}

TEST_CASE("storage-initializer downloads from S3 as a role a mounted profile assumes",
          "[storage][aws][initializer]") {
  S3rver s3;
  s3.put("m/model.bin", "weights");
  // STS hands out s3rver's keys for the role; the profile holds only the base keys.
  FakeAwsCredentials fake(S3rver::kAccessKey, S3rver::kSecretKey, 3600, roleArgs());
  std::string dir = testsupport::makeTempDir("aws-role");
  testsupport::writeFile(dir + "/config", std::string("[profile base]\naws_access_key_id = ") +
                                              kBaseKey +
                                              "\naws_secret_access_key = " + kBaseSecret +
                                              "\n[profile models]\nrole_arn = " + kSecondRole +
                                              "\nsource_profile = base\nexternal_id = ext-7\n");
  Vars vars = merged(s3.env(), storagetest::awsChainOff());
  vars["AWS_CONFIG_FILE"] = dir + "/config";
  vars["AWS_PROFILE"] = "models";
  vars["AWS_ENDPOINT_URL_STS"] = fake.endpoint();
  ScopedEnv env(vars);
  Run result = runInitializer({"s3://models/m", dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out/model.bin") == "weights");
  CHECK(result.output.find(kBaseSecret) == std::string::npos);
  CHECK(result.output.find("sts-token-1") == std::string::npos);
  auto requests = parsed(fake.requests());
  REQUIRE(requests.size() == 1);
  CHECK(requests[0]["form"]["RoleArn"] == kSecondRole);
}

TEST_CASE("storage-initializer downloads from S3 with each step of the AWS chain",
          "[storage][aws][initializer]") {
  S3rver s3;
  s3.put("m/model.bin", "weights");
  FakeAwsCredentials fake(S3rver::kAccessKey, S3rver::kSecretKey, 3600);
  for (const std::string step : {"web identity", "container", "imds"}) {
    DYNAMIC_SECTION(step) {
      Vars vars = merged(s3.env(), fake.env(step));
      vars["AWS_ACCESS_KEY_ID"] = std::nullopt;
      vars["AWS_SECRET_ACCESS_KEY"] = std::nullopt;
      ScopedEnv env(vars);
      std::string dir = testsupport::makeTempDir("aws-chain");
      Run result = runInitializer({"s3://models/m", dir + "/out"});
      INFO(result.output);
      CHECK(result.status == 0);
      CHECK(testsupport::readFile(dir + "/out/model.bin") == "weights");
      CHECK(result.output.find(S3rver::kSecretKey) == std::string::npos);
      CHECK(result.output.find("-token-1") == std::string::npos);
      CHECK_FALSE(fake.requests().empty());
    }
  }
}

TEST_CASE("storage-initializer fails with the chain's message, word by word",
          "[storage][aws]"
          "[initializer]") {
  S3rver s3;
  s3.put("m/model.bin", "weights");
  std::string dir = testsupport::makeTempDir("aws-chain");
  SECTION("no credentials") {
    Vars vars = merged(s3.env(), storagetest::awsChainOff());
    ScopedEnv env(vars);
    Run result = runInitializer({"s3://models/m", dir + "/out"});
    CHECK(result.status == 1);
    CHECK(failureLine(result.output) ==
          "storage-initializer: failed to download s3://models/m: s3://models/m: " +
              kNoCredentials + "\n");
  }
  SECTION("refused web identity") {
    FakeAwsCredentials fake(S3rver::kAccessKey, kSecret, 3600, {"--refuse"});
    ScopedEnv env(merged(s3.env(), fake.env("web identity")));
    Run result = runInitializer({"s3://models/m", dir + "/out"});
    CHECK(result.status == 1);
    CHECK(failureLine(result.output) ==
          "storage-initializer: failed to download s3://models/m: s3://models/m: AWS web "
          "identity (role " +
              std::string(FakeAwsCredentials::kRoleArn) + ", STS " + fake.endpoint() +
              "): AssumeRoleWithWebIdentity refused: InvalidIdentityToken: Couldn't retrieve "
              "verification key from your identity provider (HTTP 400)\n");
    CHECK(result.output.find("projected-sa-token") == std::string::npos);
  }
  SECTION("the same without credentials succeeds once awsAnonymousCredential=true") {
    // s3rver serves unsigned requests; the flag is what lets them go out.
    Vars vars = merged(s3.env(), storagetest::awsChainOff());
    vars["awsAnonymousCredential"] = "true";
    ScopedEnv env(vars);
    Run result = runInitializer({"s3://models/m", dir + "/out"});
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(testsupport::readFile(dir + "/out/model.bin") == "weights");
  }
}
