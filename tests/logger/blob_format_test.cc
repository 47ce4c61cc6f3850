// The store formats: json (object or array), csv read back by Python's csv module, parquet read
// back by two independent readers (hyparquet and @dsnp/parquetjs), every cell compared.
#include <catch2/catch.hpp>

#include "logger/blob/format.h"
#include "tests/logger/blob_helpers.h"

using namespace logger::blob;

namespace {

// The 14 cells of a record, built from the record's fields with the conversions of §5.5.
std::vector<std::string> expectedRow(const LogRequest& record) {
  std::string bytes;
  if (record.bytes) appendBase64(bytes, *record.bytes);
  std::string metadata;
  if (!record.metadata.empty()) appendMetadataJson(metadata, record.metadata);
  std::string annotations;
  if (!record.annotations.empty()) appendAnnotationsJson(annotations, record.annotations);
  return {record.url ? record.url->toString() : "",
          bytes,
          record.contentType,
          record.reqType,
          record.id,
          record.sourceUri ? record.sourceUri->toString() : "",
          record.inferenceService,
          record.namespace_,
          record.component,
          record.endpoint,
          metadata,
          annotations,
          record.certName,
          record.tlsSkipVerify ? "true" : "false"};
}

std::string parquet(const std::vector<LogRequest>& batch) {
  std::string out;
  std::string error;
  REQUIRE(encodeParquet(batch, out, error));
  return out;
}

// Reads the file with both readers and compares the schema and every cell.
void checkParquet(const std::vector<LogRequest>& batch) {
  const std::string file = parquet(batch);
  for (const char* reader : {"hyparquet", "parquetjs"}) {
    INFO(reader);
    const nlohmann::json read = blobtest::readParquet(reader, file);
    CHECK(read["numRows"] == batch.size());
    const auto& columns = read["columns"];
    REQUIRE(columns.size() == kColumns.size());
    for (size_t i = 0; i < kColumns.size(); ++i) {
      CHECK(columns[i]["name"] == kColumns[i]);
      CHECK(columns[i]["repetition"] == "REQUIRED");
      CHECK(columns[i]["type"] == (i == kTlsSkipVerifyColumn ? "BOOLEAN" : "BYTE_ARRAY"));
      if (i != kTlsSkipVerifyColumn) {
        CHECK(columns[i]["logical"] == (std::string(reader) == "hyparquet" ? "STRING" : "UTF8"));
      }
    }
    const auto& rows = read["rows"];
    REQUIRE(rows.size() == batch.size());
    size_t mismatches = 0;
    for (size_t r = 0; r < batch.size(); ++r) {
      const std::vector<std::string> expected = expectedRow(batch[r]);
      for (size_t c = 0; c < kColumns.size(); ++c) {
        const bool same = c == kTlsSkipVerifyColumn
                              ? rows[r][c] == batch[r].tlsSkipVerify
                              : rows[r][c].is_string() && rows[r][c] == expected[c];
        if (!same && ++mismatches <= 5) {
          INFO("row " << r << " column " << kColumns[c] << ": read "
                      << rows[r][c].dump().substr(0, 200));
          CHECK(same);
        }
      }
    }
    CHECK(mismatches == 0);
  }
}

// Where two long texts first differ, with some context, for a readable failure.
std::string firstDifference(const std::string& a, const std::string& b) {
  size_t at = 0;
  while (at < a.size() && at < b.size() && a[at] == b[at])
    ++at;
  if (at == a.size() && at == b.size()) return "equal";
  const size_t from = at < 60 ? 0 : at - 60;
  return "at byte " + std::to_string(at) + ":\n  " + a.substr(from, 120) + "\n  " +
         b.substr(from, 120);
}

}  // namespace

