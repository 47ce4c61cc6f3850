// Blob sinks end to end: the real kserve-agent with a blob --log-url in front of the sample model
// server, requests through it, then the objects read back from the real storage servers
// (s3rver, azurite) and the fake of the GCS JSON API (no GCS server is packaged to run here),
// and checked: keys, record count and every field (json parsed with nlohmann, csv with
// Python's csv module, parquet with hyparquet and @dsnp/parquetjs).
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "logger/blob/format.h"
#include "puller/storage/storage.h"
#include "tests/logger/blob_helpers.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using storagetest::ScopedEnv;

namespace {

using Env = std::map<std::string, std::optional<std::string>>;

std::map<std::string, std::string> processEnv(const Env& env) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : env) {
    if (value) out[name] = *value;
  }
  return out;
}

// Every object below `uri` (a bucket prefix), by its key relative to the prefix, read with the
// storage library's download code (tested against the same servers).
std::map<std::string, std::string> readObjects(const std::string& uri) {
  const std::string dir = testsupport::makeTempDir("blobread") + "/d";
  const storage::Status status = storage::download(uri, dir);
  std::map<std::string, std::string> objects;
  if (!status.ok) return objects;  // nothing there yet
  for (const std::string& relative : storagetest::listFiles(dir)) {
    objects[relative] = testsupport::readFile(dir + "/" + relative);
  }
  return objects;
}

// Polls until `count` objects are there (uploads are asynchronous), or 20 s have passed.
std::map<std::string, std::string> awaitObjects(
    const std::function<std::map<std::string, std::string>()>& read, size_t count) {
  std::map<std::string, std::string> objects;
  for (auto until = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(100ms)) {
    objects = read();
    if (objects.size() >= count) break;
  }
  return objects;
}

const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");

struct Exchange {
  std::string request;
  std::string response;
  std::string id;  // the Ce-Id sent, "" for none
};

// Sends `count` predict requests through the agent; the second one carries a client Ce-Id that
// tries to climb out of the directory.
std::vector<Exchange> sendRequests(const testsupport::Agent& agent, size_t count) {
  std::vector<Exchange> exchanges;
  for (size_t i = 0; i < count; ++i) {
    Exchange exchange;
    exchange.request = "{\"instances\":[[" + std::to_string(i) + ",\"a,b\\\"c\\nd\"]]}";
    testsupport::HttpOptions options;
    options.method = "POST";
    options.body = exchange.request;
    options.headers = {"Content-Type: application/json", "X-Tenant: t" + std::to_string(i)};
    if (i == 1) {
      exchange.id = "../../evil/id";
      options.headers.push_back("Ce-Id: " + exchange.id);
    }
    testsupport::HttpResponse response =
        testsupport::httpRequest(agent.url("/v1/models/m:predict"), options);
    REQUIRE(response.status == 200);
    exchange.response = response.body;
    exchanges.push_back(exchange);
  }
  return exchanges;
}

const std::vector<std::string> kLoggerFlags = {"--log-store-path",
                                               "store",
                                               "--namespace",
                                               "ns",
                                               "--inference-service",
                                               "isvc",
                                               "--component",
                                               "predictor",
                                               "--endpoint",
                                               "default",
                                               "--metadata-headers",
                                               "X-Tenant",
                                               "--metadata-annotations",
                                               "team=ml",
                                               "--source-uri",
                                               "pod-1"};

