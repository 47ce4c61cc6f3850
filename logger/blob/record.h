// The record a blob sink stores, as upstream's LogRequest, and its JSON encoding byte for byte as
// Go's encoding/json writes it (spec/upstream-logger.md §5.5). The same JSON is the wire format
// to a marshaller (an external one written for upstream must understand ours) and the `json`
// store format, so it keeps upstream's quirks there: `url` and `sourceUri` are Go url.URL
// struct objects, not strings. Decoding reads a batch (a JSON array of records) as Go's
// json.Decoder reads it into []LogRequest, for the embedded marshaller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logger::blob {

// Go's url.URL with its exported fields, which is all encoding/json writes. `User` is a
// *url.Userinfo whose fields are unexported: JSON carries `{}` or `null`, never the name or a
// password, so only its presence is kept (and a password in the URL never reaches storage).
struct GoUrl {
  std::string scheme;
  std::string opaque;
  bool hasUser = false;
  std::string host;
  std::string path;
  std::string rawPath;
  bool omitHost = false;
  bool forceQuery = false;
  std::string rawQuery;
  std::string fragment;
  std::string rawFragment;

  // Parses `text` as Go's url.Parse does; false (and `error` set) where Go returns an error.
  // The password is dropped; the user name only goes to `user` when asked for (see above).
  static bool parse(std::string_view text, GoUrl& out, std::string& error,
                    std::string* user = nullptr);
  // Go's URL.String(): what the csv and parquet columns hold. A URL that had user info is
  // written with an empty one ("abfs://@account/path"), as upstream's records are after their
  // JSON hop.
  std::string toString() const;

  bool operator==(const GoUrl&) const = default;
};

// A point in time and the UTC offset it is written with: Go's time.Time as it survives a JSON
// round trip. The default is Go's zero time, 0001-01-01T00:00:00Z.
struct Timestamp {
  static constexpr int64_t kGoZeroSeconds = -62135596800;  // 0001-01-01T00:00:00Z
  int64_t seconds = kGoZeroSeconds;                        // since 1970-01-01T00:00:00Z
  uint32_t nanos = 0;
  int32_t offsetSeconds = 0;  // east of UTC

  // The current time with the local zone's offset, as Go's time.Now().
  static Timestamp now();
  // RFC 3339 with nanoseconds (trailing zeros trimmed) and the offset ("Z" for UTC), as Go's
  // time.Time MarshalJSON writes it (without the quotes).
  void appendRfc3339Nano(std::string& out) const;
  // Go's strict RFC 3339 parse (time.Time UnmarshalJSON): "2006-01-02T15:04:05[.frac](Z|±hh:mm)".
  static bool parseRfc3339(std::string_view text, Timestamp& out);

  bool operator==(const Timestamp&) const = default;
};

// Header name -> values. A value list may be JSON null (Go's nil slice); it stays null.
using Metadata = std::map<std::string, std::optional<std::vector<std::string>>>;
using Annotations = std::map<std::string, std::string>;

// Upstream's LogRequest. Empty maps are written as absent (omitempty), as Go does, so an empty
// map and no map are the same record.
struct LogRequest {
  std::optional<GoUrl> url;          // the log URL
  std::optional<std::string> bytes;  // the payload; nullopt is Go's nil (omitted)
  std::string contentType;
  std::string reqType;  // the full CloudEvents type, "org.kubeflow.serving.inference.request"
  std::string id;
  std::optional<GoUrl> sourceUri;
  std::string inferenceService;
  std::string namespace_;
  std::string component;
  std::string endpoint;
  Metadata metadata;
  Annotations annotations;
  std::string certName;
  bool tlsSkipVerify = false;
  Timestamp occurrenceTime;

  bool operator==(const LogRequest&) const = default;
};

// Appends the record as Go's json.Marshal writes a LogRequest: fields in declaration order,
// omitempty rules, bytes in standard base64, map keys sorted, HTML-safe string escapes.
void appendLogRequestJson(std::string& out, const LogRequest& record);
// Appends `[record,record,...]` (`[]` when empty), as Go marshals a []LogRequest.
void appendBatchJson(std::string& out, const std::vector<LogRequest>& batch);
// Appends the JSON object of a GoUrl as Go writes a url.URL.
void appendGoUrlJson(std::string& out, const GoUrl& url);
// Appends the maps as Go's json.Marshal writes them (keys sorted, compact, HTML-safe).
void appendMetadataJson(std::string& out, const Metadata& metadata);
void appendAnnotationsJson(std::string& out, const Annotations& annotations);

// Reads a batch: the first JSON value of `text` must be an array of records (or null, an empty
// batch), as Go's json.Decoder.Decode into a []LogRequest reads it: field names match case-
// insensitively, unknown fields are ignored, a null element is an empty record, what follows the
// first value is not read. False with `error` naming the record and the field on a syntax
// error, a value of the wrong type, bad base64 or a bad time.
// Unlike Go, text that is not UTF-8 and lone UTF-16 surrogate escapes are refused (Go replaces
// them with U+FFFD); the agent never writes either.
bool decodeBatch(std::string_view text, std::vector<LogRequest>& batch, std::string& error);

// Standard base64 with padding (Go's base64.StdEncoding).
void appendBase64(std::string& out, std::string_view bytes);
// Go's base64.StdEncoding.DecodeString: padding required, CR and LF ignored anywhere.
bool decodeBase64(std::string_view text, std::string& out);

}  // namespace logger::blob