TEST_CASE("formats are json, csv and parquet, with their extension and content type",
          "[blob][format]") {
  CHECK(parseFormat("json") == Format::Json);
  CHECK(parseFormat("csv") == Format::Csv);
  CHECK(parseFormat("parquet") == Format::Parquet);
  CHECK_FALSE(parseFormat("JSON"));
  CHECK_FALSE(parseFormat("avro"));
  CHECK_FALSE(parseFormat(""));
  CHECK(formatExtension(Format::Json) == "json");
  CHECK(formatExtension(Format::Csv) == "csv");
  CHECK(formatExtension(Format::Parquet) == "parquet");
  CHECK(formatContentType(Format::Json) == "application/json");
  CHECK(formatContentType(Format::Csv) == "text/csv");
  CHECK(formatContentType(Format::Parquet) == "application/octet-stream");
}

TEST_CASE("json: one record is an object, none or several an array", "[blob][format]") {
  const auto batch = blobtest::variedBatch(3);
  std::string one;
  encodeJson({batch[0]}, one);
  std::string expected;
  appendLogRequestJson(expected, batch[0]);
  CHECK(one == expected);
  CHECK(one.front() == '{');

  std::string several;
  encodeJson(batch, several);
  expected.clear();
  appendBatchJson(expected, batch);
  CHECK(several == expected);
  CHECK(several.front() == '[');

  std::string none;
  encodeJson({}, none);
  CHECK(none == "[]");
}

TEST_CASE("csv: the header row and Go's quoting, byte for byte", "[blob][format]") {
  std::string empty;
  encodeCsv({}, empty);
  CHECK(empty ==
        "url,bytes,contentType,reqType,id,sourceUri,inferenceService,namespace,component,"
        "endpoint,metadata,annotations,certName,tlsSkipVerify\n");

  LogRequest record;
  GoUrl url;
  std::string error;
  REQUIRE(GoUrl::parse("s3://bucket/logs", url, error));
  record.url = url;
  record.bytes = "hi";
  record.contentType = "q\"q";
  record.reqType = "org.kubeflow.serving.inference.request";
  record.id = "a,b";
  record.inferenceService = " lead";
  record.namespace_ = "\xc2\xa0nbsp";  // U+00A0 is a space to Go's unicode.IsSpace
  record.component = "mid dle";
  record.endpoint = "\\.";
  record.metadata["K"] = std::vector<std::string>{"v1", "v2"};
  record.annotations["a"] = "line\nbreak";
  record.certName = "cr\rlf";
  std::string csv;
  encodeCsv({record}, csv);
  CHECK(csv == empty +
                   "s3://bucket/logs,aGk=,\"q\"\"q\",org.kubeflow.serving.inference.request,"
                   "\"a,b\",,\" lead\",\"\xc2\xa0nbsp\",mid dle,\"\\.\","
                   "\"{\"\"K\"\":[\"\"v1\"\",\"\"v2\"\"]}\",\"{\"\"a\"\":\"\"line\\nbreak\"\"}\","
                   "\"cr\rlf\",false\n");
}

TEST_CASE("csv: Python's csv module reads every cell back", "[blob][format]") {
  for (size_t count : {size_t{0}, size_t{1}, size_t{2}, size_t{57}}) {
    INFO(count << " records");
    const auto batch = blobtest::variedBatch(count);
    std::string csv;
    encodeCsv(batch, csv);
    const auto rows = blobtest::readCsv(csv);
    REQUIRE(rows.size() == count + 1);
    CHECK(rows[0] == std::vector<std::string>(kColumns.begin(), kColumns.end()));
    for (size_t r = 0; r < count; ++r) {
      INFO("row " << r);
      CHECK(rows[r + 1] == expectedRow(batch[r]));
    }
  }
}

TEST_CASE("csv and parquet cells are UTF-8 even when a field is not", "[blob][format]") {
  LogRequest record;
  record.id =
      "a\xff"
      "b\xe2\x82";                  // a stray byte and a truncated sequence
  record.contentType = "\xc3\xa9";  // valid: kept
  std::string cell;
  appendCell(cell, record, 4);
  CHECK(cell ==
        "a\xef\xbf\xbd"
        "b\xef\xbf\xbd\xef\xbf\xbd");
  cell.clear();
  appendCell(cell, record, 2);
  CHECK(cell == "\xc3\xa9");
  const std::string file = parquet({record});
  for (const char* reader : {"hyparquet", "parquetjs"}) {
    INFO(reader);
    const auto read = blobtest::readParquet(reader, file);
    CHECK(read["rows"][0][4] ==
          "a\xef\xbf\xbd"
          "b\xef\xbf\xbd\xef\xbf\xbd");
  }
}

