// The storage-initializer against a real OCI registry (Debian's docker-registry, the CNCF
// distribution server) holding modelcar images pushed by skopeo from the layouts of
// tests/support/storage_oci.py: anonymous, HTTP Basic (htpasswd) and bearer tokens (the
// registry's `auth: token` mode with the token service of the same script, as no token server
// ships in Debian), over plain http and over https.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "puller/storage/util.h"
#include "tests/puller/pull_models.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Files = std::set<std::string>;
using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

const char* goArch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

// The layouts of storage_oci.py, made once per run, and the digests their tags name.
const std::string& fixtures() {
  static const std::string root = [] {
    std::string dir = testsupport::makeTempDir("oci-layouts");
    testsupport::Process make({"/usr/bin/env", "python3",
                               testsupport::sourcePath("tests/support/storage_oci.py"), "make", dir,
                               "--arch", goArch()});
    if (make.wait(60s) != 0) throw std::runtime_error("oci fixtures: " + make.output());
    return dir;
  }();
  return root;
}

std::string digestOf(const std::string& layout) {
  return nlohmann::json::parse(testsupport::readFile(fixtures() + "/digests.json"))[layout];
}

// docker-registry on loopback with the fixtures pushed to team/<layout>:v1.
class Registry {
 public:
  enum class Auth { None, Basic, Token };
  static constexpr const char* kUser = "puller";
  static constexpr const char* kPassword = "Regi5try-pw";
  static constexpr const char* kIdentityToken = "acr-refresh-Zx81";

  explicit Registry(Auth auth, bool tls = false)
      : root_(testsupport::makeTempDir("registry")), port_(testsupport::freePort()), auth_(auth) {
    std::string config =
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        root_ + "/data\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
    if (tls) {
      auto [cert, key] = storagetest::selfSignedCertificate();
      config += "  tls:\n    certificate: " + cert + "\n    key: " + key + "\n";
    }
    if (auth == Auth::Basic) {
      testsupport::Process passwd({"/usr/bin/htpasswd", "-Bbn", kUser, kPassword});
      if (passwd.wait(10s) != 0) throw std::runtime_error("htpasswd: " + passwd.output());
      testsupport::writeFile(root_ + "/htpasswd", storage::trim(passwd.output()) + "\n");
      config += "auth:\n  htpasswd:\n    realm: test\n    path: " + root_ + "/htpasswd\n";
    } else if (auth == Auth::Token) {
      startTokenService();
      config += "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(tokenPort_) +
                "/token\n    service: test-registry\n    issuer: test-issuer\n"
                "    rootcertbundle: " +
                root_ + "/token.crt\n";
    }
    testsupport::writeFile(root_ + "/config.yml", config);
    process_ = std::make_unique<testsupport::Process>(
        std::vector<std::string>{"/usr/bin/docker-registry", "serve", root_ + "/config.yml"});
    if (!testsupport::waitForPort(port_, 15s)) {
      throw std::runtime_error("docker-registry did not start: " + process_->output());
    }
    for (const char* layout : {"model", "multi", "nomodels", "escape"})
      push(layout);
  }

  // Copies the layout to team/<layout>:v1 with skopeo.
  void push(const std::string& layout) const {
    std::vector<std::string> copy = {"/usr/bin/skopeo", "copy", "-q", "--all",
                                     "--dest-tls-verify=false"};
    if (auth_ != Auth::None) copy.push_back("--dest-creds=" + std::string(kUser) + ":" + kPassword);
    copy.push_back("oci:" + fixtures() + "/layouts/" + layout + ":v1");
    copy.push_back("docker://127.0.0.1:" + std::to_string(port_) + "/team/" + layout + ":v1");
    testsupport::Process process(copy);
    if (process.wait(120s) != 0) throw std::runtime_error("skopeo copy: " + process.output());
  }

