// The marshaller protocol: the embedded marshaller's answers (upstream's marshaller_json/csv/
// parquet tests as black-box cases) and the agent's reading of a marshaller's answer (upstream's
// marshaller_http tests, without the HTTP client, which belongs to the agent).
#include <catch2/catch.hpp>

#include "logger/blob/marshaller.h"
#include "tests/logger/blob_helpers.h"

using namespace logger::blob;

namespace {

std::string header(const MarshalAnswer& answer, const std::string& name) {
  for (const auto& [key, value] : answer.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

std::string requestBody(const std::vector<LogRequest>& batch) {
  return marshalRequestBody(batch);
}

const Format kFormats[] = {Format::Json, Format::Csv, Format::Parquet};

}  // namespace

TEST_CASE("the marshaller refuses methods other than POST with 405", "[blob][marshaller]") {
  for (Format format : kFormats) {
    for (const char* method : {"GET", "PUT", "DELETE", "PATCH", "post"}) {
      INFO(method);
      const MarshalAnswer answer = answerMarshalRequest(format, method, "[]");
      CHECK(answer.status == 405);
      CHECK(answer.body == "Method not allowed\n");
      CHECK(header(answer, "Content-Type") == "text/plain; charset=utf-8");
      CHECK(header(answer, "X-Log-Marshal-Extension") == "<absent>");
    }
  }
}

TEST_CASE("the marshaller answers 400 Invalid JSON to a body that is not a batch",
          "[blob][marshaller]") {
  for (Format format : kFormats) {
    for (const char* body : {"not json", "{\"id\":\"x\"}", "[{\"id\":1}]", "", "[{"}) {
      INFO(body);
      const MarshalAnswer answer = answerMarshalRequest(format, "POST", body);
      CHECK(answer.status == 400);
      CHECK(answer.body.starts_with("Invalid JSON: "));
      CHECK(answer.body.ends_with("\n"));
      CHECK(header(answer, "X-Log-Marshal-Extension") == "<absent>");
    }
  }
  const MarshalAnswer answer = answerMarshalRequest(Format::Json, "POST", "[{\"id\":1}]");
  CHECK(answer.body == "Invalid JSON: record 0: field \"id\": expected a string, got a number\n");
}

TEST_CASE("json marshaller: one record is the object, several an array, none []",
          "[blob][marshaller]") {
  const auto batch = blobtest::variedBatch(5);
  MarshalAnswer answer = answerMarshalRequest(Format::Json, "POST", requestBody({batch[0]}));
  REQUIRE(answer.status == 200);
  CHECK(header(answer, "Content-Type") == "application/json");
  CHECK(header(answer, "X-Log-Marshal-Extension") == "json");
  std::string expected;
  appendLogRequestJson(expected, batch[0]);
  CHECK(answer.body == expected);

  for (size_t size = 2; size <= batch.size(); ++size) {
    const std::vector<LogRequest> part(batch.begin(), batch.begin() + static_cast<long>(size));
    answer = answerMarshalRequest(Format::Json, "POST", requestBody(part));
    REQUIRE(answer.status == 200);
    std::vector<LogRequest> back;
    std::string error;
    REQUIRE(decodeBatch(answer.body, back, error));
    CHECK(back == part);
  }

  answer = answerMarshalRequest(Format::Json, "POST", "[]");
  CHECK(answer.status == 200);
  CHECK(answer.body == "[]");
  CHECK(header(answer, "Content-Type") == "application/json");
  CHECK(header(answer, "X-Log-Marshal-Extension") == "json");
}

TEST_CASE("csv marshaller: a header and a row per record, header only for none",
          "[blob][marshaller]") {
  for (size_t size : {size_t{0}, size_t{1}, size_t{4}, size_t{20}}) {
    INFO(size);
    const auto batch = blobtest::variedBatch(size);
    const MarshalAnswer answer = answerMarshalRequest(Format::Csv, "POST", requestBody(batch));
    REQUIRE(answer.status == 200);
    CHECK(header(answer, "Content-Type") == "text/csv");
    CHECK(header(answer, "X-Log-Marshal-Extension") == "csv");
    const auto rows = blobtest::readCsv(answer.body);
    REQUIRE(rows.size() == size + 1);
    CHECK(rows[0] == std::vector<std::string>(kColumns.begin(), kColumns.end()));
    for (size_t r = 0; r < size; ++r)
      CHECK(rows[r + 1][4] == batch[r].id);
  }
}

TEST_CASE("parquet marshaller: a file with a row per record, readable by both readers",
          "[blob][marshaller]") {
  for (size_t size : {size_t{0}, size_t{1}, size_t{7}}) {
    INFO(size);
    const auto batch = blobtest::variedBatch(size);
    const MarshalAnswer answer = answerMarshalRequest(Format::Parquet, "POST", requestBody(batch));
    REQUIRE(answer.status == 200);
    CHECK(header(answer, "Content-Type") == "application/octet-stream");
    CHECK(header(answer, "X-Log-Marshal-Extension") == "parquet");
    for (const char* reader : {"hyparquet", "parquetjs"}) {
      INFO(reader);
      const auto read = blobtest::readParquet(reader, answer.body);
      CHECK(read["numRows"] == size);
      REQUIRE(read["rows"].size() == size);
      for (size_t r = 0; r < size; ++r) {
        CHECK(read["rows"][r][4] == batch[r].id);
        CHECK(read["rows"][r][13] == batch[r].tlsSkipVerify);
      }
      for (size_t c = 0; c < kColumns.size(); ++c)
        CHECK(read["columns"][c]["name"] == kColumns[c]);
    }
  }
}

TEST_CASE("the embedded marshaller without HTTP answers what the POST would",
          "[blob][marshaller]") {
  const auto batch = blobtest::variedBatch(9);
  for (Format format : kFormats) {
    Marshalled local;
    std::string error;
    REQUIRE(marshalLocally(format, batch, local, error));
    const MarshalAnswer answer = answerMarshalRequest(format, "POST", requestBody(batch));
    CHECK(local.data == answer.body);
    CHECK(local.extension == header(answer, "X-Log-Marshal-Extension"));
  }
}

TEST_CASE("the agent reads a 2xx answer as the object and its extension", "[blob][marshaller]") {
  Marshalled out;
  std::string error;
  REQUIRE(readMarshalAnswer(200, "parquet", "PAR1...", out, error));
  CHECK(out.data == "PAR1...");
  CHECK(out.extension == "parquet");
  REQUIRE(readMarshalAnswer(201, std::nullopt, "[]", out, error));
  CHECK(out.data == "[]");
  CHECK(out.extension == "json");
  REQUIRE(readMarshalAnswer(299, "", "x", out, error));
  CHECK(out.extension == "json");
}

TEST_CASE("the agent reads any other status as an error quoting the body", "[blob][marshaller]") {
  Marshalled out;
  std::string error;
  CHECK_FALSE(readMarshalAnswer(500, "json", "boom", out, error));
  CHECK(error == "HTTP request failed with status 500: boom");
  CHECK_FALSE(readMarshalAnswer(302, std::nullopt, "", out, error));
  CHECK(error == "HTTP request failed with status 302: ");
  CHECK_FALSE(readMarshalAnswer(400, std::nullopt, std::string(5000, 'e'), out, error));
  CHECK(error ==
        "HTTP request failed with status 400: " + std::string(kMaxQuotedErrorBody, 'e') + "...");
}

TEST_CASE("batches of 1 to 100 records go to a marshaller and come back with their ids",
          "[blob][marshaller]") {
  for (size_t size = 1; size <= 100; size += 33) {
    const auto batch = blobtest::variedBatch(size);
    const MarshalAnswer answer = answerMarshalRequest(Format::Json, "POST", requestBody(batch));
    Marshalled out;
    std::string error;
    REQUIRE(readMarshalAnswer(answer.status, header(answer, "X-Log-Marshal-Extension"), answer.body,
                              out, error));
    std::vector<LogRequest> back;
    if (size == 1) {
      REQUIRE(decodeBatch("[" + out.data + "]", back, error));
    } else {
      REQUIRE(decodeBatch(out.data, back, error));
    }
    REQUIRE(back.size() == size);
    for (size_t i = 0; i < size; ++i)
      CHECK(back[i].id == batch[i].id);
  }
}
