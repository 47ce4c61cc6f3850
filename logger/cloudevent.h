// CloudEvents 1.0 binary-mode headers for inference logs, exactly as the upstream agent sends
// them (spec/upstream-logger.md §3), and the pure helpers they need: RFC 3339 times, UUIDv4,
// Go-style header canonicalisation and JSON encoding.
#pragma once

#include <array>
#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/head.h"

namespace logger {

inline constexpr std::string_view kRequestType = "org.kubeflow.serving.inference.request";
inline constexpr std::string_view kResponseType = "org.kubeflow.serving.inference.response";

enum class EventKind { Request, Response };

// Header name (Go-canonical) -> every value it had, in arrival order. Sorted by name, as Go's
// encoding/json writes map keys.
using Metadata = std::map<std::string, std::vector<std::string>>;

// The per-event part of a CloudEvent: what the module saw for one side of an exchange. Its
// strings are made and dropped with every exchange, so a copy takes their capacity from this
// thread's spare strings and a record gives it back when it goes (agent/recycle.h). Once warm,
// logging an exchange calls malloc no more (with the default flags).
struct Record {
  Record() = default;
  Record(const Record& other);  // copies every member below
  Record(Record&&) noexcept = default;
  Record& operator=(const Record&) = delete;
  Record& operator=(Record&&) noexcept = default;
  ~Record();

  EventKind kind = EventKind::Request;
  std::string id;
  std::chrono::system_clock::time_point time;      // request arrival or response completion
  std::chrono::system_clock::time_point recorded;  // when the event was made (Ce-Recordedtime)
  std::string contentType;                         // no Content-Type header when empty
  std::string metadataJson = "{}";                 // see metadataJson()
  std::optional<int> statusCode;                   // the statuscode extension (--log-all-responses)
};

// The per-process part: attributes from flags, the same on every event.
struct EventAttributes {
  std::string source;
  std::string inferenceService;
  std::string namespace_;
  std::string component;
  std::string endpoint;
  std::string annotationsJson;  // "" when there are no annotations (no header is sent then)
};

// "2024-05-01T12:00:00" for a second since the epoch; the last one formatted is kept, as events
// come in bursts within the same second.
class DateCache {
 public:
  const std::string& of(std::time_t seconds);

 private:
  std::time_t second_ = -1;
  std::string text_;
};

// Appends Go's time.RFC3339Nano form of `time` in UTC: "2024-05-01T12:00:00.1234Z" (fraction
// trimmed of trailing zeros and left out when zero).
void appendRfc3339Nano(std::string& out, std::chrono::system_clock::time_point time,
                       DateCache& dates);

// The HTTP headers of binary-mode events, in the Go-canonical casing upstream puts on the wire
// (Ce-Id, Ce-Inferenceservicename, ...). The lines that are the same on every event of a kind
// come first and are serialised once, so writing an event's headers is a few appends. Header
// order carries no meaning in HTTP; upstream's Go client writes them sorted by name.
class EventFormat {
 public:
  explicit EventFormat(const EventAttributes& attributes);

  // Appends the headers of `record`, one "Name: value\r\n" line each ("Name:\r\n" when the
  // value is empty).
  void appendHeaders(const Record& record, std::string& out) const;
  // The same headers as a list, in the same order.
  core::Headers headers(const Record& record) const;

 private:
  // Per EventKind: Ce-Specversion, Ce-Source, Ce-Type, the attribute lines, Ce-Annotations.
  std::array<std::string, 2> constant_;
  mutable DateCache dates_;
};

// The Content-Type events carry instead of a CloudEvents media type (see below).
inline constexpr std::string_view kNeutralContentType = "application/octet-stream";

// Whether a message's Content-Type is a CloudEvents media type: "application/cloudevents" and
// all that starts with it (+json, -batch+json, ...), in any case, with or without parameters.
// A consumer following the CloudEvents HTTP binding reads a body sent with such a type as the
// event itself (structured or batched mode), not as the data of the agent's event: such bodies
// are sent as kNeutralContentType, with the message's own type in the Ce-Originalcontenttype
// extension, so that no client chooses the attributes consumers read.
bool isCloudEventsMediaType(std::string_view contentType);

// Appends `value` as the CloudEvents HTTP binding writes attribute values in headers (§3.1.3.2):
// space, '"', '%' and every byte outside printable ASCII percent-encoded.
void appendPercentEncoded(std::string& out, std::string_view value);

// Appends a random (version 4, RFC 9562) UUID in lowercase: "0009174a-24a8-4603-b098-09c8799950e9".
void appendRandomUuid(std::string& out);

// A JSON string literal as Go's encoding/json writes it: <, > and & as \u003c, \u003e, \u0026,
// U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
std::string jsonString(std::string_view text);

// The Ce-Metadata value: {"Name":["v1","v2"],...}; "{}" when empty.
std::string metadataJson(const Metadata& metadata);

// {"key":"value",...} from "key=value" items split at the first '='; a later item wins over an
// earlier one with the same key. "" when there are no items (then no Ce-Annotations header).
std::string annotationsJson(const std::vector<std::string>& items);

// The metadata of a request: for each configured header name, matched case-insensitively (a fix
// over upstream's exact match on Go-canonical names), every value the request carries, keyed by
// the Go-canonical name as upstream emits it.
Metadata collectMetadata(const core::Headers& requestHeaders,
                         const std::vector<std::string>& metadataHeaders);

// Sets `id` to the id both events share: the request's Ce-Id when it has a non-blank one, else a
// new UUIDv4. True when the id is the client's (the blob sinks' keys then keep it apart).
bool assignEventId(std::string& id, const core::Headers& requestHeaders);

}  // namespace logger