  std::string uri(const std::string& path, const std::string& scheme = "oci://") const {
    return scheme + "127.0.0.1:" + std::to_string(port_) + "/" + path;
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string tokenLog() const { return root_ + "/token.log"; }
  // Replaces the stored bytes of a blob (the registry serves what it has without checking).
  void corruptBlob(const std::string& digest) const {
    std::string hex = digest.substr(7);
    std::string path =
        root_ + "/data/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
    std::string content = testsupport::readFile(path);
    content[content.size() / 2] ^= 0x01;
    testsupport::writeFile(path, content);
  }
  // A docker config holding only an identity token for this registry, as `docker login` to
  // ACR writes it.
  std::string identityTokenConfig(const std::string& token) const {
    std::string path = root_ + "/identity-" + token + ".json";
    nlohmann::json config = {{"auths", {{host(), {{"identitytoken", token}}}}},
                             {"credHelpers", {{"other.example", "ecr-login"}}}};
    testsupport::writeFile(path, config.dump());
    return path;
  }
  // A docker config holding `user`:`password` for this registry, as KServe mounts it.
  std::string dockerConfig(const std::string& user, const std::string& password) const {
    std::string path = root_ + "/config-" + user + ".json";
    nlohmann::json config = {
        {"auths", {{host(), {{"auth", storage::base64Encode(user + ":" + password)}}}}}};
    testsupport::writeFile(path, config.dump());
    return path;
  }

 private:
  void startTokenService() {
    tokenPort_ = testsupport::freePort();
    testsupport::Process keys({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                               "-days", "2", "-subj", "/CN=token-issuer", "-keyout",
                               root_ + "/token.key", "-out", root_ + "/token.crt"});
    if (keys.wait(30s) != 0) throw std::runtime_error("openssl req: " + keys.output());
    token_ = std::make_unique<testsupport::Process>(std::vector<std::string>{
        "/usr/bin/env", "python3", testsupport::sourcePath("tests/support/storage_oci.py"), "token",
        "--port", std::to_string(tokenPort_), "--key", root_ + "/token.key", "--cert",
        root_ + "/token.crt", "--user", kUser, "--password", kPassword, "--log", tokenLog(),
        "--refresh-token", kIdentityToken});
    if (!testsupport::waitForPort(tokenPort_, 15s)) {
      throw std::runtime_error("token service did not start: " + token_->output());
    }
  }

  std::string root_;
  uint16_t port_;
  Auth auth_;
  uint16_t tokenPort_ = 0;
  std::unique_ptr<testsupport::Process> token_;
  std::unique_ptr<testsupport::Process> process_;
};

// A developer's shell may point at a docker config or mark registries insecure.
const std::vector<std::string> kOciUnset{"KSERVE_OCI_DOCKER_CONFIG", "KSERVE_OCI_INSECURE_REGISTRY",
                                         "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"};
const std::map<std::string, std::string> kNoConfig{
    {"KSERVE_OCI_DOCKER_CONFIG", "/nonexistent/config.json"},
    {"KSERVE_OCI_INSECURE_REGISTRY", "true"}};

std::string expectedWeights() {
  std::string out;
  for (uint32_t i = 0; i < 16384; ++i)
    out.append(reinterpret_cast<const char*>(&i), 4);
  return out;
}

}  // namespace

