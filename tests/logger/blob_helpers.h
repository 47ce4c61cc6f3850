// Shared pieces of the blob tests: varied records, and the real readers that check what the
// encoders write (tests/support/parquet_read.mjs with hyparquet and @dsnp/parquetjs, and
// tests/support/csv_read.py with Python's csv module).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "logger/blob/record.h"

namespace blobtest {

// A record whose fields vary with `i`: unicode, commas, quotes, newlines, leading spaces, HTML
// characters, empty and absent fields, payloads of different sizes.
logger::blob::LogRequest variedRecord(size_t i);
// A batch of `count` varied records.
std::vector<logger::blob::LogRequest> variedBatch(size_t count);

// The file read back by a real parquet reader ("hyparquet" or "parquetjs"): {numRows, columns,
// rows}. Fails the test when the reader refuses the file.
nlohmann::json readParquet(const std::string& reader, const std::string& bytes);
// The rows Python's csv module reads from `bytes` (strict mode).
std::vector<std::vector<std::string>> readCsv(const std::string& bytes);
// What Go's standard library makes of a batch and of URL texts (tests/support/go_marshaller):
// {"json": the batch re-encoded, "csv": its csv, "urls": [{"json", "string"} or {"error"}]}.
nlohmann::json goOracle(const std::string& batchJson, const std::vector<std::string>& urls);

}  // namespace blobtest
