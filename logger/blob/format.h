// The store formats of the embedded marshaller (spec/upstream-logger.md §5.4, §5.5): json, csv
// and parquet, each written as upstream writes it. Pure functions of a batch.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "logger/blob/record.h"

namespace logger::blob {

enum class Format { Json, Csv, Parquet };

// "json", "csv" or "parquet" (exactly; upstream silently used json for anything else, we refuse).
std::optional<Format> parseFormat(std::string_view name);
// The object extension and the Content-Type the marshaller answers with.
std::string_view formatExtension(Format format);
std::string_view formatContentType(Format format);

// The tabular columns of csv and parquet, in upstream's order. occurrenceTime is not among them,
// as upstream (its csv and parquet objects carry no time).
inline constexpr std::array<std::string_view, 14> kColumns{
    "url",       "bytes",        "contentType",      "reqType",
    "id",        "sourceUri",    "inferenceService", "namespace",
    "component", "endpoint",     "metadata",         "annotations",
    "certName",  "tlsSkipVerify"};
inline constexpr size_t kTlsSkipVerifyColumn = 13;

// Appends the cell of `column` for a record: URLs in their string form ("" when absent), bytes
// in standard base64 ("" when absent), metadata and annotations as compact JSON ("" when empty),
// tlsSkipVerify as "true" or "false", the other fields as they are.
void appendCell(std::string& out, const LogRequest& record, size_t column);

// json: one record as an object, 0 or several as an array ("[]" for none).
void encodeJson(const std::vector<LogRequest>& batch, std::string& out);
// csv (Go's encoding/csv): the header row always, then a row per record; a field is quoted when
// it holds ',', '"', CR or LF, starts with a Unicode space, or is `\.`; lines end with "\n".
void encodeCsv(const std::vector<LogRequest>& batch, std::string& out);
// parquet: one row group (none for an empty batch, which is still a valid file), the 14 columns
// required (13 UTF-8 byte arrays and a boolean), PLAIN encoding, uncompressed, data pages v1
// of about 1 MiB. False (and `error`) only for a cell of 2 GiB or more, which the format cannot
// hold.
bool encodeParquet(const std::vector<LogRequest>& batch, std::string& out, std::string& error);

// The object of a batch in `format`.
bool encode(Format format, const std::vector<LogRequest>& batch, std::string& out,
            std::string& error);

}  // namespace logger::blob