TEST_CASE("storage-initializer fetches the models/ folder of an OCI image from a registry",
          "[storage][initializer][oci]") {
  Registry registry(Registry::Auth::None);
  std::string dir = testsupport::makeTempDir("ociout");

  SECTION("oci+fetch:// by tag: gzip and zstd layers, only models/, links kept, whiteouts not") {
    Run result = runInitializer({registry.uri("team/model:v1", "oci+fetch://"), dir + "/m"},
                                kNoConfig, kOciUnset);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(storagetest::listEntries(dir + "/m") ==
          Files{"config.json", "extra.txt", "latest", "weights", "weights/w.bin"});
    CHECK(testsupport::readFile(dir + "/m/config.json") == R"({"name":"m"})");
    CHECK(testsupport::readFile(dir + "/m/weights/w.bin") == expectedWeights());
    CHECK(testsupport::readFile(dir + "/m/extra.txt") == "extra");
    CHECK(fs::read_symlink(dir + "/m/latest") == "config.json");
  }
  SECTION("by digest, and an index resolves to this machine's linux image") {
    Run byDigest = runInitializer({registry.uri("team/model@" + digestOf("model")), dir + "/d"},
                                  kNoConfig, kOciUnset);
    INFO(byDigest.output);
    REQUIRE(byDigest.status == 0);
    CHECK(testsupport::readFile(dir + "/d/weights/w.bin") == expectedWeights());
    Run multi =
        runInitializer({registry.uri("team/multi:v1"), dir + "/multi"}, kNoConfig, kOciUnset);
    INFO(multi.output);
    REQUIRE(multi.status == 0);
    CHECK(storagetest::listEntries(dir + "/multi") == Files{"arch.txt"});
    CHECK(testsupport::readFile(dir + "/multi/arch.txt") == goArch());
  }
  SECTION("what cannot be a model is one clear line, and nothing is left behind") {
    Run missing =
        runInitializer({registry.uri("team/model:v9"), dir + "/v9"}, kNoConfig, kOciUnset);
    CHECK(missing.status == 1);
    CHECK_THAT(missing.output,
               Catch::Contains("image " + registry.host() + "/team/model:v9 not found"));
    Run empty =
        runInitializer({registry.uri("team/nomodels:v1"), dir + "/none"}, kNoConfig, kOciUnset);
    CHECK(empty.status == 1);
    CHECK_THAT(empty.output, Catch::Contains("has no models/ folder"));
    CHECK(storagetest::listEntries(dir + "/none").empty());
    Run escape =
        runInitializer({registry.uri("team/escape:v1"), dir + "/escape"}, kNoConfig, kOciUnset);
    CHECK(escape.status == 1);
    CHECK_THAT(escape.output, Catch::Contains("models/../../evil.txt") &&
                                  Catch::Contains("outside the destination; refused"));
    CHECK(storagetest::listEntries(dir + "/escape").empty());
    CHECK_FALSE(fs::exists(dir + "/evil.txt"));
    Run malformed =
        runInitializer({registry.uri("Team/Model:v1"), dir + "/bad"}, kNoConfig, kOciUnset);
    CHECK(malformed.status == 1);
    CHECK_THAT(malformed.output, Catch::Contains("expected oci://<registry>/<repository>"));
  }
  SECTION("a 40 MiB layer is unpacked as it downloads, and no copy of it is left") {
    registry.push("large");
    Run result =
        runInitializer({registry.uri("team/large:v1"), dir + "/large"}, kNoConfig, kOciUnset);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(storagetest::listEntries(dir + "/large") == Files{"big.bin"});
    CHECK(fs::file_size(dir + "/large/big.bin") == 40u << 20);
    CHECK(storage::sha256Hex(testsupport::readFile(dir + "/large/big.bin")) ==
          digestOf("large_file_sha256"));
  }
  SECTION("a layer whose bytes do not match its digest is refused") {
    nlohmann::json index =
        nlohmann::json::parse(testsupport::readFile(fixtures() + "/layouts/model/index.json"));
    std::string manifestDigest = index["manifests"][0]["digest"];
    nlohmann::json manifest = nlohmann::json::parse(testsupport::readFile(
        fixtures() + "/layouts/model/blobs/sha256/" + manifestDigest.substr(7)));
    std::string layer = manifest["layers"][1]["digest"];
    registry.corruptBlob(layer);
    Run result =
        runInitializer({registry.uri("team/model:v1"), dir + "/corrupt"}, kNoConfig, kOciUnset);
    CHECK(result.status == 1);
    CHECK_THAT(result.output,
               Catch::Contains("layer " + layer) && Catch::Contains("does not match its digest"));
    CHECK_FALSE(fs::exists(dir + "/corrupt/weights/w.bin"));
  }
}