TEST_CASE("parquet: an empty batch is a valid file with no rows", "[blob][format]") {
  const std::string file = parquet({});
  CHECK(file.substr(0, 4) == "PAR1");
  CHECK(file.substr(file.size() - 4) == "PAR1");
  checkParquet({});
}

TEST_CASE("parquet: one record and a few, every cell read back by two readers", "[blob][format]") {
  checkParquet(blobtest::variedBatch(1));
  checkParquet(blobtest::variedBatch(3));
  checkParquet(blobtest::variedBatch(64));
}

TEST_CASE("parquet: thousands of records and MiB payloads span many pages", "[blob][format]") {
  auto batch = blobtest::variedBatch(3000);
  for (size_t i = 0; i < 3; ++i) {
    LogRequest big = blobtest::variedRecord(i);
    big.bytes = std::string((size_t{2} << 20) + i, static_cast<char>('x' + i));
    big.id = "big-" + std::to_string(i);
    batch.insert(batch.begin() + static_cast<long>(i * 1000), big);
  }
  const std::string file = parquet(batch);
  CHECK(file.size() > (size_t{8} << 20));
  checkParquet(batch);
}

TEST_CASE("Go's encoding/json, encoding/csv and net/url write the same bytes", "[blob][format]") {
  auto batch = blobtest::variedBatch(30);
  batch[2].occurrenceTime.offsetSeconds = -(9 * 3600 + 30 * 60);
  batch[3].occurrenceTime = Timestamp{};
  LogRequest odd;
  // No invalid UTF-8 here: Go writes it as \ufffd, which its decoder turns into U+FFFD, so the
  // oracle's round trip would differ (the escape test of blob_record_test covers it).
  odd.id = "\x01<script>&\u2028";
  odd.annotations["k"] = "\t \"x\"";
  batch.push_back(odd);
  std::string json;
  appendBatchJson(json, batch);
  const std::vector<std::string> urls{"s3://bucket/logs",
                                      "abfs://c:pw@account/p%20q",
                                      "sklearn-iris-predictor-7d9f",
                                      "http://localhost:9081/",
                                      "HTTP://Host/a%2Fb?x=1#f g",
                                      "http://h/a b",
                                      "mailto:x@y",
                                      "http://[::1]:8080/x",
                                      "file:///tmp/x",
                                      "s3:/bucket",
                                      "http://h/?",
                                      "gs://b/%E6%97%A5",
                                      "/a:b",
                                      "http://h/%zz",
                                      ":foo",
                                      "1a:b",
                                      "http://h:port/",
                                      "http://a b/"};
  const nlohmann::json go = blobtest::goOracle(json, urls);
  CHECK(firstDifference(go["json"].get<std::string>(), json) == "equal");
  std::string csv;
  encodeCsv(batch, csv);
  CHECK(firstDifference(go["csv"].get<std::string>(), csv) == "equal");
  for (size_t i = 0; i < urls.size(); ++i) {
    INFO(urls[i]);
    GoUrl parsed;
    std::string error;
    const bool ok = GoUrl::parse(urls[i], parsed, error);
    const auto& expected = go["urls"][i];
    REQUIRE(ok == expected.contains("json"));
    if (!ok) {
      CHECK(expected["error"].get<std::string>().ends_with(error));
      continue;
    }
    std::string structJson;
    appendGoUrlJson(structJson, parsed);
    // Go's JSON of a URL with user info holds "User":{} as ours does: the fields are unexported.
    CHECK(structJson == expected["json"].get<std::string>());
    if (!parsed.hasUser) CHECK(parsed.toString() == expected["string"].get<std::string>());
  }
}
