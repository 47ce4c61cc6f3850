// The puller end to end: kubelet-style ConfigMap swaps, in-place edits, the model server's
// load/unload calls in order, many models at start, restart recovery, retries, and a crash in
// the middle of a download.
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "puller/model_config.h"
#include "puller/puller.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Writes models.json exactly as the kubelet's atomic writer updates a ConfigMap volume:
// ..<timestamp>/models.json, symlink ..data_tmp → it, rename over ..data, and the user-visible
// models.json → ..data/models.json; the previous timestamped folder is then deleted.
class ConfigMapWriter {
 public:
  explicit ConfigMapWriter(std::string dir) : dir_(std::move(dir)) {}

  void write(const std::string& content) {
    std::string stamp = "..2024_01_01_00_00_00." + std::to_string(++generation_);
    fs::create_directories(dir_ + "/" + stamp);
    testsupport::writeFile(dir_ + "/" + stamp + "/models.json", content);
    fs::create_symlink(stamp, dir_ + "/..data_tmp");
    fs::rename(dir_ + "/..data_tmp", dir_ + "/..data");
    if (!fs::is_symlink(dir_ + "/models.json")) {
      fs::create_symlink("..data/models.json", dir_ + "/models.json");
    }
    if (!previous_.empty()) fs::remove_all(dir_ + "/" + previous_);
    previous_ = stamp;
  }

 private:
  std::string dir_;
  std::string previous_;
  int generation_ = 0;
};

std::string modelsJson(const std::vector<std::pair<std::string, std::string>>& models) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [name, uri] : models) {
    json.push_back(
        {{"modelName", name},
         {"modelSpec", {{"storageUri", uri}, {"framework", "sklearn"}, {"memory", "1Mi"}}}});
  }
  return json.dump();
}

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

// "load m1", "unload m2", ... in the order the model server received them.
std::vector<std::string> repositoryCalls(const testsupport::ModelServer& server) {
  std::vector<std::string> calls;
  for (const auto& line : server.recordedLines()) {
    std::string path = nlohmann::json::parse(line)["path"];
    const std::string prefix = "/v2/repository/models/";
    if (!path.starts_with(prefix)) continue;
    std::string rest = path.substr(prefix.size());
    size_t slash = rest.rfind('/');
    calls.push_back(rest.substr(slash + 1) + " " + rest.substr(0, slash));
  }
  return calls;
}

size_t count(const std::vector<std::string>& calls, const std::string& call) {
  return static_cast<size_t>(std::count(calls.begin(), calls.end(), call));
}

size_t indexOf(const std::vector<std::string>& calls, const std::string& call, size_t from = 0) {
  auto it = std::find(calls.begin() + static_cast<std::ptrdiff_t>(from), calls.end(), call);
  return static_cast<size_t>(it - calls.begin());
}

// A source folder for model `name` with one file holding `content`.
std::string makeSource(const std::string& root, const std::string& name,
                       const std::string& content) {
  std::string dir = root + "/" + name;
  fs::create_directories(dir);
  testsupport::writeFile(dir + "/model.bin", content);
  return dir;
}

bool hasMarker(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().starts_with("SUCCESS.")) return true;
  }
  return false;
}

struct Fixture {
  std::string root = testsupport::makeTempDir("puller");
  std::string configDir = root + "/configs";
  std::string modelDir = root + "/models";
  std::string sources = root + "/sources";
  testsupport::ModelServer server;
  ConfigMapWriter writer{configDir};

  Fixture() { fs::create_directories(configDir); }

  puller::Options options(int concurrency = 4) const {
    puller::Options o;
    o.configDir = configDir;
    o.modelDir = modelDir;
    o.componentPort = server.port();
    o.concurrency = concurrency;
    o.retries = 2;
    o.retryBackoff.first = 20ms;
    o.serverTimeout = 10s;
    return o;
  }
};

// Captures the puller's log lines for the scope.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

}  // namespace