TEST_CASE("storage-initializer reads OCI images with the docker config's credentials",
          "[storage][initializer][oci]") {
  std::string dir = testsupport::makeTempDir("ociout");

  SECTION("HTTP Basic (htpasswd): the config's auth is sent, a wrong or missing one is named") {
    Registry registry(Registry::Auth::Basic);
    std::string good = registry.dockerConfig(Registry::kUser, Registry::kPassword);
    Run result = runInitializer(
        {registry.uri("team/model:v1"), dir + "/basic"},
        {{"KSERVE_OCI_DOCKER_CONFIG", good}, {"KSERVE_OCI_INSECURE_REGISTRY", registry.host()}},
        kOciUnset);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(testsupport::readFile(dir + "/basic/weights/w.bin") == expectedWeights());

    std::string bad = registry.dockerConfig(Registry::kUser, "wrong-Secret-9");
    Run refused = runInitializer(
        {registry.uri("team/model:v1"), dir + "/refused"},
        {{"KSERVE_OCI_DOCKER_CONFIG", bad}, {"KSERVE_OCI_INSECURE_REGISTRY", "true"}}, kOciUnset);
    CHECK(refused.status == 1);
    CHECK_THAT(refused.output, Catch::Contains("refused the credentials for team/model"));
    Run anonymous =
        runInitializer({registry.uri("team/model:v1"), dir + "/anonymous"}, kNoConfig, kOciUnset);
    CHECK(anonymous.status == 1);
    CHECK_THAT(anonymous.output,
               Catch::Contains("asks for credentials (no credentials for " + registry.host() +
                               " in the docker config /nonexistent/config.json)"));
    // Credential helpers are workstation programs: not run, and said so.
    std::string helpers = dir + "/helpers.json";
    testsupport::writeFile(helpers, R"({"auths": {}, "credsStore": "desktop"})");
    Run helped = runInitializer(
        {registry.uri("team/model:v1"), dir + "/helped"},
        {{"KSERVE_OCI_DOCKER_CONFIG", helpers}, {"KSERVE_OCI_INSECURE_REGISTRY", "true"}},
        kOciUnset);
    CHECK(helped.status == 1);
    CHECK_THAT(helped.output,
               Catch::Contains("names credential helpers (credsStore), which are not run") &&
                   Catch::Contains("asks for credentials"));
    storagetest::checkNoSecret(
        result.output + refused.output,
        {Registry::kPassword, "wrong-Secret-9",
         storage::base64Encode(std::string(Registry::kUser) + ":" + Registry::kPassword)});
  }
  SECTION("bearer tokens from the realm the registry names; credentials go to the realm only") {
    Registry registry(Registry::Auth::Token);
    std::string good = registry.dockerConfig(Registry::kUser, Registry::kPassword);
    Run result = runInitializer(
        {registry.uri("team/multi:v1"), dir + "/token"},
        {{"KSERVE_OCI_DOCKER_CONFIG", good}, {"KSERVE_OCI_INSECURE_REGISTRY", "true"}}, kOciUnset);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(testsupport::readFile(dir + "/token/arch.txt") == goArch());
    bool asked = false;
    for (const auto& line : storagetest::jsonLines(registry.tokenLog())) {
      if (line["query"].value("scope", nlohmann::json::array()) ==
          nlohmann::json::array({"repository:team/multi:pull"})) {
        asked = true;
        CHECK(line["query"]["service"] == nlohmann::json::array({"test-registry"}));
        CHECK(line["credentials_match"] == true);
      }
    }
    CHECK(asked);
    Run anonymous =
        runInitializer({registry.uri("team/multi:v1"), dir + "/anonymous"}, kNoConfig, kOciUnset);
    CHECK(anonymous.status == 1);
    CHECK_THAT(anonymous.output, Catch::Contains("cannot get a token for team/multi") &&
                                     Catch::Contains("no credentials for " + registry.host()));
    storagetest::checkNoSecret(result.output + anonymous.output, {Registry::kPassword});
  }
  SECTION("an identity token is traded at the realm for an access token (OAuth2 form)") {
    Registry registry(Registry::Auth::Token);
    // The pushes before asked with Basic credentials (GET); what follows is ours.
    const size_t pushes = storagetest::jsonLines(registry.tokenLog()).size();
    Run result = runInitializer(
        {registry.uri("team/multi:v1"), dir + "/identity"},
        {{"KSERVE_OCI_DOCKER_CONFIG", registry.identityTokenConfig(Registry::kIdentityToken)},
         {"KSERVE_OCI_INSECURE_REGISTRY", "true"}},
        kOciUnset);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(testsupport::readFile(dir + "/identity/arch.txt") == goArch());
    auto lines = storagetest::jsonLines(registry.tokenLog());
    REQUIRE(lines.size() > pushes);
    for (size_t i = pushes; i < lines.size(); ++i) {
      const auto& line = lines[i];
      REQUIRE(line.value("method", "GET") == "POST");
      CHECK(line["grant_type"] == "refresh_token");
      CHECK(line["client_id"] == "kserve-storage-initializer");
      CHECK(line["content_type"] == "application/x-www-form-urlencoded");
      CHECK(line["query"]["service"] == nlohmann::json::array({"test-registry"}));
      CHECK(line["credentials_match"] == true);
      CHECK(line["authorization"] == false);
    }
    Run refused = runInitializer(
        {registry.uri("team/multi:v1"), dir + "/stale"},
        {{"KSERVE_OCI_DOCKER_CONFIG", registry.identityTokenConfig("stale-identity-7Qp")},
         {"KSERVE_OCI_INSECURE_REGISTRY", "true"}},
        kOciUnset);
    CHECK(refused.status == 1);
    CHECK_THAT(refused.output,
               Catch::Contains("cannot get a token for team/multi") && Catch::Contains("401"));
    storagetest::checkNoSecret(result.output + refused.output,
                               {Registry::kIdentityToken, "stale-identity-7Qp"});
  }
  SECTION("https: verified against SSL_CERT_FILE, or not at all for an insecure registry") {
    Registry registry(Registry::Auth::None, true);
    std::map<std::string, std::string> env{{"KSERVE_OCI_DOCKER_CONFIG", "/nonexistent/c.json"}};
    Run untrusted =
        runInitializer({registry.uri("team/model:v1"), dir + "/untrusted"}, env, kOciUnset);
    CHECK(untrusted.status == 1);
    CHECK_THAT(untrusted.output, Catch::Contains("https://" + registry.host()));
    env["SSL_CERT_FILE"] = storagetest::selfSignedCertificate().first;
    Run trusted = runInitializer({registry.uri("team/model:v1"), dir + "/trusted"}, env, kOciUnset);
    INFO(trusted.output);
    CHECK(trusted.status == 0);
    env.erase("SSL_CERT_FILE");
    env["KSERVE_OCI_INSECURE_REGISTRY"] = "other:5000, " + registry.host();
    Run insecure =
        runInitializer({registry.uri("team/model:v1"), dir + "/insecure"}, env, kOciUnset);
    INFO(insecure.output);
    CHECK(insecure.status == 0);
    CHECK(testsupport::readFile(dir + "/insecure/weights/w.bin") == expectedWeights());
  }
}