std::vector<std::string> loggerArgs(const std::string& url, std::vector<std::string> extra) {
  std::vector<std::string> args{"--log-url", url};
  args.insert(args.end(), kLoggerFlags.begin(), kLoggerFlags.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Finds the exchange and side a record is of, by its payload.
struct Match {
  const Exchange* exchange = nullptr;
  bool request = false;
};
Match matchPayload(const std::vector<Exchange>& exchanges, const std::string& bytes) {
  for (const Exchange& exchange : exchanges) {
    if (bytes == exchange.request) return {&exchange, true};
    if (bytes == exchange.response) return {&exchange, false};
  }
  return {};
}

// Checks the key of one object: <dir>/<id>-<suffix>.<ext> for an id the agent made, and the
// %-encoded client id followed by the process token and a sequence number otherwise.
void checkKey(const std::string& key, const Match& match, const std::string& ext) {
  const std::string suffix = match.request ? "request" : "response";
  INFO(key);
  REQUIRE(key.starts_with("ns/isvc/predictor/store/"));
  const std::string name = key.substr(std::string("ns/isvc/predictor/store/").size());
  if (match.exchange->id.empty()) {
    CHECK(std::regex_match(name, std::regex("([0-9a-f-]{36})-" + suffix + "\\." + ext)));
  } else {
    CHECK(std::regex_match(name, std::regex("\\.\\.%2F\\.\\.%2Fevil%2Fid-[0-9a-f]{16}-[0-9]+-" +
                                            suffix + "\\." + ext)));
  }
}

// One json record against what went through the agent.
void checkJsonRecord(const json& record, const std::vector<Exchange>& exchanges,
                     const std::string& logUrlHost, const std::string& logUrlScheme) {
  INFO(record.dump());
  std::string bytes;
  REQUIRE(logger::blob::decodeBase64(record.at("bytes").get<std::string>(), bytes));
  Match match = matchPayload(exchanges, bytes);
  REQUIRE(match.exchange != nullptr);
  CHECK(record.at("url").at("Scheme") == logUrlScheme);
  CHECK(record.at("url").at("Host") == logUrlHost);
  CHECK(record.at("contentType") == "application/json");
  CHECK(record.at("reqType") == (match.request ? "org.kubeflow.serving.inference.request"
                                               : "org.kubeflow.serving.inference.response"));
  if (match.exchange->id.empty()) {
    CHECK(std::regex_match(record.at("id").get<std::string>(), kUuid));
  } else {
    CHECK(record.at("id") == match.exchange->id);
  }
  CHECK(record.at("sourceUri").at("Path") == "pod-1");
  CHECK(record.at("inferenceService") == "isvc");
  CHECK(record.at("namespace") == "ns");
  CHECK(record.at("component") == "predictor");
  CHECK(record.at("endpoint") == "default");
  CHECK(record.at("metadata").at("X-Tenant").size() == 1);
  CHECK(record.at("annotations") == json{{"team", "ml"}});
  CHECK(record.at("certName") == "service-ca.crt");
  CHECK_FALSE(record.contains("tlsSkipVerify"));
  logger::blob::Timestamp time;
  CHECK(
      logger::blob::Timestamp::parseRfc3339(record.at("occurrenceTime").get<std::string>(), time));
}

}  // namespace

TEST_CASE("blob sink: s3 json, one object per record, keys and every field read back") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  testsupport::ModelServer model;
  testsupport::Agent agent(model.port(), loggerArgs("s3://logs/prefix", {}), processEnv(s3.env()));
  std::vector<Exchange> exchanges = sendRequests(agent, 3);
  auto objects = awaitObjects([] { return readObjects("s3://logs/prefix"); }, 6);
  REQUIRE(objects.size() == 6);
  std::set<std::pair<std::string, bool>> seen;
  for (const auto& [key, data] : objects) {
    json record = json::parse(data);
    REQUIRE(record.is_object());  // one record: an object, as upstream's embedded marshaller
    checkJsonRecord(record, exchanges, "logs", "s3");
    std::string bytes;
    logger::blob::decodeBase64(record.at("bytes").get<std::string>(), bytes);
    Match match = matchPayload(exchanges, bytes);
    checkKey(key, match, "json");
    if (match.exchange->id.empty()) {
      CHECK(key.find(record.at("id").get<std::string>()) != std::string::npos);
    }
    seen.insert({match.exchange->request, match.request});
  }
  CHECK(seen.size() == 6);  // each request and each response once
  CHECK(agent.terminate() == 0);
}

TEST_CASE("blob sink: bad configurations fail at start with exit 2") {
  testsupport::ModelServer model;
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string message;
  };
  const std::map<std::string, std::string> keys{{"AWS_ACCESS_KEY_ID", "k"},
                                                {"AWS_SECRET_ACCESS_KEY", "s"}};
  std::vector<Case> cases{
      {{"--log-url", "s3://logs/prefix"}, keys, "needs --log-store-path"},
      {{"--log-url", "s3a://logs/prefix", "--log-store-path", "p"}, keys, "s3a"},
      {{"--log-url", "s3://logs/prefix", "--log-store-path", "p", "--log-store-format", "avro"},
       keys,
       "--log-store-format"},
      {{"--log-url", "s3://logs/prefix", "--log-store-path", "../../x"}, keys, "--log-store-path"},
      {{"--log-url", "abfs://container@account/prefix", "--log-store-path", "p"},
       {},
       "blob log sink"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv{testsupport::builtBinary("kserve-agent"),
                                  "--port",
                                  std::to_string(testsupport::freePort()),
                                  "--component-port",
                                  std::to_string(model.port()),
                                  "--unix-socket="};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    testsupport::Process agent(argv, c.env,
                               {"AZURE_STORAGE_ACCESS_KEY", "AZURE_ACCESS_TOKEN", "AZURE_CLIENT_ID",
                                "AZURE_SERVICE_URL", "AZURE_STORAGE_BLOB_ENDPOINT"});
    INFO(agent.output());
    CHECK(agent.wait(10s) == 2);
    CHECK(agent.output().find(c.message) != std::string::npos);
  }
}
