// Fuzzes the embedded marshaller's input: the batch of log records a POST carries (outside
// input: anything on the pod's network can reach the marshaller's port). A refused batch must
// say why and leave nothing behind; an accepted one must survive its JSON round trip unchanged
// and encode in every format (csv with its header first, parquet framed by "PAR1", cells valid
// UTF-8). The same text is also read as a URL (Go's url.Parse) and as a blob URL, and used as a
// client's id in an object key, which must stay one segment inside its directory.
//
// Input: the body of a POST to the marshaller.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/encoding.h"
#include "logger/blob/format.h"
#include "logger/blob/key.h"
#include "logger/blob/marshaller.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace logger::blob;

bool validUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t rune = 0;
    const size_t length = core::utf8Length(text, i, rune);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

void checkBatch(const std::vector<LogRequest>& batch) {
  std::string json;
  appendBatchJson(json, batch);
  std::vector<LogRequest> again;
  std::string error;
  FUZZ_CHECK(decodeBatch(json, again, error));
  FUZZ_CHECK(again == batch);

  std::string csv;
  encodeCsv(batch, csv);
  FUZZ_CHECK(csv.starts_with("url,bytes,contentType,"));
  std::string parquet;
  FUZZ_CHECK(encodeParquet(batch, parquet, error));
  FUZZ_CHECK(parquet.size() >= 12 && parquet.starts_with("PAR1") && parquet.ends_with("PAR1"));
  for (const LogRequest& record : batch) {
    for (size_t column = 0; column < kColumns.size(); ++column) {
      std::string cell;
      appendCell(cell, record, column);
      FUZZ_CHECK(validUtf8(cell));
    }
  }
}

void checkUrlAndKey(std::string_view text) {
  GoUrl url;
  std::string error;
  if (GoUrl::parse(text, url, error)) {
    (void)url.toString();
  } else {
    FUZZ_CHECK(!error.empty());
  }
  BlobLocation location;
  if (!parseBlobUrl(text, location, error)) FUZZ_CHECK(!error.empty());

  ObjectKeys keys("dir", 1);
  const std::string key = keys.key(text, ObjectKeys::IdOrigin::Client,
                                   "org.kubeflow.serving.inference.request", "json");
  FUZZ_CHECK(key.starts_with("dir/"));
  FUZZ_CHECK(key.find('/', 4) == std::string::npos);
  FUZZ_CHECK(key.ends_with("-request.json"));
  FUZZ_CHECK(key.size() <= 4 + 200 + 64);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<LogRequest> batch;
  std::string error;
  if (decodeBatch(text, batch, error)) {
    checkBatch(batch);
  } else {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(batch.empty());
  }
  const MarshalAnswer answer = answerMarshalRequest(Format::Json, "POST", text);
  FUZZ_CHECK(answer.status == 200 || answer.status == 400);
  FUZZ_CHECK(answer.status == 200 || answer.body.starts_with("Invalid JSON: "));
  checkUrlAndKey(text.substr(0, 4096));
  return 0;
}