TEST_CASE("The puller downloads an OCI image's model and loads it", "[puller][oci]") {
  Registry registry(Registry::Auth::Basic);
  std::string root = testsupport::makeTempDir("pulleroci");
  fs::create_directories(root + "/configs");
  nlohmann::json models =
      nlohmann::json::array({{{"modelName", "o"},
                              {"modelSpec",
                               {{"storageUri", registry.uri("team/model:v1", "oci+fetch://")},
                                {"framework", "sklearn"},
                                {"memory", "1Mi"}}}}});
  testsupport::writeFile(root + "/configs/models.json", models.dump());
  storagetest::ScopedEnv env(
      {{"KSERVE_OCI_DOCKER_CONFIG", registry.dockerConfig(Registry::kUser, Registry::kPassword)},
       {"KSERVE_OCI_INSECURE_REGISTRY", registry.host()},
       {"SSL_CERT_FILE", std::nullopt}});
  testsupport::ModelServer server;
  REQUIRE(storagetest::pullInitialModels(root, server.port()));
  // The model's files, beside the puller's SUCCESS.<hash> marker.
  Files entries = storagetest::listEntries(root + "/models/o");
  std::erase_if(entries, [](const std::string& entry) { return entry.starts_with("SUCCESS."); });
  CHECK(entries == Files{"config.json", "extra.txt", "latest", "weights", "weights/w.bin"});
  CHECK(testsupport::readFile(root + "/models/o/weights/w.bin") == expectedWeights());
  size_t loads = 0;
  for (const auto& line : server.recordedLines()) {
    if (nlohmann::json::parse(line)["path"] == "/v2/repository/models/o/load") ++loads;
  }
  CHECK(loads == 1);
}
