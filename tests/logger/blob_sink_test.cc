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
#include "logger/blob/marshaller.h"
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

// Polls until `count` objects are there (uploads are asynchronous), or 30 s have passed.
std::map<std::string, std::string> awaitObjects(
    const std::function<std::map<std::string, std::string>()>& read, size_t count) {
  std::map<std::string, std::string> objects;
  for (auto until = std::chrono::steady_clock::now() + 30s;
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

// One csv or parquet row (cells by column name) against what went through the agent.
void checkCells(const std::map<std::string, json>& cells, const std::vector<Exchange>& exchanges,
                const std::string& logUrl) {
  INFO(json(cells).dump());
  std::string bytes;
  REQUIRE(logger::blob::decodeBase64(cells.at("bytes").get<std::string>(), bytes));
  Match match = matchPayload(exchanges, bytes);
  REQUIRE(match.exchange != nullptr);
  CHECK(cells.at("url") == logUrl);
  CHECK(cells.at("contentType") == "application/json");
  CHECK(cells.at("reqType") == (match.request ? "org.kubeflow.serving.inference.request"
                                              : "org.kubeflow.serving.inference.response"));
  if (match.exchange->id.empty()) {
    CHECK(std::regex_match(cells.at("id").get<std::string>(), kUuid));
  } else {
    CHECK(cells.at("id") == match.exchange->id);
  }
  CHECK(cells.at("sourceUri") == "pod-1");
  CHECK(cells.at("inferenceService") == "isvc");
  CHECK(cells.at("namespace") == "ns");
  CHECK(cells.at("component") == "predictor");
  CHECK(cells.at("endpoint") == "default");
  json metadata = json::parse(cells.at("metadata").get<std::string>());
  CHECK(metadata.at("X-Tenant").size() == 1);
  CHECK(cells.at("annotations") == R"({"team":"ml"})");
  CHECK(cells.at("certName") == "service-ca.crt");
}

// The records of every object, by key, as cells by column name (csv: Python's csv module;
// parquet: the reader named), each object's header or schema checked.
std::map<std::string, std::vector<std::map<std::string, json>>> tabularRecords(
    const std::map<std::string, std::string>& objects, logger::blob::Format format,
    const std::string& reader = "") {
  std::map<std::string, std::vector<std::map<std::string, json>>> out;
  const auto& columns = logger::blob::kColumns;
  for (const auto& [key, data] : objects) {
    auto& records = out[key];
    if (format == logger::blob::Format::Csv) {
      auto rows = blobtest::readCsv(data);
      REQUIRE(!rows.empty());
      REQUIRE(rows[0] == std::vector<std::string>(columns.begin(), columns.end()));
      for (size_t r = 1; r < rows.size(); ++r) {
        REQUIRE(rows[r].size() == columns.size());
        std::map<std::string, json> cells;
        for (size_t c = 0; c < columns.size(); ++c)
          cells[std::string(columns[c])] = rows[r][c];
        CHECK(cells.at("tlsSkipVerify") == "false");
        records.push_back(cells);
      }
    } else {
      json file = blobtest::readParquet(reader, data);
      REQUIRE(file.at("columns").size() == columns.size());
      for (size_t c = 0; c < columns.size(); ++c)
        CHECK(file.at("columns")[c].at("name") == columns[c]);
      CHECK(file.at("numRows") == file.at("rows").size());
      for (const json& row : file.at("rows")) {
        std::map<std::string, json> cells;
        for (size_t c = 0; c < columns.size(); ++c)
          cells[std::string(columns[c])] = row[c];
        CHECK(cells.at("tlsSkipVerify") == false);
        records.push_back(cells);
      }
    }
  }
  return out;
}

// The id and CloudEvents type suffix a record gives a key.
Match matchOfCells(const std::vector<Exchange>& exchanges,
                   const std::map<std::string, json>& cells) {
  std::string bytes;
  logger::blob::decodeBase64(cells.at("bytes").get<std::string>(), bytes);
  return matchPayload(exchanges, bytes);
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

TEST_CASE("blob sink: s3 csv in batches of 3, parsed by Python's csv module") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  testsupport::ModelServer model;
  testsupport::Agent agent(
      model.port(),
      loggerArgs("s3://logs/prefix", {"--log-store-format", "csv", "--log-batch-size", "3"}),
      processEnv(s3.env()));
  std::vector<Exchange> exchanges = sendRequests(agent, 3);
  auto objects = awaitObjects([] { return readObjects("s3://logs/prefix"); }, 2);
  REQUIRE(objects.size() == 2);
  size_t total = 0;
  std::set<std::pair<std::string, bool>> seen;
  for (const auto& [key, records] : tabularRecords(objects, logger::blob::Format::Csv)) {
    REQUIRE(records.size() == 3);
    // The key takes the id and type of the batch's first record, as upstream's.
    checkKey(key, matchOfCells(exchanges, records.front()), "csv");
    for (const auto& cells : records) {
      checkCells(cells, exchanges, "s3://logs/prefix");
      Match match = matchOfCells(exchanges, cells);
      seen.insert({match.exchange->request, match.request});
      ++total;
    }
  }
  CHECK(total == 6);
  CHECK(seen.size() == 6);
  CHECK(agent.terminate() == 0);
}

TEST_CASE("blob sink: s3 parquet, timed batches, read by hyparquet and parquetjs") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  testsupport::ModelServer model;
  testsupport::Agent agent(
      model.port(),
      loggerArgs("s3://logs/prefix", {"--log-store-format", "parquet", "--log-batch-size", "4",
                                      "--log-batch-interval", "300ms"}),
      processEnv(s3.env()));
  std::vector<Exchange> exchanges = sendRequests(agent, 3);
  // 6 records in batches of at most 4: at least one partial batch, which only the interval
  // can flush while the agent runs. Where the ticks fall among the records depends on timing,
  // so the test waits for all six records rather than for a number of objects.
  auto countRows = [](const std::map<std::string, std::string>& objects) {
    size_t rows = 0;
    for (const auto& [key, records] :
         tabularRecords(objects, logger::blob::Format::Parquet, "hyparquet"))
      rows += records.size();
    return rows;
  };
  std::map<std::string, std::string> objects;
  for (auto until = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(200ms)) {
    objects = readObjects("s3://logs/prefix");
    if (countRows(objects) >= 6) break;
  }
  REQUIRE(objects.size() >= 2);
  for (const std::string reader : {"hyparquet", "parquetjs"}) {
    INFO(reader);
    size_t total = 0;
    bool partial = false;
    std::set<std::pair<std::string, bool>> seen;
    for (const auto& [key, records] :
         tabularRecords(objects, logger::blob::Format::Parquet, reader)) {
      REQUIRE(!records.empty());
      CHECK(records.size() <= 4);
      partial = partial || records.size() < 4;
      total += records.size();
      checkKey(key, matchOfCells(exchanges, records.front()), "parquet");
      for (const auto& cells : records) {
        checkCells(cells, exchanges, "s3://logs/prefix");
        Match match = matchOfCells(exchanges, cells);
        seen.insert({match.exchange->request, match.request});
      }
    }
    CHECK(total == 6);
    CHECK(partial);
    CHECK(seen.size() == 6);
  }
  CHECK(agent.terminate() == 0);
}

namespace {

// Every regular file below `dir`, by path relative to it (the GCS fake's objects).
std::map<std::string, std::string> readFiles(const std::string& dir) {
  std::map<std::string, std::string> objects;
  if (!fs::exists(dir)) return objects;
  for (const std::string& relative : storagetest::listFiles(dir))
    objects[relative] = testsupport::readFile(dir + "/" + relative);
  return objects;
}

Env gcsEnv(const storagetest::FakeGcs& gcs) {
  return {{"STORAGE_EMULATOR_HOST", gcs.endpoint()},
          {"GOOGLE_APPLICATION_CREDENTIALS", std::nullopt}};
}

// Six json objects (three exchanges, one record each) checked field by field.
void checkJsonObjects(const std::map<std::string, std::string>& objects,
                      const std::vector<Exchange>& exchanges, const std::string& host,
                      const std::string& scheme) {
  REQUIRE(objects.size() == 6);
  std::set<std::pair<std::string, bool>> seen;
  for (const auto& [key, data] : objects) {
    json record = json::parse(data);
    REQUIRE(record.is_object());
    checkJsonRecord(record, exchanges, host, scheme);
    std::string bytes;
    logger::blob::decodeBase64(record.at("bytes").get<std::string>(), bytes);
    Match match = matchPayload(exchanges, bytes);
    checkKey(key, match, "json");
    seen.insert({match.exchange->request, match.request});
  }
  CHECK(seen.size() == 6);
}

// A metric's value on the agent's /metrics ("" when absent).
double metricValue(const std::string& text, const std::string& series) {
  for (size_t at = text.find(series); at != std::string::npos; at = text.find(series, at + 1)) {
    if (at > 0 && text[at - 1] != '\n') continue;
    size_t space = at + series.size();
    if (space >= text.size() || text[space] != ' ') continue;
    return std::stod(text.substr(space + 1, text.find('\n', space) - space - 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("blob sink: gs json objects on the GCS fake, two event loops sharing the upload thread") {
  storagetest::FakeGcs gcs;
  fs::create_directories(gcs.root() + "/logs");
  testsupport::ModelServer model;
  testsupport::Agent agent(model.port(), loggerArgs("gs://logs/prefix", {"--threads", "2"}),
                           processEnv(gcsEnv(gcs)));
  std::vector<Exchange> exchanges = sendRequests(agent, 3);
  const std::string dir = gcs.root() + "/logs/prefix";
  auto objects = awaitObjects([&] { return readFiles(dir); }, 6);
  checkJsonObjects(objects, exchanges, "logs", "gs");
  CHECK(agent.terminate() == 0);
}

TEST_CASE("blob sink: abfs json objects on azurite, Shared Key") {
  storagetest::Azurite azurite;
  azurite.createContainer("logs");
  Env azure{{"AZURE_SERVICE_URL", azurite.endpoint() + "/"},
            {"AZURE_STORAGE_BLOB_ENDPOINT", azurite.endpoint()},
            {"AZURE_STORAGE_ACCESS_KEY", storagetest::Azurite::kKey},
            {"AZURE_ACCOUNT_NAME", std::nullopt},
            {"AZURE_CLIENT_ID", std::nullopt},
            {"AZ_CLIENT_ID", std::nullopt},
            {"AZURE_ACCESS_TOKEN", std::nullopt}};
  ScopedEnv env(azure);
  testsupport::ModelServer model;
  testsupport::Agent agent(
      model.port(),
      loggerArgs("abfs://logs@" + std::string(storagetest::Azurite::kAccount) + "/prefix", {}),
      processEnv(azure));
  std::vector<Exchange> exchanges = sendRequests(agent, 3);
  auto objects = awaitObjects(
      [] { return readObjects("https://devstoreaccount1.blob.core.windows.net/logs/prefix"); }, 6);
  // Go's url.URL cannot carry the user name (the container): the record's URL has the account.
  checkJsonObjects(objects, exchanges, "devstoreaccount1", "abfs");
  CHECK(agent.terminate() == 0);
}

TEST_CASE("blob sink: SIGTERM stores the half-filled batch before exiting") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  testsupport::ModelServer model;
  testsupport::Agent agent(model.port(),
                           loggerArgs("s3://logs/prefix", {"--log-batch-size", "100"}),
                           processEnv(s3.env()));
  std::vector<Exchange> exchanges = sendRequests(agent, 2);
  std::this_thread::sleep_for(300ms);
  CHECK(readObjects("s3://logs/prefix").empty());  // 4 of 100: nothing due yet
  CHECK(agent.terminate() == 0);
  auto objects = readObjects("s3://logs/prefix");
  REQUIRE(objects.size() == 1);
  json batch = json::parse(objects.begin()->second);
  REQUIRE(batch.is_array());
  CHECK(batch.size() == 4);
  for (const json& record : batch)
    checkJsonRecord(record, exchanges, "logs", "s3");
  CHECK_THAT(agent.process().output(), Catch::Contains("blob sink drained"));
}

TEST_CASE("blob sink: a store that fails and recovers loses nothing, and the metrics count it") {
  // The GCS fake answers its first 12 uploads with 503: the first batch outlasts the storage
  // library's 5 attempts twice and is tried again by the upload thread until it is stored.
  storagetest::FakeGcs gcs({"--fail-uploads", "12"});
  fs::create_directories(gcs.root() + "/logs");
  testsupport::ModelServer model;
  const uint16_t metricsPort = testsupport::freePort();
  testsupport::Agent agent(
      model.port(), loggerArgs("gs://logs/prefix", {"--metrics-port", std::to_string(metricsPort)}),
      processEnv(gcsEnv(gcs)));
  std::vector<Exchange> exchanges = sendRequests(agent, 3);
  const std::string dir = gcs.root() + "/logs/prefix";
  auto objects = awaitObjects([&] { return readFiles(dir); }, 6);
  checkJsonObjects(objects, exchanges, "logs", "gs");
  // The fake stores the sixth object a moment before its answer reaches the upload thread, which
  // counts it and releases its records then.
  const char* uploaded = R"(kserve_agent_logger_blob_objects_total{result="uploaded"})";
  std::string metrics;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(50ms)) {
    metrics =
        testsupport::httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics")
            .body;
    if (metricValue(metrics, uploaded) == 6 &&
        metricValue(metrics, "kserve_agent_logger_queue_events") == 0) {
      break;
    }
  }
  INFO(metrics);
  CHECK(metricValue(metrics, uploaded) == 6);
  CHECK(metricValue(metrics, R"(kserve_agent_logger_blob_objects_total{result="failed"})") == 0);
  CHECK(metricValue(metrics, "kserve_agent_logger_blob_records_total") == 6);
  CHECK(metricValue(metrics, "kserve_agent_logger_queue_events") == 0);
  CHECK(metrics.find("kserve_agent_logger_events_dropped_total{") == std::string::npos);
  CHECK_THAT(agent.process().output(), Catch::Contains("trying again"));
  CHECK(agent.terminate() == 0);
}

TEST_CASE("blob sink: records beyond --log-queue-events are dropped and counted, never delayed") {
  // Every upload fails for a while: the two records the queue holds wait, the rest are dropped.
  storagetest::FakeGcs gcs({"--fail-uploads", "1000"});
  fs::create_directories(gcs.root() + "/logs");
  testsupport::ModelServer model;
  const uint16_t metricsPort = testsupport::freePort();
  testsupport::Agent agent(
      model.port(),
      loggerArgs("gs://logs/prefix", {"--metrics-port", std::to_string(metricsPort),
                                      "--log-queue-events", "2", "--drain-timeout", "1s"}),
      processEnv(gcsEnv(gcs)));
  auto start = std::chrono::steady_clock::now();
  sendRequests(agent, 5);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  const std::string metrics =
      testsupport::httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics").body;
  INFO(metrics);
  CHECK(metricValue(metrics, R"(kserve_agent_logger_events_dropped_total{reason="queue_full"})") ==
        8);
  CHECK(metricValue(metrics, "kserve_agent_logger_queue_events") == 2);
  CHECK(agent.terminate() == 0);
  // The two held records were still not stored at the drain deadline.
  CHECK_THAT(agent.process().output(), Catch::Contains("2 record(s) not stored"));
}

TEST_CASE("blob sink: the embedded marshaller's server, and an agent that uses it as external") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  testsupport::ModelServer model;
  // Agent A serves csv on its marshaller port.
  const uint16_t marshallerPort = testsupport::freePort();
  testsupport::Agent a(
      model.port(),
      loggerArgs("s3://logs/a", {"--log-store-format", "csv", "--log-marshaller-port",
                                 std::to_string(marshallerPort)}),
      processEnv(s3.env()));
  const std::string marshaller = "http://127.0.0.1:" + std::to_string(marshallerPort) + "/any/path";
  REQUIRE(testsupport::waitForPort(marshallerPort));

  testsupport::HttpResponse get = testsupport::httpRequest(marshaller);
  CHECK(get.status == 405);
  CHECK(get.body == "Method not allowed\n");
  testsupport::HttpResponse bad =
      testsupport::httpRequest(marshaller, {.method = "POST", .body = "{nope"});
  CHECK(bad.status == 400);
  CHECK_THAT(bad.body, Catch::StartsWith("Invalid JSON"));
  std::vector<logger::blob::LogRequest> batch = blobtest::variedBatch(3);
  std::string body;
  logger::blob::appendBatchJson(body, batch);
  testsupport::HttpResponse ok =
      testsupport::httpRequest(marshaller, {.method = "POST", .body = body});
  CHECK(ok.status == 200);
  CHECK(ok.header("content-type") == "text/csv");
  CHECK(ok.header("x-log-marshal-extension") == "csv");
  logger::blob::Marshalled expected;
  std::string error;
  REQUIRE(logger::blob::marshalLocally(logger::blob::Format::Csv, batch, expected, error));
  CHECK(ok.body == expected.data);

  // Agent B (json by its flags) POSTs its batches to A: its objects are A's csv.
  testsupport::Agent b(model.port(),
                       loggerArgs("s3://logs/b", {"--log-marshaller-url", marshaller}),
                       processEnv(s3.env()));
  std::vector<Exchange> exchanges = sendRequests(b, 3);
  auto objects = awaitObjects([] { return readObjects("s3://logs/b"); }, 6);
  REQUIRE(objects.size() == 6);
  for (const auto& [key, records] : tabularRecords(objects, logger::blob::Format::Csv)) {
    REQUIRE(records.size() == 1);
    checkKey(key, matchOfCells(exchanges, records.front()), "csv");
    checkCells(records.front(), exchanges, "s3://logs/b");
  }
  CHECK(readObjects("s3://logs/a").empty());
  CHECK(b.terminate() == 0);
  CHECK(a.terminate() == 0);
}

TEST_CASE(
    "blob sink: an external marshaller's extension names the object, its 4xx fails the batch") {
  storagetest::S3rver s3("logs");
  ScopedEnv env(s3.env());
  testsupport::ModelServer model;
  // The model server's /echo as a marshaller: it answers the batch itself, with the extension
  // header asked for; the object is the JSON array the agent POSTed.
  testsupport::Agent echo(
      model.port(),
      loggerArgs("s3://logs/echo",
                 {"--log-marshaller-url",
                  model.url("/echo?status=200&header=X-Log-Marshal-Extension:txt")}),
      processEnv(s3.env()));
  std::vector<Exchange> exchanges = sendRequests(echo, 3);
  auto objects = awaitObjects([] { return readObjects("s3://logs/echo"); }, 6);
  REQUIRE(objects.size() == 6);
  for (const auto& [key, data] : objects) {
    json batch = json::parse(data);
    REQUIRE(batch.is_array());
    REQUIRE(batch.size() == 1);
    checkJsonRecord(batch[0], exchanges, "logs", "s3");
    std::string bytes;
    logger::blob::decodeBase64(batch[0].at("bytes").get<std::string>(), bytes);
    checkKey(key, matchPayload(exchanges, bytes), "txt");
  }
  CHECK(echo.terminate() == 0);

  // A marshaller that refuses a batch (400) would refuse it again: given up at once, counted.
  const uint16_t metricsPort = testsupport::freePort();
  testsupport::Agent refused(
      model.port(),
      loggerArgs("s3://logs/refused", {"--log-marshaller-url", model.url("/echo?status=400"),
                                       "--metrics-port", std::to_string(metricsPort)}),
      processEnv(s3.env()));
  sendRequests(refused, 2);
  std::string metrics;
  for (auto until = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(100ms)) {
    metrics =
        testsupport::httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics")
            .body;
    if (metricValue(metrics, R"(kserve_agent_logger_blob_objects_total{result="failed"})") == 4)
      break;
  }
  INFO(metrics);
  CHECK(metricValue(metrics, R"(kserve_agent_logger_blob_objects_total{result="failed"})") == 4);
  CHECK(metricValue(metrics, R"(kserve_agent_logger_events_dropped_total{reason="failed"})") == 4);
  CHECK(metricValue(metrics, R"(kserve_agent_logger_blob_objects_total{result="uploaded"})") == 0);
  CHECK(readObjects("s3://logs/refused").empty());
  CHECK_THAT(refused.process().output(), Catch::Contains("HTTP request failed with status 400"));
  CHECK(refused.terminate() == 0);
}
