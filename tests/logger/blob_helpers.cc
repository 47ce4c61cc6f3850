#include "tests/logger/blob_helpers.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>

#include "tests/support/process.h"

namespace blobtest {

using namespace std::chrono_literals;
using logger::blob::GoUrl;
using logger::blob::LogRequest;

namespace {

// Runs a reader script on `bytes` written to a file and returns the JSON it writes.
nlohmann::json runReader(const std::vector<std::string>& command, const std::string& bytes) {
  const std::string dir = testsupport::makeTempDir("blob-read");
  const std::string input = dir + "/input";
  const std::string output = dir + "/output.json";
  testsupport::writeFile(input, bytes);
  std::vector<std::string> argv = command;
  argv.push_back(input);
  argv.push_back(output);
  testsupport::Process reader(argv);
  const int status = reader.wait(120s);
  INFO(reader.output());
  REQUIRE(status == 0);
  return nlohmann::json::parse(testsupport::readFile(output));
}

GoUrl url(const std::string& text) {
  GoUrl parsed;
  std::string error;
  REQUIRE(GoUrl::parse(text, parsed, error));
  return parsed;
}

}  // namespace

LogRequest variedRecord(size_t i) {
  LogRequest record;
  record.url = url(i % 3 == 0 ? "s3://bucket/logs" : "abfs://container@account/p%20q");
  if (i % 5 != 4) {
    record.bytes =
        "{\"instances\":[[" + std::to_string(i) + ", 2.5]],\"text\":\"héllo, \\\"wörld\\\"\n\"}";
    record.bytes->append(i % 7 * 100, static_cast<char>('a' + i % 26));
  }
  record.contentType = i % 4 == 0 ? "" : "application/json; charset=utf-8";
  record.reqType = i % 2 == 0 ? "org.kubeflow.serving.inference.request"
                              : "org.kubeflow.serving.inference.response";
  record.id = i % 6 == 1 ? " leading space, \"quoted\" id " : "id-" + std::to_string(i);
  if (i % 2 == 0) record.sourceUri = url("http://localhost:9081/");
  record.inferenceService = i % 3 == 1 ? "ïsvc-日本語" : "sklearn-iris";
  record.namespace_ = "default";
  record.component = i % 2 == 0 ? "predictor" : "";
  record.endpoint = i % 8 == 3 ? "\\." : "default";
  if (i % 3 != 2) {
    record.metadata["X-Request-Id"] = std::vector<std::string>{"r-" + std::to_string(i)};
    record.metadata["Foo"] = std::vector<std::string>{"a,b", "c\"d", "line1\nline2", "<&>"};
  }
  if (i % 4 == 1) {
    record.annotations["team"] = "ml, \"core\"";
    record.annotations["emoji"] = "😀 \r\n end";
  }
  record.certName = "service-ca.crt";
  record.tlsSkipVerify = i % 3 == 0;
  record.occurrenceTime.seconds = 1700000000 + static_cast<int64_t>(i);
  record.occurrenceTime.nanos = static_cast<uint32_t>(i * 1000 % 1000000000);
  return record;
}

std::vector<LogRequest> variedBatch(size_t count) {
  std::vector<LogRequest> batch;
  for (size_t i = 0; i < count; ++i)
    batch.push_back(variedRecord(i));
  return batch;
}

nlohmann::json readParquet(const std::string& reader, const std::string& bytes) {
  return runReader(
      {"/usr/bin/env", "node", testsupport::sourcePath("tests/support/parquet_read.mjs"), reader},
      bytes);
}

std::vector<std::vector<std::string>> readCsv(const std::string& bytes) {
  return runReader(
             {"/usr/bin/env", "python3", testsupport::sourcePath("tests/support/csv_read.py")},
             bytes)
      .get<std::vector<std::vector<std::string>>>();
}

nlohmann::json goOracle(const std::string& batchJson, const std::vector<std::string>& urls) {
  const std::string dir = testsupport::makeTempDir("go-oracle");
  testsupport::writeFile(dir + "/batch.json", batchJson);
  testsupport::writeFile(dir + "/urls.json", nlohmann::json(urls).dump());
  // GOPATH mode: the oracle is one file using the standard library only, so no module is
  // needed. Go wants a build cache; without HOME it has none unless told.
  std::map<std::string, std::string> env{{"GO111MODULE", "off"}};
  if (std::getenv("HOME") == nullptr && std::getenv("XDG_CACHE_HOME") == nullptr) {
    env["GOCACHE"] = dir + "/go-cache";
  }
  testsupport::Process go(
      {"/usr/bin/env", "go", "run", testsupport::sourcePath("tests/support/go_marshaller/main.go"),
       dir + "/batch.json", dir + "/urls.json", dir + "/out.json"},
      env);
  const int status = go.wait(300s);
  INFO(go.output());
  REQUIRE(status == 0);
  return nlohmann::json::parse(testsupport::readFile(dir + "/out.json"));
}

}  // namespace blobtest
