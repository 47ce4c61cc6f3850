#include "logger/blob/marshaller.h"

namespace logger::blob {
namespace {

// Go's http.Error: a text body with a newline, not sniffed.
MarshalAnswer textAnswer(int status, std::string text) {
  MarshalAnswer answer;
  answer.status = status;
  answer.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                    {"X-Content-Type-Options", "nosniff"}};
  answer.body = std::move(text) + "\n";
  return answer;
}

}  // namespace

MarshalAnswer answerMarshalRequest(Format format, std::string_view method, std::string_view body) {
  if (method != "POST") return textAnswer(405, "Method not allowed");
  std::vector<LogRequest> batch;
  std::string error;
  if (!decodeBatch(body, batch, error)) return textAnswer(400, "Invalid JSON: " + error);
  MarshalAnswer answer;
  if (!encode(format, batch, answer.body, error)) {
    return textAnswer(500,
                      "Failed to write " + std::string(formatExtension(format)) + ": " + error);
  }
  answer.headers = {{"Content-Type", std::string(formatContentType(format))},
                    {std::string(kExtensionHeader), std::string(formatExtension(format))}};
  return answer;
}

std::string marshalRequestBody(const std::vector<LogRequest>& batch) {
  std::string body;
  appendBatchJson(body, batch);
  return body;
}

bool readMarshalAnswer(long status, std::optional<std::string_view> extension, std::string body,
                       Marshalled& out, std::string& error) {
  if (status < 200 || status >= 300) {
    if (body.size() > kMaxQuotedErrorBody) {
      body.resize(kMaxQuotedErrorBody);
      body += "...";
    }
    error = "HTTP request failed with status " + std::to_string(status) + ": " + body;
    return false;
  }
  out.data = std::move(body);
  out.extension = extension && !extension->empty() ? std::string(*extension) : "json";
  return true;
}

bool marshalLocally(Format format, const std::vector<LogRequest>& batch, Marshalled& out,
                    std::string& error) {
  out.data.clear();
  if (!encode(format, batch, out.data, error)) return false;
  out.extension = formatExtension(format);
  return true;
}

}  // namespace logger::blob
