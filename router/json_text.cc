#include "router/json_text.h"

#include <map>

#include "core/util/encoding.h"
#include "router/gjson.h"

namespace router {

namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && isSpace(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back()))
    text.remove_suffix(1);
  return text;
}

// Skips one value of a document already known to be valid JSON; returns where it ends.
size_t skipValue(std::string_view json, size_t i) {
  if (json[i] == '"') {
    for (++i; json[i] != '"'; ++i) {
      if (json[i] == '\\') ++i;
    }
    return i + 1;
  }
  if (json[i] == '{' || json[i] == '[') {
    int depth = 0;
    for (; i < json.size(); ++i) {
      char c = json[i];
      if (c == '"') {
        i = skipValue(json, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return i;
  }
  while (i < json.size() && json[i] != ',' && json[i] != '}' && json[i] != ']' && !isSpace(json[i]))
    ++i;
  return i;
}

size_t skipSpace(std::string_view json, size_t i) {
  while (i < json.size() && isSpace(json[i]))
    ++i;
  return i;
}

// ASCII case-insensitive equality of a decoded key with a lower-case field name.
bool keyMatches(const std::string& key, std::string_view field) {
  if (key.size() != field.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != field[i]) return false;
  }
  return true;
}

// The decoded text of a JSON string literal (quotes included in `literal`).
std::string decodeKey(std::string_view literal) {
  gjson::Result result = gjson::get(literal, "@this");
  return result.str;
}

// Go's %q of one byte, as encoding/json quotes an unexpected character.
std::string quoteChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (c == '\'') return "'\\''";
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("'\\x") + kHex[u >> 4] + kHex[u & 15] + "'";
}

}  // namespace

std::string mapPredictionsToInstances(std::string_view input) {
  if (!gjson::validBytes(input)) return std::string(input);
  size_t i = skipSpace(input, 0);
  if (input[i] != '{') return std::string(input);
  std::string_view predictions;
  for (i = skipSpace(input, i + 1); i < input.size() && input[i] != '}';) {
    size_t keyEnd = skipValue(input, i);
    std::string key = decodeKey(input.substr(i, keyEnd - i));
    size_t valueStart = skipSpace(input, skipSpace(input, keyEnd) + 1);
    size_t valueEnd = skipValue(input, valueStart);
    std::string_view value = input.substr(valueStart, valueEnd - valueStart);
    bool isPredictions = keyMatches(key, "predictions");
    if (isPredictions || keyMatches(key, "instances")) {
      // Go fails to decode anything but an array or null into a slice: the input stays as is.
      if (value.front() != '[' && value != "null") return std::string(input);
      if (isPredictions) predictions = value == "null" ? std::string_view() : value;
    }
    i = skipSpace(input, valueEnd);
    if (i < input.size() && input[i] == ',') i = skipSpace(input, i + 1);
  }
  if (predictions.empty() || trim(predictions.substr(1, predictions.size() - 2)).empty()) {
    return std::string(input);
  }
  std::string out = "{\"instances\":";
  out += predictions;
  out += '}';
  return out;
}

std::optional<std::string> ensembleResultProblem(std::string_view body) {
  std::string_view text = trim(body);
  if (text.empty()) return "unexpected end of JSON input";
  if (!gjson::validBytes(body)) {
    char first = text.front();
    bool valueStart = first == '{' || first == '[' || first == '"' || first == '-' ||
                      (first >= '0' && first <= '9') || first == 't' || first == 'f' ||
                      first == 'n';
    if (!valueStart)
      return "invalid character " + quoteChar(first) + " looking for beginning of value";
    return "invalid JSON: the step's answer is not a complete JSON value";
  }
  switch (text.front()) {
    case '{':
      return std::nullopt;
    case 'n':
      return std::nullopt;  // null decodes to a nil map, written back as null
    case '[':
      return "json: cannot unmarshal array into Go value of type map[string]interface {}";
    case '"':
      return "json: cannot unmarshal string into Go value of type map[string]interface {}";
    case 't':
    case 'f':
      return "json: cannot unmarshal bool into Go value of type map[string]interface {}";
    default:
      return "json: cannot unmarshal number into Go value of type map[string]interface {}";
  }
}

std::string mergeEnsemble(std::vector<std::pair<std::string, std::string>> results) {
  std::map<std::string, std::string> sorted;
  for (auto& [key, body] : results)
    sorted[std::move(key)] = std::string(trim(body));
  std::string out = "{";
  for (const auto& [key, value] : sorted) {
    if (out.size() > 1) out += ',';
    core::appendGoJsonString(out, key);
    out += ':';
    out += value;
  }
  out += '}';
  return out;
}

std::optional<std::string> v2ResponseAsRequest(std::string_view response) {
  if (!gjson::validBytes(response)) return std::nullopt;
  std::string_view text = trim(response);
  if (text.empty() || text.front() != '{') return std::nullopt;
  // Exact keys: OIP names its fields in lower case.
  gjson::Result outputs = gjson::get(text, "outputs");
  if (outputs.raw.empty() || outputs.raw.front() != '[') return std::nullopt;
  std::string out = "{";
  gjson::Result id = gjson::get(text, "id");
  if (id.exists() && id.type == gjson::Type::String) {
    out += "\"id\":";
    out += id.raw;
    out += ',';
  }
  out += "\"inputs\":";
  out += outputs.raw;
  out += '}';
  return out;
}

std::string sequenceOutputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  std::string out = "{";
  for (const auto& [key, body] : outputs) {
    if (out.size() > 1) out += ',';
    core::appendGoJsonString(out, key);
    out += ':';
    if (gjson::validBytes(body)) {
      out += trim(body);
    } else {
      core::appendGoJsonString(out, body);
    }
  }
  out += '}';
  return out;
}

std::string errorBody(std::string_view cause) {
  std::string out = R"({"error":"Failed to process request","cause":)";
  core::appendGoJsonString(out, cause);
  out += '}';
  return out;
}

}  // namespace router
