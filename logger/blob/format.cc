#include "logger/blob/format.h"

#include <cstdint>
#include <limits>

#include "core/util/encoding.h"

namespace logger::blob {
namespace {

// ---- csv ----

// Go's unicode.IsSpace for the first rune of a field.
bool isUnicodeSpace(uint32_t rune) {
  switch (rune) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
      return true;
    default:
      return rune >= 0x2000 && rune <= 0x200a;
  }
}

bool csvNeedsQuotes(std::string_view field) {
  if (field.empty()) return false;
  if (field == "\\.") return true;
  if (field.find_first_of(",\"\r\n") != std::string_view::npos) return true;
  uint32_t rune = 0;
  const size_t length = core::utf8Length(field, 0, rune);
  return length > 0 && isUnicodeSpace(rune);
}

void appendCsvField(std::string& out, std::string_view field) {
  if (!csvNeedsQuotes(field)) {
    out.append(field);
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// Text as it comes out of the JSON hop to a marshaller: each byte that is not part of valid
// UTF-8 becomes U+FFFD (Go's encoder replaces them), so csv and parquet cells are always UTF-8.
void appendValidUtf8(std::string& out, std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t rune = 0;
    const size_t length = core::utf8Length(text, i, rune);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
}

// ---- parquet: the Thrift compact protocol, for the footer and the page headers ----

enum ThriftType : uint8_t {
  kI32 = 5,
  kI64 = 6,
  kBinary = 8,
  kList = 9,
  kStruct = 12,
};

class CompactWriter {
 public:
  explicit CompactWriter(std::string& out) : out_(out) { last_.push_back(0); }

  void i32(int16_t id, int32_t value) {
    header(id, kI32);
    zigzag(value);
  }
  void i64(int16_t id, int64_t value) {
    header(id, kI64);
    zigzag(value);
  }
  void binary(int16_t id, std::string_view value) {
    header(id, kBinary);
    bytes(value);
  }
  void beginStruct(int16_t id) {
    header(id, kStruct);
    last_.push_back(0);
  }
  // Ends the struct opened by beginStruct or beginListStruct (or the outermost one).
  void endStruct() {
    out_ += '\0';
    last_.pop_back();
  }
  void beginList(int16_t id, ThriftType element, size_t size) {
    header(id, kList);
    if (size < 15) {
      out_ += static_cast<char>((size << 4) | element);
    } else {
      out_ += static_cast<char>(0xf0 | element);
      varint(size);
    }
  }
  void beginListStruct() { last_.push_back(0); }
  void listI32(int32_t value) { zigzag(value); }
  void listBinary(std::string_view value) { bytes(value); }

 private:
  void header(int16_t id, ThriftType type) {
    const int delta = id - last_.back();
    if (delta > 0 && delta <= 15) {
      out_ += static_cast<char>((delta << 4) | type);
    } else {
      out_ += static_cast<char>(type);
      zigzag(int64_t{id});
    }
    last_.back() = id;
  }
  void varint(uint64_t value) {
    while (value >= 0x80) {
      out_ += static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    out_ += static_cast<char>(value);
  }
  void zigzag(int64_t value) {
    varint((static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63));
  }
  void bytes(std::string_view value) {
    varint(value.size());
    out_.append(value);
  }

  std::string& out_;
  std::vector<int16_t> last_;
};

// parquet.thrift enumerations.
constexpr int32_t kTypeBoolean = 0;
constexpr int32_t kTypeByteArray = 6;
constexpr int32_t kRequired = 0;
constexpr int32_t kConvertedUtf8 = 0;
constexpr int32_t kEncodingPlain = 0;
constexpr int32_t kEncodingRle = 3;
constexpr int32_t kCodecUncompressed = 0;
constexpr int32_t kPageData = 0;

// A data page holds about this many value bytes (pages are size-limited to 2 GiB by the format;
// readers work a page at a time).
constexpr size_t kPageBytes = size_t{1} << 20;

struct ColumnChunk {
  int64_t values = 0;
  int64_t firstPageOffset = 0;
  int64_t totalBytes = 0;  // page headers and pages
};

void appendLittleEndian32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out += static_cast<char>((value >> (8 * i)) & 0xff);
}

// Appends one data page (v1, PLAIN, no levels: every column is required) with its header.
void appendPage(std::string& out, const std::string& data, int32_t values, ColumnChunk& chunk) {
  const size_t start = out.size();
  CompactWriter header(out);
  header.i32(1, kPageData);
  header.i32(2, static_cast<int32_t>(data.size()));
  header.i32(3, static_cast<int32_t>(data.size()));
  header.beginStruct(5);
  header.i32(1, values);
  header.i32(2, kEncodingPlain);
  header.i32(3, kEncodingRle);
  header.i32(4, kEncodingRle);
  header.endStruct();
  header.endStruct();
  out += data;
  chunk.values += values;
  chunk.totalBytes += static_cast<int64_t>(out.size() - start);
}

bool appendByteArrayColumn(std::string& out, const std::vector<LogRequest>& batch, size_t column,
                           ColumnChunk& chunk, std::string& error) {
  std::string page;
  std::string cell;
  int32_t values = 0;
  for (const LogRequest& record : batch) {
    cell.clear();
    appendCell(cell, record, column);
    if (cell.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()) - 4) {
      error = "a " + std::string(kColumns[column]) + " value of " + std::to_string(cell.size()) +
              " bytes is too large for parquet";
      return false;
    }
    if (values > 0 && page.size() + 4 + cell.size() > kPageBytes) {
      appendPage(out, page, values, chunk);
      page.clear();
      values = 0;
    }
    appendLittleEndian32(page, static_cast<uint32_t>(cell.size()));
    page += cell;
    ++values;
  }
  if (values > 0) appendPage(out, page, values, chunk);
  return true;
}

void appendBooleanColumn(std::string& out, const std::vector<LogRequest>& batch,
                         ColumnChunk& chunk) {
  // PLAIN booleans are bit-packed, least significant bit first. A page of 8 Mi values is 1 MiB.
  constexpr size_t kValuesPerPage = kPageBytes * 8;
  for (size_t first = 0; first < batch.size(); first += kValuesPerPage) {
    const size_t count = std::min(kValuesPerPage, batch.size() - first);
    std::string page((count + 7) / 8, '\0');
    for (size_t i = 0; i < count; ++i) {
      if (batch[first + i].tlsSkipVerify)
        page[i / 8] = static_cast<char>(page[i / 8] | (1 << (i % 8)));
    }
    appendPage(out, page, static_cast<int32_t>(count), chunk);
  }
}

void appendFooter(std::string& out, const std::vector<LogRequest>& batch,
                  const std::vector<ColumnChunk>& chunks) {
  const size_t start = out.size();
  CompactWriter meta(out);
  meta.i32(1, 1);  // version
  meta.beginList(2, kStruct, kColumns.size() + 1);
  meta.beginListStruct();
  meta.binary(4, "schema");
  meta.i32(5, static_cast<int32_t>(kColumns.size()));
  meta.endStruct();
  for (size_t column = 0; column < kColumns.size(); ++column) {
    const bool boolean = column == kTlsSkipVerifyColumn;
    meta.beginListStruct();
    meta.i32(1, boolean ? kTypeBoolean : kTypeByteArray);
    meta.i32(3, kRequired);
    meta.binary(4, kColumns[column]);
    if (!boolean) {
      meta.i32(6, kConvertedUtf8);
      meta.beginStruct(10);  // LogicalType, the union member STRING (an empty struct)
      meta.beginStruct(1);
      meta.endStruct();
      meta.endStruct();
    }
    meta.endStruct();
  }
  meta.i64(3, static_cast<int64_t>(batch.size()));
  meta.beginList(4, kStruct, batch.empty() ? 0 : 1);
  if (!batch.empty()) {
    int64_t totalBytes = 0;
    meta.beginListStruct();
    meta.beginList(1, kStruct, chunks.size());
    for (size_t column = 0; column < chunks.size(); ++column) {
      const ColumnChunk& chunk = chunks[column];
      totalBytes += chunk.totalBytes;
      meta.beginListStruct();
      meta.i64(2, chunk.firstPageOffset);  // file_offset
      meta.beginStruct(3);                 // ColumnMetaData
      meta.i32(1, column == kTlsSkipVerifyColumn ? kTypeBoolean : kTypeByteArray);
      meta.beginList(2, ThriftType::kI32, 2);
      meta.listI32(kEncodingPlain);
      meta.listI32(kEncodingRle);
      meta.beginList(3, kBinary, 1);
      meta.listBinary(kColumns[column]);
      meta.i32(4, kCodecUncompressed);
      meta.i64(5, chunk.values);
      meta.i64(6, chunk.totalBytes);
      meta.i64(7, chunk.totalBytes);
      meta.i64(9, chunk.firstPageOffset);
      meta.endStruct();
      meta.endStruct();
    }
    meta.i64(2, totalBytes);
    meta.i64(3, static_cast<int64_t>(batch.size()));
    meta.endStruct();
  }
  meta.binary(6, "kserve-agent logger");
  meta.endStruct();
  appendLittleEndian32(out, static_cast<uint32_t>(out.size() - start));
  out += "PAR1";
}

}  // namespace

std::optional<Format> parseFormat(std::string_view name) {
  if (name == "json") return Format::Json;
  if (name == "csv") return Format::Csv;
  if (name == "parquet") return Format::Parquet;
  return std::nullopt;
}

std::string_view formatExtension(Format format) {
  switch (format) {
    case Format::Csv:
      return "csv";
    case Format::Parquet:
      return "parquet";
    case Format::Json:
      break;
  }
  return "json";
}

std::string_view formatContentType(Format format) {
  switch (format) {
    case Format::Csv:
      return "text/csv";
    case Format::Parquet:
      return "application/octet-stream";
    case Format::Json:
      break;
  }
  return "application/json";
}

void appendCell(std::string& out, const LogRequest& record, size_t column) {
  switch (column) {
    case 0:
      if (record.url) appendValidUtf8(out, record.url->toString());
      break;
    case 1:
      if (record.bytes) appendBase64(out, *record.bytes);
      break;
    case 2:
      appendValidUtf8(out, record.contentType);
      break;
    case 3:
      appendValidUtf8(out, record.reqType);
      break;
    case 4:
      appendValidUtf8(out, record.id);
      break;
    case 5:
      if (record.sourceUri) appendValidUtf8(out, record.sourceUri->toString());
      break;
    case 6:
      appendValidUtf8(out, record.inferenceService);
      break;
    case 7:
      appendValidUtf8(out, record.namespace_);
      break;
    case 8:
      appendValidUtf8(out, record.component);
      break;
    case 9:
      appendValidUtf8(out, record.endpoint);
      break;
    case 10:
      if (!record.metadata.empty()) appendMetadataJson(out, record.metadata);
      break;
    case 11:
      if (!record.annotations.empty()) appendAnnotationsJson(out, record.annotations);
      break;
    case 12:
      appendValidUtf8(out, record.certName);
      break;
    case kTlsSkipVerifyColumn:
      out += record.tlsSkipVerify ? "true" : "false";
      break;
    default:
      break;
  }
}

void encodeJson(const std::vector<LogRequest>& batch, std::string& out) {
  if (batch.size() == 1) {
    appendLogRequestJson(out, batch.front());
  } else {
    appendBatchJson(out, batch);
  }
}

void encodeCsv(const std::vector<LogRequest>& batch, std::string& out) {
  for (size_t column = 0; column < kColumns.size(); ++column) {
    if (column > 0) out += ',';
    appendCsvField(out, kColumns[column]);
  }
  out += '\n';
  std::string cell;
  for (const LogRequest& record : batch) {
    for (size_t column = 0; column < kColumns.size(); ++column) {
      if (column > 0) out += ',';
      cell.clear();
      appendCell(cell, record, column);
      appendCsvField(out, cell);
    }
    out += '\n';
  }
}

bool encodeParquet(const std::vector<LogRequest>& batch, std::string& out, std::string& error) {
  out += "PAR1";
  std::vector<ColumnChunk> chunks(kColumns.size());
  if (!batch.empty()) {
    for (size_t column = 0; column < kColumns.size(); ++column) {
      chunks[column].firstPageOffset = static_cast<int64_t>(out.size());
      if (column == kTlsSkipVerifyColumn) {
        appendBooleanColumn(out, batch, chunks[column]);
      } else if (!appendByteArrayColumn(out, batch, column, chunks[column], error)) {
        return false;
      }
    }
  }
  appendFooter(out, batch, chunks);
  return true;
}

bool encode(Format format, const std::vector<LogRequest>& batch, std::string& out,
            std::string& error) {
  switch (format) {
    case Format::Csv:
      encodeCsv(batch, out);
      return true;
    case Format::Parquet:
      return encodeParquet(batch, out, error);
    case Format::Json:
      break;
  }
  encodeJson(batch, out);
  return true;
}

}  // namespace logger::blob
