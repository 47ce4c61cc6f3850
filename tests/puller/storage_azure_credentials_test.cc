// The Azure credential chain (puller/storage/azure_credentials.h) against the fake of Entra ID
// and the managed identity endpoints (tests/support/storage_fake_entra.py: none of them can run
// off Azure) and a real azurite in OAuth mode, which checks each bearer token's issuer, audience
// and lifetime, so a download that succeeds proves the token reached the storage server and was
// still valid. Through the storage-initializer binary and the library the puller uses. The IMDS
// address is always a loopback port here (AZURE_POD_IDENTITY_AUTHORITY_HOST or
// IDENTITY_ENDPOINT), never 169.254.169.254.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "puller/storage/storage.h"
#include "puller/storage/upload.h"
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

namespace {

constexpr const char* kUri = "https://devstoreaccount1.blob.core.windows.net/models/m";
// Every variable the chain reads, unset unless a test sets it.
const std::vector<std::string> kChainVariables{"AZURE_CLIENT_ID",
                                               "AZ_CLIENT_ID",
                                               "AZURE_TENANT_ID",
                                               "AZ_TENANT_ID",
                                               "AZURE_CLIENT_SECRET",
                                               "AZ_CLIENT_SECRET",
                                               "AZURE_FEDERATED_TOKEN_FILE",
                                               "AZURE_CLIENT_CERTIFICATE_PATH",
                                               "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                                               "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
                                               "AZURE_STORAGE_ACCESS_KEY",
                                               "IDENTITY_ENDPOINT",
                                               "IDENTITY_HEADER",
                                               "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                                               "AZURE_SERVICE_URL",
                                               "AZURE_ACCOUNT_NAME",
                                               "AZURE_ACCESS_TOKEN"};

std::vector<std::string> lines(const std::string& path) {
  std::vector<std::string> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(testsupport::readFile(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// azurite in OAuth mode with container "models" holding five blobs below m/, and the Entra fake.
struct Setup {
  std::string dir = testsupport::makeTempDir("azure-creds");
  std::string issuedFile = dir + "/issued";
  std::string requestLog = dir + "/requests.jsonl";
  std::string assertionFile = dir + "/azure-identity-token";
  std::unique_ptr<storagetest::PythonFake> entra;
  storagetest::Azurite azurite{true};

  explicit Setup(std::vector<std::string> entraArgs = {}) {
    testsupport::writeFile(assertionFile, "assertion-1\n");
    std::vector<std::string> args{
        "--issued", issuedFile,         "--log",       requestLog,          "--client-secret",
        "s3cr3t",   "--assertion-file", assertionFile, "--identity-header", "header-value"};
    args.insert(args.end(), entraArgs.begin(), entraArgs.end());
    entra = std::make_unique<storagetest::PythonFake>("storage_fake_entra.py", args);
    azurite.createContainer("models");
    for (const char* name : {"a.bin", "b.bin", "c.bin", "d.bin", "sub/e.bin"}) {
      azurite.put("models", std::string("m/") + name, name);
    }
  }

  // The environment of a pod with nothing but the storage endpoint and the CA.
  std::map<std::string, std::string> env() const {
    return {{"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
            {"REQUESTS_CA_BUNDLE", storagetest::selfSignedCertificate().first},
            {"AZURE_AUTHORITY_HOST", entra->endpoint()}};
  }

  ScopedEnv scoped(std::map<std::string, std::string> extra) const {
    std::map<std::string, std::optional<std::string>> values;
    for (const auto& name : kChainVariables)
      values[name] = std::nullopt;
    for (const auto& [name, value] : env())
      values[name] = value;
    for (const auto& [name, value] : extra)
      values[name] = value;
    return ScopedEnv(values);
  }

  Run initializer(std::map<std::string, std::string> extra, const std::string& out) const {
    auto environment = env();
    for (const auto& [name, value] : extra)
      environment[name] = value;
    std::vector<std::string> unset;
    for (const auto& name : kChainVariables) {
      if (!environment.count(name)) unset.push_back(name);
    }
    return storagetest::runInitializer({kUri, out}, environment, unset);
  }

  void checkModel(const std::string& dest) const {
    CHECK(storagetest::listFiles(dest) ==
          std::set<std::string>{"a.bin", "b.bin", "c.bin", "d.bin", "sub/e.bin"});
    CHECK(testsupport::readFile(dest + "/sub/e.bin") == "sub/e.bin");
  }

  std::vector<json> requests(const std::string& pathPrefix) const {
    std::vector<json> out;
    for (auto& entry : jsonLines(requestLog)) {
      if (entry["path"].get<std::string>().starts_with(pathPrefix)) out.push_back(entry);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("Azure workload identity: the federated token file as client_assertion, one token",
          "[storage][azure][initializer]") {
  Setup s;
  Run run = s.initializer({{"AZURE_CLIENT_ID", "client-1"},
                           {"AZURE_TENANT_ID", "tenant-1"},
                           {"AZURE_FEDERATED_TOKEN_FILE", s.assertionFile}},
                          s.dir + "/out");
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto asked = s.requests("/tenant-1/oauth2/v2.0/token");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0]["method"] == "POST");
  CHECK(asked[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded");
  CHECK(asked[0]["form"] ==
        json{{"grant_type", "client_credentials"},
             {"client_id", "client-1"},
             {"scope", "https://storage.azure.com/.default"},
             {"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
             {"client_assertion", "assertion-1"}});
  CHECK(lines(s.issuedFile).size() == 1);
  CHECK_THAT(run.output, Catch::Contains("azure devstoreaccount1/models: using workload identity "
                                         "client-1 (tenant tenant-1, AZURE_FEDERATED_TOKEN_FILE " +
                                         s.assertionFile + ")"));
  checkNoSecret(run.output, lines(s.issuedFile));
  checkNoSecret(run.output, {"assertion-1"});
}

TEST_CASE("Azure workload identity: refreshed before expiry, the rotated file read again",
          "[storage][azure]") {
  Setup s({"--lifetime", "3"});
  auto env = s.scoped({{"AZURE_CLIENT_ID", "client-1"},
                       {"AZURE_TENANT_ID", "tenant-1"},
                       {"AZURE_FEDERATED_TOKEN_FILE", s.assertionFile}});
  REQUIRE(storage::download(kUri, s.dir + "/one").ok);
  REQUIRE(storage::download(kUri, s.dir + "/two").ok);
  CHECK(s.requests("/tenant-1/").size() == 1);
  testsupport::writeFile(s.assertionFile, "assertion-2\n");
  // Past the refresh point (3 s token, refreshed at 2.25 s); azurite would refuse it at 3 s.
  std::this_thread::sleep_for(2400ms);
  auto status = storage::download(kUri, s.dir + "/three");
  INFO(status.message);
  REQUIRE(status.ok);
  s.checkModel(s.dir + "/three");
  auto asked = s.requests("/tenant-1/");
  REQUIRE(asked.size() == 2);
  CHECK(asked[0]["form"]["client_assertion"] == "assertion-1");
  CHECK(asked[1]["form"]["client_assertion"] == "assertion-2");
}

TEST_CASE("Azure client secret: the grant, and the refusal word by word",
          "[storage][azure][initializer]") {
  Setup s;
  Run run = s.initializer({{"AZURE_CLIENT_ID", "client-1"},
                           {"AZURE_TENANT_ID", "tenant-1"},
                           {"AZURE_CLIENT_SECRET", "s3cr3t"}},
                          s.dir + "/out");
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto asked = s.requests("/tenant-1/");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0]["form"] == json{{"grant_type", "client_credentials"},
                                 {"client_id", "client-1"},
                                 {"scope", "https://storage.azure.com/.default"},
                                 {"client_secret", "s3cr3t"}});
  checkNoSecret(run.output, lines(s.issuedFile));
  checkNoSecret(run.output, {"s3cr3t"});

  // The legacy AZ_* names, with a secret Entra refuses.
  run = s.initializer(
      {{"AZ_CLIENT_ID", "client-1"}, {"AZ_TENANT_ID", "tenant-1"}, {"AZ_CLIENT_SECRET", "wrong"}},
      s.dir + "/out2");
  CHECK(run.status == 1);
  CHECK_THAT(run.output,
             Catch::Contains("storage-initializer: failed to download "
                             "https://devstoreaccount1.blob.core.windows.net/models/m: "
                             "https://devstoreaccount1.blob.core.windows.net/models/m: cannot get "
                             "an Azure AD token with the client secret of service principal "
                             "client-1 (tenant tenant-1): POST " +
                             s.entra->endpoint() +
                             "/tenant-1/oauth2/v2.0/token: HTTP 401 (AADSTS7000215: Invalid "
                             "client secret provided.)\n"));
  checkNoSecret(run.output, {"wrong"});
}

namespace {

// A self-signed certificate for a service principal in `dir`: cert.pem, key.pem, bundle.pem
// (key and certificate, as azure-identity takes PEM) and sp.pfx (PKCS#12 under `password`).
void makeServicePrincipalCertificate(const std::string& dir, const std::string& password) {
  testsupport::Process request({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-days", "2", "-subj", "/CN=kserve-sp", "-keyout", dir + "/key.pem",
                                "-out", dir + "/cert.pem"});
  REQUIRE(request.wait(30s) == 0);
  testsupport::writeFile(dir + "/bundle.pem", testsupport::readFile(dir + "/key.pem") +
                                                  testsupport::readFile(dir + "/cert.pem"));
  testsupport::Process pkcs12({"/usr/bin/openssl", "pkcs12", "-export", "-inkey", dir + "/key.pem",
                               "-in", dir + "/cert.pem", "-out", dir + "/sp.pfx", "-passout",
                               "pass:" + password});
  REQUIRE(pkcs12.wait(30s) == 0);
}

}  // namespace

TEST_CASE("Azure certificate service principal: PEM or PKCS#12, the assertion Entra checks",
          "[storage][azure][initializer]") {
  std::string certs = testsupport::makeTempDir("azure-sp");
  const std::string password = "Pfx-pass-7q";
  makeServicePrincipalCertificate(certs, password);
  const std::map<std::string, std::string> identity{{"AZURE_CLIENT_ID", "client-1"},
                                                    {"AZURE_TENANT_ID", "tenant-1"}};
  auto with = [&](std::map<std::string, std::string> more) {
    more.insert(identity.begin(), identity.end());
    return more;
  };

  SECTION("PEM: an RS256 assertion with the thumbprint, for the token URL, then a download") {
    Setup s({"--certificate", certs + "/cert.pem"});
    Run run = s.initializer(with({{"AZURE_CLIENT_CERTIFICATE_PATH", certs + "/bundle.pem"}}),
                            s.dir + "/out");
    INFO(run.output);
    REQUIRE(run.status == 0);
    s.checkModel(s.dir + "/out");
    auto asked = s.requests("/tenant-1/");
    REQUIRE(asked.size() == 1);
    CHECK(asked[0]["form"]["client_assertion_type"] ==
          "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    CHECK_FALSE(asked[0]["form"].contains("client_secret"));
    checkNoSecret(run.output, lines(s.issuedFile));
  }
  SECTION("PKCS#12 with its password; the chain as x5c when asked; a wrong password named") {
    Setup s({"--certificate", certs + "/cert.pem", "--require-x5c"});
    auto pfx = with({{"AZURE_CLIENT_CERTIFICATE_PATH", certs + "/sp.pfx"},
                     {"AZURE_CLIENT_CERTIFICATE_PASSWORD", password},
                     {"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"}});
    Run run = s.initializer(pfx, s.dir + "/out");
    INFO(run.output);
    REQUIRE(run.status == 0);
    s.checkModel(s.dir + "/out");
    // Without the chain this Entra refuses it: the header above did carry x5c.
    pfx.erase("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN");
    Run noChain = s.initializer(pfx, s.dir + "/nochain");
    CHECK(noChain.status == 1);
    CHECK_THAT(noChain.output, Catch::Contains("the certificate chain (x5c) is missing"));
    pfx["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = "not-the-password";
    Run wrong = s.initializer(pfx, s.dir + "/wrong");
    CHECK(wrong.status == 1);
    CHECK_THAT(wrong.output, Catch::Contains("cannot open the PKCS#12 certificate " + certs +
                                             "/sp.pfx: wrong or missing "
                                             "AZURE_CLIENT_CERTIFICATE_PASSWORD"));
    checkNoSecret(run.output + noChain.output + wrong.output, {password, "not-the-password"});
  }
  SECTION("another key is refused by Entra; a missing tenant or file is one clear line") {
    std::string other = testsupport::makeTempDir("azure-sp-other");
    makeServicePrincipalCertificate(other, password);
    Setup s({"--certificate", certs + "/cert.pem"});
    Run refused = s.initializer(with({{"AZURE_CLIENT_CERTIFICATE_PATH", other + "/bundle.pem"}}),
                                s.dir + "/refused");
    CHECK(refused.status == 1);
    CHECK_THAT(refused.output,
               Catch::Contains("cannot get an Azure AD token with the certificate " + other +
                               "/bundle.pem of service principal client-1 (tenant tenant-1)") &&
                   Catch::Contains("HTTP 401 (AADSTS700027"));
    Run noTenant = s.initializer(
        {{"AZURE_CLIENT_ID", "client-1"}, {"AZURE_CLIENT_CERTIFICATE_PATH", certs + "/bundle.pem"}},
        s.dir + "/notenant");
    CHECK(noTenant.status == 1);
    CHECK_THAT(noTenant.output,
               Catch::Contains("AZURE_CLIENT_CERTIFICATE_PATH is set but AZURE_TENANT_ID is "
                               "missing"));
    Run missing = s.initializer(with({{"AZURE_CLIENT_CERTIFICATE_PATH", certs + "/absent.pem"}}),
                                s.dir + "/missing");
    CHECK(missing.status == 1);
    CHECK_THAT(missing.output, Catch::Contains("cannot read the certificate file " + certs +
                                               "/absent.pem (AZURE_CLIENT_CERTIFICATE_PATH)"));
  }
}

TEST_CASE("Azure managed identity through IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST), retried 410",
          "[storage][azure][initializer]") {
  Setup s({"--imds-fail", "1"});
  Run run = s.initializer(
      {{"AZURE_CLIENT_ID", "client-1"}, {"AZURE_POD_IDENTITY_AUTHORITY_HOST", s.entra->endpoint()}},
      s.dir + "/out");
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto asked = s.requests("/metadata/identity/oauth2/token");
  REQUIRE(asked.size() == 2);  // the 410 of a booting VM, then the token
  for (const auto& request : asked) {
    CHECK(request["method"] == "GET");
    CHECK(request["headers"]["Metadata"] == "true");
    CHECK(request["query"] == json{{"api-version", "2018-02-01"},
                                   {"resource", "https://storage.azure.com/"},
                                   {"client_id", "client-1"}});
  }
  CHECK_THAT(run.output,
             Catch::Contains("using managed identity client-1 (IMDS " + s.entra->endpoint() + ")"));
  checkNoSecret(run.output, lines(s.issuedFile));
}

TEST_CASE("Azure managed identity through IDENTITY_ENDPOINT and IDENTITY_HEADER",
          "[storage][azure][initializer]") {
  Setup s;
  Run run = s.initializer({{"AZURE_CLIENT_ID", "client-1"},
                           {"IDENTITY_ENDPOINT", s.entra->endpoint() + "/msi/token"},
                           {"IDENTITY_HEADER", "header-value"},
                           {"AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9"}},
                          s.dir + "/out");
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out");
  auto asked = s.requests("/msi/token");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0]["headers"]["X-IDENTITY-HEADER"] == "header-value");
  CHECK(asked[0]["query"] == json{{"api-version", "2019-08-01"},
                                  {"resource", "https://storage.azure.com/"},
                                  {"client_id", "client-1"}});
  CHECK(s.requests("/metadata/").empty());
  checkNoSecret(run.output, lines(s.issuedFile));
  checkNoSecret(run.output, {"header-value"});
}

TEST_CASE("Azure: AZURE_CLIENT_ID with no identity reachable uses the key, or fails saying why",
          "[storage][azure][initializer]") {
  Setup s;
  const std::string nothing = "http://127.0.0.1:" + std::to_string(testsupport::freePort());
  auto started = std::chrono::steady_clock::now();
  Run run = s.initializer(
      {{"AZURE_CLIENT_ID", "client-1"}, {"AZURE_POD_IDENTITY_AUTHORITY_HOST", nothing}},
      s.dir + "/out");
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(run.status == 1);
  CHECK_THAT(run.output,
             Catch::Contains("storage-initializer: failed to download "
                             "https://devstoreaccount1.blob.core.windows.net/models/m: "
                             "https://devstoreaccount1.blob.core.windows.net/models/m: no Azure "
                             "credentials: AZURE_CLIENT_ID client-1 has no AZURE_CLIENT_SECRET, "
                             "AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE and no "
                             "managed identity endpoint "
                             "answered at IMDS " +
                             nothing + ", and AZURE_STORAGE_ACCESS_KEY is unset\n"));

  run = s.initializer({{"AZURE_CLIENT_ID", "client-1"},
                       {"AZURE_POD_IDENTITY_AUTHORITY_HOST", nothing},
                       {"AZURE_STORAGE_ACCESS_KEY", storagetest::Azurite::kKey}},
                      s.dir + "/out2");
  INFO(run.output);
  REQUIRE(run.status == 0);
  s.checkModel(s.dir + "/out2");
  CHECK_THAT(run.output, Catch::Contains("using the account key in AZURE_STORAGE_ACCESS_KEY"));
  checkNoSecret(run.output, {storagetest::Azurite::kKey});
}

TEST_CASE("Azure: a refused token and an anonymous request name the credential word by word",
          "[storage][azure][initializer]") {
  // Tokens that expired before they were issued: Entra answers, azurite refuses them.
  Setup s({"--lifetime", "-60"});
  Run run = s.initializer({{"AZURE_CLIENT_ID", "client-1"},
                           {"AZURE_TENANT_ID", "tenant-1"},
                           {"AZURE_CLIENT_SECRET", "s3cr3t"}},
                          s.dir + "/out");
  CHECK(run.status == 1);
  CHECK_THAT(run.output,
             Catch::Contains("storage-initializer: failed to download "
                             "https://devstoreaccount1.blob.core.windows.net/models/"
                             "m: https://devstoreaccount1.blob.core.windows.net/models/m: unable "
                             "to list blobs: AuthenticationFailed (HTTP "
                             "403); check the account key, SAS token or AAD "
                             "credentials; the request carried a token from the "
                             "client secret of service principal client-1 (tenant "
                             "tenant-1)\n"));
  checkNoSecret(run.output, lines(s.issuedFile));

  run = s.initializer({}, s.dir + "/out2");
  CHECK(run.status == 1);
  CHECK_THAT(
      run.output,
      Catch::Contains(
          "storage-initializer: failed to download "
          "https://devstoreaccount1.blob.core.windows.net/models/"
          "m: https://devstoreaccount1.blob.core.windows.net/models/m: unable "
          "to list blobs: AuthorizationFailure (HTTP 403); check the account key, SAS token or AAD "
          "credentials; the request was anonymous: no credentials (no SAS in "
          "the URL; AZURE_CLIENT_ID and AZURE_STORAGE_ACCESS_KEY are unset)\n"));
}

TEST_CASE("Azure uploads (logger blob sinks) use the workload identity token too",
          "[storage][azure][upload]") {
  Setup s;
  auto env = s.scoped({{"AZURE_CLIENT_ID", "client-1"},
                       {"AZURE_TENANT_ID", "tenant-1"},
                       {"AZURE_FEDERATED_TOKEN_FILE", s.assertionFile},
                       {"AZURE_SERVICE_URL", s.azurite.endpoint() + "/"}});
  std::string error;
  auto uploader = storage::Uploader::create({storage::BlobService::Azure, "models", ""}, error);
  REQUIRE(uploader);
  storage::UploadOptions options;
  options.attempts = 1;
  auto status = uploader->upload("m/logged.json", R"({"a":1})", "application/json", options);
  INFO(status.message);
  REQUIRE(status.ok);
  // Read back with the same identity: azurite accepted the token for both.
  REQUIRE(storage::download(kUri + std::string("/logged.json"), s.dir + "/back").ok);
  CHECK(testsupport::readFile(s.dir + "/back/logged.json") == R"({"a":1})");
  CHECK(s.requests("/tenant-1/").size() == 1);
}
