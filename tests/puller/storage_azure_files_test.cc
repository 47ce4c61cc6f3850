// The storage-initializer against the fake of Azure Files (tests/support/
// storage_fake_azure_files.py: azurite serves no file shares): a folder walked page by page and
// level by level, a single file, ranged parts for a large file, Shared Key signatures the fake
// checks against its own computation of the documented string-to-sign, a SAS, and refusals.
#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/puller/storage_peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using Files = std::set<std::string>;
using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

constexpr const char* kShareUri = "https://devstoreaccount1.file.core.windows.net/models";
constexpr uint64_t kLargeBytes = uint64_t{70} << 20;  // above the ranged threshold
const std::vector<std::string> kUnset{"AZURE_CLIENT_ID",
                                      "AZ_CLIENT_ID",
                                      "AZURE_TENANT_ID",
                                      "AZURE_CLIENT_SECRET",
                                      "AZ_CLIENT_SECRET",
                                      "AZURE_STORAGE_ACCESS_KEY",
                                      "AZURE_FEDERATED_TOKEN_FILE",
                                      "AZURE_CLIENT_CERTIFICATE_PATH",
                                      "IDENTITY_ENDPOINT",
                                      "STORAGE_ALLOW_PATTERNS",
                                      "STORAGE_IGNORE_PATTERNS"};

// Share "models": m/ holds a config, a large file two folders down and an empty file; m2/ sits
// beside it (a prefix boundary).
struct Share {
  std::string root = testsupport::makeTempDir("azfiles");
  std::string log = root + "/requests.jsonl";

  Share() {
    fs::create_directories(root + "/models/m/sub/deep");
    fs::create_directories(root + "/models/m2");
    testsupport::writeFile(root + "/models/m/config.json", R"({"share":true})");
    testsupport::writeFile(root + "/models/m/empty.txt", "");
    testsupport::writeFile(root + "/models/m2/other.bin", "other");
    storagetest::writePatternFile(root + "/models/m/sub/deep/w.bin", kLargeBytes);
  }

  std::unique_ptr<storagetest::PythonFake> serve(std::vector<std::string> auth) const {
    std::vector<std::string> args{"--root", root, "--page-size", "2", "--log", log};
    args.insert(args.end(), auth.begin(), auth.end());
    return std::make_unique<storagetest::PythonFake>("storage_fake_azure_files.py", args);
  }
};

}  // namespace

TEST_CASE("storage-initializer downloads from an Azure Files share with Shared Key",
          "[storage][initializer][azure]") {
  Share share;
  auto fake = share.serve({"--account-key", storagetest::Azurite::kKey});
  std::string dir = testsupport::makeTempDir("azfilesout");
  std::map<std::string, std::string> env{{"AZURE_STORAGE_FILE_ENDPOINT", fake->endpoint()},
                                         {"AZURE_STORAGE_ACCESS_KEY", storagetest::Azurite::kKey}};

  SECTION("a folder: every page and level, ranged parts, not the sibling folder") {
    Run run = runInitializer({std::string(kShareUri) + "/m", dir + "/m"}, env, kUnset);
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK(storagetest::listFiles(dir + "/m") ==
          Files{"config.json", "empty.txt", "sub/deep/w.bin"});
    CHECK(testsupport::readFile(dir + "/m/config.json") == R"({"share":true})");
    CHECK(storagetest::sameContent(dir + "/m/sub/deep/w.bin",
                                   share.root + "/models/m/sub/deep/w.bin"));
    size_t ranged = 0;
    for (const auto& line : storagetest::jsonLines(share.log)) {
      if (line["path"] == "/models/m/sub/deep/w.bin" && line["range"].is_string()) ++ranged;
    }
    CHECK(ranged == 3);  // 70 MiB in 32 MiB parts
    storagetest::checkNoSecret(run.output, {storagetest::Azurite::kKey});
  }
  SECTION("a single file of the share, and one that is empty") {
    Run run =
        runInitializer({std::string(kShareUri) + "/m/config.json", dir + "/one"}, env, kUnset);
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK(storagetest::listFiles(dir + "/one") == Files{"config.json"});
    Run empty =
        runInitializer({std::string(kShareUri) + "/m/empty.txt", dir + "/empty"}, env, kUnset);
    INFO(empty.output);
    REQUIRE(empty.status == 0);
    CHECK(testsupport::readFile(dir + "/empty/empty.txt").empty());
  }
  SECTION("a path that does not exist, and a key the service refuses") {
    Run missing = runInitializer({std::string(kShareUri) + "/nothing", dir + "/none"}, env, kUnset);
    CHECK(missing.status == 1);
    CHECK_THAT(missing.output, Catch::Contains("has no files or does not exist"));
    auto wrong = env;
    wrong["AZURE_STORAGE_ACCESS_KEY"] = "d3Jvbmcta2V5LXdyb25nLWtleQ==";
    Run refused = runInitializer({std::string(kShareUri) + "/m", dir + "/refused"}, wrong, kUnset);
    CHECK(refused.status == 1);
    CHECK_THAT(refused.output, Catch::Contains("AuthenticationFailed (HTTP 403)") &&
                                   Catch::Contains("the request was signed with the account key in "
                                                   "AZURE_STORAGE_ACCESS_KEY"));
  }
}

TEST_CASE("storage-initializer downloads from an Azure Files share with a SAS in the URL",
          "[storage][initializer][azure]") {
  Share share;
  const std::string sas = "sv=2021-08-06&ss=f&srt=sco&sp=rl&sig=c2lnbmF0dXJlLXNlY3JldA%3D%3D";
  auto fake = share.serve({"--sas", sas});
  std::string dir = testsupport::makeTempDir("azfilesout");
  Run run = runInitializer({std::string(kShareUri) + "/m?" + sas, dir + "/m"},
                           {{"AZURE_STORAGE_FILE_ENDPOINT", fake->endpoint()}}, kUnset);
  INFO(run.output);
  REQUIRE(run.status == 0);
  CHECK(storagetest::listFiles(dir + "/m") == Files{"config.json", "empty.txt", "sub/deep/w.bin"});
  storagetest::checkNoSecret(run.output, {"c2lnbmF0dXJlLXNlY3JldA"});
}
