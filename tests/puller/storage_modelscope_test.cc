// The storage-initializer against the fake of the ModelScope Hub (tests/support/
// storage_fake_modelscope.py: ModelScope has no server to run on loopback): the paged file list,
// the redirect to object storage, ranged parts for a large file, the Sha256 check, the token
// cookie, revisions and the allow patterns.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "puller/storage/util.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using Files = std::set<std::string>;
using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

constexpr const char* kToken = "ms-token-Xy7Qp";
constexpr uint64_t kLargeBytes = uint64_t{70} << 20;  // above the ranged threshold

// A repository qwen/tiny with a config, a file in a folder and a large file; the fake serves it
// two list entries per page.
struct ModelScopeRepo {
  std::string root = testsupport::makeTempDir("modelscope");
  std::string log = root + "/oss.jsonl";

  ModelScopeRepo() {
    fs::create_directories(root + "/qwen/tiny/tokenizer");
    testsupport::writeFile(root + "/qwen/tiny/config.json", R"({"model":"tiny"})");
    testsupport::writeFile(root + "/qwen/tiny/tokenizer/vocab.txt", "a\nb\n");
    storagetest::writePatternFile(root + "/qwen/tiny/model.safetensors", kLargeBytes);
  }

  std::unique_ptr<storagetest::PythonFake> serve(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"--root",      root, "--token", kToken,
                                  "--page-size", "2",  "--log",   log};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<storagetest::PythonFake>("storage_fake_modelscope.py", args);
  }
};

std::map<std::string, std::string> siteEnv(const storagetest::PythonFake& fake,
                                           bool withToken = true) {
  std::map<std::string, std::string> env{{"MODELSCOPE_DOMAIN", fake.endpoint()}};
  if (withToken) env["MODELSCOPE_API_TOKEN"] = kToken;
  return env;
}

const std::vector<std::string> kUnset{"MODELSCOPE_API_TOKEN", "STORAGE_ALLOW_PATTERNS",
                                      "STORAGE_IGNORE_PATTERNS", "http_proxy", "HTTP_PROXY"};

}  // namespace

TEST_CASE("storage-initializer downloads a ModelScope repository, file by file, checked",
          "[storage][initializer][modelscope]") {
  ModelScopeRepo repo;
  auto fake = repo.serve();
  std::string dir = testsupport::makeTempDir("msout");

  SECTION("every page of the list, redirects to object storage, ranged parts, Sha256") {
    Run run = runInitializer({"modelscope://qwen/tiny", dir + "/m"}, siteEnv(*fake), kUnset);
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK(storagetest::listFiles(dir + "/m") ==
          Files{"config.json", "model.safetensors", "tokenizer/vocab.txt"});
    CHECK(testsupport::readFile(dir + "/m/config.json") == R"({"model":"tiny"})");
    CHECK(storagetest::sameContent(dir + "/m/model.safetensors",
                                   repo.root + "/qwen/tiny/model.safetensors"));
    size_t ranged = 0;
    for (const auto& line : storagetest::jsonLines(repo.log)) {
      if (line["path"] == "/oss/qwen/tiny/model.safetensors" && line["range"].is_string()) {
        ++ranged;
      }
    }
    CHECK(ranged == 3);  // 70 MiB in 32 MiB parts
    storagetest::checkNoSecret(run.output, {kToken});
  }
  SECTION("a revision, one that does not exist, and the allow patterns") {
    Run tagged =
        runInitializer({"modelscope://qwen/tiny:v1.0", dir + "/v1"}, siteEnv(*fake), kUnset);
    INFO(tagged.output);
    CHECK(tagged.status == 0);
    CHECK(storagetest::listFiles(dir + "/v1").size() == 3);
    Run missing =
        runInitializer({"modelscope://qwen/tiny:nope", dir + "/nope"}, siteEnv(*fake), kUnset);
    CHECK(missing.status == 1);
    CHECK_THAT(missing.output, Catch::Contains("repository qwen/tiny or revision nope not found"));
    auto env = siteEnv(*fake);
    env["STORAGE_ALLOW_PATTERNS"] = R"(["*.json", "tokenizer/*"])";
    Run allowed = runInitializer({"modelscope://qwen/tiny", dir + "/json"}, env, kUnset);
    INFO(allowed.output);
    CHECK(allowed.status == 0);
    CHECK(storagetest::listFiles(dir + "/json") == Files{"config.json", "tokenizer/vocab.txt"});
  }
  SECTION("no token, a malformed URI: one clear line each") {
    Run anonymous =
        runInitializer({"modelscope://qwen/tiny", dir + "/anon"}, siteEnv(*fake, false), kUnset);
    CHECK(anonymous.status == 1);
    CHECK_THAT(anonymous.output, Catch::Contains("access denied to repository qwen/tiny (no "
                                                 "MODELSCOPE_API_TOKEN set)"));
    Run malformed = runInitializer({"modelscope://qwen", dir + "/bad"}, siteEnv(*fake), kUnset);
    CHECK(malformed.status == 1);
    CHECK_THAT(malformed.output,
               Catch::Contains("expected modelscope://<owner>/<model>[:<revision>]"));
  }
}

TEST_CASE("storage-initializer refuses a ModelScope file that does not match its Sha256",
          "[storage][initializer][modelscope]") {
  ModelScopeRepo repo;
  auto fake = repo.serve({"--wrong-sha", "config.json"});
  std::string dir = testsupport::makeTempDir("msout");
  Run run = runInitializer({"modelscope://qwen/tiny", dir + "/m"}, siteEnv(*fake), kUnset);
  CHECK(run.status == 1);
  CHECK_THAT(run.output, Catch::Contains("config.json does not match the Sha256 ModelScope lists"));
}