TEST_CASE("ConfigMap swaps add, replace and remove models, with load/unload in order", "[puller]") {
  Fixture f;
  std::string m1 = makeSource(f.sources, "m1", "one");
  std::string m2 = makeSource(f.sources, "m2", "two");
  std::string m2v2 = makeSource(f.sources, "m2-v2", "two, second version");
  std::string m3 = makeSource(f.sources, "m3", "three");
  f.writer.write(modelsJson({{"m1", m1}, {"m2", m2}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  CHECK(testsupport::readFile(f.modelDir + "/m1/model.bin") == "one");
  CHECK(hasMarker(f.modelDir + "/m2"));
  auto calls = repositoryCalls(f.server);
  CHECK(count(calls, "load m1") == 1);
  CHECK(count(calls, "load m2") == 1);

  f.writer.write(modelsJson({{"m2", m2v2}, {"m3", m3}}));
  REQUIRE(waitFor([&] {
    auto c = repositoryCalls(f.server);
    return count(c, "unload m1") == 1 && count(c, "load m2") == 2 && count(c, "load m3") == 1;
  }));
  calls = repositoryCalls(f.server);
  size_t unload = indexOf(calls, "unload m2");
  CHECK(unload < calls.size());
  CHECK(indexOf(calls, "load m2", unload) < calls.size());  // reloaded after the unload
  CHECK_FALSE(fs::exists(f.modelDir + "/m1"));
  CHECK(testsupport::readFile(f.modelDir + "/m2/model.bin") == "two, second version");
  CHECK(testsupport::readFile(f.modelDir + "/m3/model.bin") == "three");

  // The same content again changes nothing (upstream reloaded m2 on every sync).
  f.writer.write(modelsJson({{"m2", m2v2}, {"m3", m3}}));
  f.writer.write(modelsJson({{"m3", m3}}));
  REQUIRE(waitFor([&] { return count(repositoryCalls(f.server), "unload m2") == 2; }));
  std::this_thread::sleep_for(200ms);
  calls = repositoryCalls(f.server);
  CHECK(count(calls, "load m2") == 2);
  CHECK(count(calls, "load m3") == 1);
  CHECK_FALSE(fs::exists(f.modelDir + "/m2"));
}

TEST_CASE("An in-place edit of models.json is applied", "[puller]") {
  Fixture f;
  std::string m1 = makeSource(f.sources, "m1", "one");
  testsupport::writeFile(f.configDir + "/models.json", "[]");
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  testsupport::writeFile(f.configDir + "/models.json", modelsJson({{"m1", m1}}));
  REQUIRE(waitFor([&] { return count(repositoryCalls(f.server), "load m1") == 1; }));
  CHECK(testsupport::readFile(f.modelDir + "/m1/model.bin") == "one");
}

TEST_CASE("A bad models.json keeps the current models and says why", "[puller]") {
  Fixture f;
  LogCapture log;
  std::string m1 = makeSource(f.sources, "m1", "one");
  std::string m2 = makeSource(f.sources, "m2", "two");
  f.writer.write(modelsJson({{"m1", m1}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  f.writer.write("[{\"modelName\": \"m1\"");
  REQUIRE(waitFor([&] { return log.text().find("not valid JSON") != std::string::npos; }));
  CHECK_THAT(log.text(), Catch::Contains("keeping the current models"));
  f.writer.write(modelsJson({{"m1", m1}, {"m2", m2}}));
  REQUIRE(waitFor([&] { return count(repositoryCalls(f.server), "load m2") == 1; }));
  auto calls = repositoryCalls(f.server);
  CHECK(count(calls, "unload m1") == 0);
  CHECK(count(calls, "load m1") == 1);
}

TEST_CASE("150 models at start are all in place before the puller reports ready", "[puller]") {
  Fixture f;
  std::vector<std::pair<std::string, std::string>> models;
  for (int i = 0; i < 150; ++i) {
    std::string name = "model-" + std::to_string(i);
    models.emplace_back(name, makeSource(f.sources, name, name));
  }
  f.writer.write(modelsJson(models));
  puller::Puller puller(f.options(8));
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }, 120s));
  // Ready means every model is on disk and its load call was answered.
  for (const auto& [name, uri] : models) {
    CHECK(hasMarker(f.modelDir + "/" + name));
  }
  auto calls = repositoryCalls(f.server);
  CHECK(calls.size() == 150);
  CHECK(count(calls, "load model-149") == 1);
}

TEST_CASE("A restart recovers from the markers without downloading again", "[puller]") {
  Fixture f;
  std::string m1 = makeSource(f.sources, "m1", "one");
  f.writer.write(modelsJson({{"m1", m1}}));
  {
    puller::Puller puller(f.options());
    puller.start();
    REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  }
  REQUIRE(count(repositoryCalls(f.server), "load m1") == 1);
  // With the source gone, any download attempt would fail; recovery must not need one.
  fs::remove_all(f.sources);
  LogCapture log;
  puller::Puller restarted(f.options());
  restarted.start();
  REQUIRE(waitFor([&] { return restarted.initialModelsReady(); }));
  std::this_thread::sleep_for(200ms);
  CHECK_THAT(log.text(), Catch::Contains("model m1: recovered"));
  CHECK_THAT(log.text(), !Catch::Contains("m1: downloading"));
  CHECK(testsupport::readFile(f.modelDir + "/m1/model.bin") == "one");
  CHECK(repositoryCalls(f.server).size() == 1);
}

TEST_CASE("A recovered model that is no longer listed is removed at start", "[puller]") {
  Fixture f;
  std::string m1 = makeSource(f.sources, "m1", "one");
  f.writer.write(modelsJson({{"m1", m1}}));
  {
    puller::Puller puller(f.options());
    puller.start();
    REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  }
  f.writer.write("[]");
  puller::Puller restarted(f.options());
  restarted.start();
  // Upstream waited forever here (its startup barrier counted the Remove but never finished it).
  REQUIRE(waitFor([&] { return restarted.initialModelsReady(); }));
  CHECK_FALSE(fs::exists(f.modelDir + "/m1"));
  CHECK(count(repositoryCalls(f.server), "unload m1") == 1);
}

TEST_CASE("A failing download is retried, logged with model and cause, and never loaded",
          "[puller]") {
  Fixture f;
  LogCapture log;
  std::string good = makeSource(f.sources, "good", "ok");
  f.writer.write(modelsJson({{"good", good}, {"bad", f.sources + "/does-not-exist"}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  std::string text = log.text();
  CHECK_THAT(text, Catch::Contains("model bad: download failed (attempt 1 of 3)") &&
                       Catch::Contains("no such file or folder"));
  CHECK_THAT(text, Catch::Contains("model bad: download failed, giving up"));
  auto calls = repositoryCalls(f.server);
  CHECK(count(calls, "load good") == 1);
  CHECK(count(calls, "load bad") == 0);
  CHECK_FALSE(fs::exists(f.modelDir + "/bad"));
  CHECK(storagetest::listEntries(f.modelDir) ==
        std::set<std::string>{"good", "good/model.bin",
                              "good/" + puller::ModelSpec{good, "sklearn", "1Mi"}.markerName()});
}

TEST_CASE("Linked local files are copied by content and a link loop fails only its model",
          "[puller]") {
  Fixture f;
  LogCapture log;
  // A Hugging Face cache snapshot: its files link into ../../blobs.
  std::string repo = f.sources + "/models--owner--m";
  fs::create_directories(repo + "/snapshots/abc");
  fs::create_directories(repo + "/blobs");
  testsupport::writeFile(repo + "/blobs/1111", "weights");
  fs::create_symlink("../../blobs/1111", repo + "/snapshots/abc/model.bin");
  std::string looped = makeSource(f.sources, "looped", "x");
  fs::create_symlink("loop", looped + "/loop");
  std::string linked = repo + "/snapshots/abc";
  f.writer.write(modelsJson({{"linked", linked}, {"looped", looped}}));
  puller::Puller puller(f.options());
  puller.start();
  // Before, the loop threw out of the download and ended the process.
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  CHECK_THAT(log.text(), Catch::Contains("model looped: download failed, giving up") &&
                             Catch::Contains("Too many levels of symbolic links"));
  auto calls = repositoryCalls(f.server);
  CHECK(count(calls, "load linked") == 1);
  CHECK(count(calls, "load looped") == 0);
  CHECK(
      storagetest::listEntries(f.modelDir) ==
      std::set<std::string>{"linked", "linked/model.bin",
                            "linked/" + puller::ModelSpec{linked, "sklearn", "1Mi"}.markerName()});
  CHECK_FALSE(fs::is_symlink(f.modelDir + "/linked/model.bin"));
  CHECK(testsupport::readFile(f.modelDir + "/linked/model.bin") == "weights");
  // Before, the linked file was written to <root>/blobs, beside the model dir.
  std::set<std::string> beside;
  for (const auto& entry : fs::directory_iterator(f.root))
    beside.insert(entry.path().filename().string());
  CHECK(beside == std::set<std::string>{"configs", "models", "sources"});
}

TEST_CASE("A failing load is retried with backoff", "[puller]") {
  std::string root = testsupport::makeTempDir("puller");
  testsupport::ModelServer server({"--repo-status", "503"});
  std::string source = makeSource(root + "/sources", "m1", "one");
  fs::create_directories(root + "/configs");
  testsupport::writeFile(root + "/configs/models.json", modelsJson({{"m1", source}}));
  puller::Options options;
  options.configDir = root + "/configs";
  options.modelDir = root + "/models";
  options.componentPort = server.port();
  options.retries = 3;
  options.retryBackoff.first = 10ms;
  puller::Puller puller(options);
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  CHECK(count(repositoryCalls(server), "load m1") == 4);
}

TEST_CASE("A crash in the middle of a download leaves no SUCCESS marker", "[puller]") {
  storagetest::Nginx nginx;
  fs::create_directories(nginx.root() + "/slow");
  storagetest::writePatternFile(nginx.root() + "/slow/model.bin", 3 << 20);  // ~6 s at 512k/s
  Fixture f;
  f.writer.write(modelsJson({{"m1", nginx.url("/slow/model.bin")}}));
  {
    testsupport::Process runner(
        {PULLER_RUNNER, f.configDir, f.modelDir, std::to_string(f.server.port())});
    // Wait until bytes are arriving in the temporary folder, then kill without warning.
    REQUIRE(waitFor([&] {
      for (const auto& file : storagetest::listFiles(f.modelDir)) {
        if (file.starts_with(".m1.tmp-") && fs::file_size(f.modelDir + "/" + file) > 0) return true;
      }
      return false;
    }));
    runner.signal(SIGKILL);
    runner.wait(10s);
  }
  CHECK_FALSE(fs::exists(f.modelDir + "/m1"));
  for (const auto& file : storagetest::listFiles(f.modelDir)) {
    CHECK_FALSE(fs::path(file).filename().string().starts_with("SUCCESS."));
  }
  CHECK(repositoryCalls(f.server).empty());

  // The next start cleans the leftovers and downloads again (fast this time).
  fs::create_directories(nginx.root() + "/fast");
  fs::copy_file(nginx.root() + "/slow/model.bin", nginx.root() + "/fast/model.bin");
  f.writer.write(modelsJson({{"m1", nginx.url("/fast/model.bin")}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  CHECK(hasMarker(f.modelDir + "/m1"));
  CHECK(fs::file_size(f.modelDir + "/m1/model.bin") == 3 << 20);
  for (const auto& entry : storagetest::listEntries(f.modelDir)) {
    CHECK_FALSE(entry.starts_with("."));
  }
}

TEST_CASE("Stopping during a slow download returns promptly", "[puller]") {
  storagetest::Nginx nginx;
  fs::create_directories(nginx.root() + "/slow");
  storagetest::writePatternFile(nginx.root() + "/slow/model.bin", 8 << 20);
  Fixture f;
  f.writer.write(modelsJson({{"m1", nginx.url("/slow/model.bin")}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return !storagetest::listFiles(f.modelDir).empty(); }));
  auto begin = std::chrono::steady_clock::now();
  puller.stop();
  CHECK(std::chrono::steady_clock::now() - begin < 3s);
  CHECK_FALSE(puller.initialModelsReady());
  CHECK(storagetest::listEntries(f.modelDir).empty());
}

// The puller on EKS with IRSA: S3 credentials from web identity, refreshed between downloads
// (four-second credentials), while http_proxy/HTTP_PROXY name a proxy that does not exist:
// the S3 endpoint and the model server are on loopback, so neither may go through it.
TEST_CASE(
    "The puller downloads from S3 with web identity credentials, refreshed, and calls the "
    "model server directly whatever the proxy variables say",
    "[puller][aws][proxy]") {
  Fixture f;
  storagetest::S3rver s3;
  s3.put("m1/model.bin", "one");
  s3.put("m2/model.bin", "two");
  storagetest::FakeAwsCredentials sts(storagetest::S3rver::kAccessKey,
                                      storagetest::S3rver::kSecretKey, 4);
  auto vars = s3.env();
  for (const auto& [name, value] : sts.env("web identity"))
    vars[name] = value;
  const std::string noProxy = "http://127.0.0.1:" + std::to_string(testsupport::freePort());
  vars["http_proxy"] = noProxy;
  vars["HTTP_PROXY"] = noProxy;
  vars["no_proxy"] = std::nullopt;
  vars["NO_PROXY"] = std::nullopt;
  storagetest::ScopedEnv env(vars);

  f.writer.write(modelsJson({{"m1", "s3://models/m1"}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  CHECK(testsupport::readFile(f.modelDir + "/m1/model.bin") == "one");
  CHECK(count(repositoryCalls(f.server), "load m1") == 1);
  CHECK(sts.requests().size() == 1);

  std::this_thread::sleep_for(2500ms);  // past the refresh point of the first credentials
  f.writer.write(modelsJson({{"m1", "s3://models/m1"}, {"m2", "s3://models/m2"}}));
  REQUIRE(waitFor([&] { return count(repositoryCalls(f.server), "load m2") == 1; }));
  CHECK(testsupport::readFile(f.modelDir + "/m2/model.bin") == "two");
  CHECK(sts.requests().size() == 2);
}

TEST_CASE("The puller logs the progress of a slow model download, and none after it",
          "[puller][progress]") {
  storagetest::Nginx nginx;
  fs::create_directories(nginx.root() + "/slow");
  storagetest::writePatternFile(nginx.root() + "/slow/model.bin", 2 << 20);  // ~4 s at 512k/s
  storagetest::ScopedEnv env({{"STORAGE_PROGRESS_INTERVAL", std::string("1")}});
  Fixture f;
  f.writer.write(modelsJson({{"m1", nginx.url("/slow/model.bin")}}));
  LogCapture log;
  {
    puller::Puller puller(f.options());
    puller.start();
    REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  }
  std::this_thread::sleep_for(1500ms);  // a reporter left running would log again by now
  std::string text = log.text();
  INFO(text);
  std::string line = "progress of " + nginx.url("/slow/model.bin") + ": ";
  size_t first = text.find(line);
  size_t last = text.rfind(line);
  REQUIRE(first != std::string::npos);
  CHECK(last > first);  // at least two lines
  CHECK_THAT(text, Catch::Contains(" of 2097152 bytes, ") &&
                       Catch::Contains("1 of 1 files left, writing model.bin"));
  CHECK(last < text.find("puller: model m1: downloaded"));
}

TEST_CASE("Models from GCS and Azure download with metadata-server and workload identity tokens",
          "[puller][gcp][azure]") {
  // Google's metadata server and Entra ID cannot run here: stdlib-Python fakes of their
  // documented endpoints stand in (tests/support/storage_fake_google_auth.py and
  // storage_fake_entra.py); azurite in OAuth mode checks the Entra token's claims.
  Fixture f;
  LogCapture log;
  const std::string issued = f.root + "/issued";
  storagetest::PythonFake google("storage_fake_google_auth.py", {"--issued", issued});
  storagetest::FakeGcs gcs({"--require-token", "--accept-tokens", issued});
  fs::create_directories(gcs.root() + "/bucket/gm");
  testsupport::writeFile(gcs.root() + "/bucket/gm/model.bin", "from gcs");
  const std::string assertion = f.root + "/azure-identity-token";
  testsupport::writeFile(assertion, "federated-assertion-content\n");
  storagetest::PythonFake entra("storage_fake_entra.py",
                                {"--issued", issued, "--assertion-file", assertion});
  storagetest::Azurite azurite(true);
  azurite.createContainer("models");
  azurite.put("models", "am/model.bin", "from azure");
  storagetest::ScopedEnv env({{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
                              {"GCE_METADATA_HOST", google.hostPort()},
                              {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt},
                              {"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
                              {"REQUESTS_CA_BUNDLE", storagetest::selfSignedCertificate().first},
                              {"AZURE_AUTHORITY_HOST", entra.endpoint()},
                              {"AZURE_CLIENT_ID", "client-1"},
                              {"AZURE_TENANT_ID", "tenant-1"},
                              {"AZURE_FEDERATED_TOKEN_FILE", assertion},
                              {"AZURE_CLIENT_SECRET", std::nullopt},
                              {"AZURE_STORAGE_ACCESS_KEY", std::nullopt}});
  f.writer.write(modelsJson({{"g", "gs://bucket/gm"},
                             {"a", "https://devstoreaccount1.blob.core.windows.net/models/am"}}));
  puller::Puller puller(f.options());
  puller.start();
  REQUIRE(waitFor([&] { return puller.initialModelsReady(); }));
  INFO(log.text());
  CHECK(testsupport::readFile(f.modelDir + "/g/model.bin") == "from gcs");
  CHECK(testsupport::readFile(f.modelDir + "/a/model.bin") == "from azure");
  auto calls = repositoryCalls(f.server);
  CHECK(count(calls, "load g") == 1);
  CHECK(count(calls, "load a") == 1);
  std::istringstream tokens(testsupport::readFile(issued));
  int seen = 0;
  for (std::string line; std::getline(tokens, line); ++seen) {
    CHECK_THAT(log.text(), !Catch::Contains(line.substr(0, line.find(' '))));
  }
  CHECK(seen == 2);
  CHECK_THAT(log.text(), !Catch::Contains("federated-assertion-content"));
}
