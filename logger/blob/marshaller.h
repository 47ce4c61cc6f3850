// The marshaller protocol (spec/upstream-logger.md §5.4), without the HTTP machinery: the
// embedded marshaller's answer to a request as a pure function, the body the agent POSTs to a
// marshaller, and how the agent reads a marshaller's answer. The listener and the client that
// carry these over HTTP belong to the agent.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "logger/blob/format.h"
#include "logger/blob/record.h"

namespace logger::blob {

// The answer header naming the object's extension.
inline constexpr std::string_view kExtensionHeader = "X-Log-Marshal-Extension";
// An error body of a marshaller is quoted up to this many bytes in the error it causes.
inline constexpr size_t kMaxQuotedErrorBody = 1024;

struct MarshalAnswer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// The embedded marshaller's answer to a request on any path, as upstream's handlers answer:
// a method other than POST gets 405 "Method not allowed"; a body that is not a batch gets 400
// "Invalid JSON" (followed by ": " and what is wrong, where upstream says no more); a batch that
// cannot be encoded gets 500; otherwise 200 with the object, its Content-Type and
// X-Log-Marshal-Extension. Error answers are text/plain, as Go's http.Error writes them.
MarshalAnswer answerMarshalRequest(Format format, std::string_view method, std::string_view body);

// What a marshaller made of a batch.
struct Marshalled {
  std::string data;
  std::string extension;
};

// The body of the agent's POST to a marshaller (Content-Type: application/json): the batch as a
// JSON array of records.
std::string marshalRequestBody(const std::vector<LogRequest>& batch);

// Reads a marshaller's answer: a 2xx status gives the body and the extension header's value
// ("json" when it is missing or empty); any other status fails with
// "HTTP request failed with status <code>: <body>" (the body cut at kMaxQuotedErrorBody bytes).
bool readMarshalAnswer(long status, std::optional<std::string_view> extension, std::string body,
                       Marshalled& out, std::string& error);

// What the embedded marshaller would answer to a POST of the batch, without the HTTP and JSON
// round trip (the records are as the round trip leaves them, see record.h).
bool marshalLocally(Format format, const std::vector<LogRequest>& batch, Marshalled& out,
                    std::string& error);

}  // namespace logger::blob
