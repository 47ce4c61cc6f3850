#include "batcher/v1.h"

#include <array>

#include "core/util/encoding.h"
namespace batcher::v1 {

namespace {

namespace od = json::od;

// Go names the JSON kind of a value in its type errors.
std::string_view goKind(od::json_type type) {
  switch (type) {
    case od::json_type::array:
      return "array";
    case od::json_type::object:
      return "object";
    case od::json_type::number:
      return "number";
    case od::json_type::string:
      return "string";
    case od::json_type::boolean:
      return "bool";
    case od::json_type::null:
      return "null";
  }
  return "value";
}

// Reads the root object of `document`, collecting the elements of the last array-valued field
// whose name matches `name` the way Go matches struct fields. A null value resets them, as Go
// sets the slice to nil. `typeError` receives the kind of the first non-array, non-null value.
simdjson::error_code readField(od::document& document, std::string_view name,
                               std::vector<std::string_view>& elements, std::string& typeError) {
  od::object object;
  auto error = document.get_object().get(object);
  if (error) return error;
  for (auto field : object) {
    json::Key key;
    od::value value;
    error = json::readKey(field, key);
    if (!error) error = field.value().get(value);
    if (error) return error;
    if (!json::goFieldMatches(key.name, name)) {
      error = json::skip(value);
      if (error) return error;
      continue;
    }
    od::json_type type;
    error = value.type().get(type);
    if (error) return error;
    if (type == od::json_type::array) {
      elements.clear();
      error = json::readElements(value, elements);
    } else {
      if (type == od::json_type::null) {
        elements.clear();
      } else if (typeError.empty()) {
        typeError = goKind(type);
      }
      error = json::skip(value);
    }
    if (error) return error;
  }
  return json::expectEnd(document);
}

void appendJoined(std::string& out, const std::vector<std::string_view>& items, size_t offset,
                  size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += ',';
    out += items[offset + i];
  }
}

}  // namespace

RequestParse parseRequest(std::string_view body) {
  RequestParse result;
  json::Source source(body);
  od::document document;
  od::json_type type;
  if (source.iterate(document) || document.type().get(type)) {
    result.error = kCantUnmarshal;
    return result;
  }
  if (type == od::json_type::null) {
    result.error = json::validate(document, source.text()) ? kCantUnmarshal : kNoInstances;
    return result;
  }
  std::vector<std::string_view> instances;
  std::string typeError;
  if (type != od::json_type::object || readField(document, "instances", instances, typeError) ||
      !typeError.empty()) {
    result.error = kCantUnmarshal;
    return result;
  }
  if (instances.empty()) {
    result.error = kNoInstances;
    return result;
  }
  const char* begin = instances.front().data();
  const char* end = instances.back().data() + instances.back().size();
  result.request.instances.assign(begin, static_cast<size_t>(end - begin));
  result.request.count = instances.size();
  return result;
}

std::string buildBatchBody(const std::vector<std::string_view>& instanceTexts) {
  size_t size = 16;
  for (auto text : instanceTexts)
    size += text.size() + 1;
  std::string body;
  body.reserve(size);
  body += "{\"instances\":[";
  appendJoined(body, instanceTexts, 0, instanceTexts.size());
  body += "]}";
  return body;
}

ResponseParse parseResponse(std::string_view body) {
  ResponseParse result;
  result.source = std::make_unique<json::Source>(body);
  od::document document;
  od::json_type type;
  auto error = result.source->iterate(document);
  if (!error) error = document.type().get(type);
  std::string typeError;
  if (!error && type == od::json_type::object) {
    error = readField(document, "predictions", result.predictions, typeError);
    if (!typeError.empty()) {
      typeError = "json: cannot unmarshal " + typeError +
                  " into Go struct field PredictionResponse.predictions of type []interface {}";
    }
  } else if (!error) {
    error = json::validate(document, result.source->text());
    if (type != od::json_type::null) {
      typeError = "json: cannot unmarshal " + std::string(goKind(type)) +
                  " into Go value of type batcher.PredictionResponse";
    }
  }
  if (error) {
    // Go checks the syntax before decoding, so a syntax error wins over a type error. Where
    // Go's scanner accepts what simdjson refused (invalid UTF-8, very deep nesting), say what
    // simdjson found.
    result.error = json::goSyntaxError(body);
    if (result.error.empty()) {
      result.error =
          "cannot decode the model response: " + std::string(simdjson::error_message(error));
    }
  } else {
    result.error = std::move(typeError);
  }
  if (!result.error.empty()) result.predictions.clear();
  return result;
}

std::string successBody(std::string_view batchId, const std::vector<std::string_view>& predictions,
                        size_t offset, size_t count) {
  std::string body = "{\"message\":\"\",\"batchId\":";
  core::appendGoJsonString(body, batchId);
  body += ",\"predictions\":[";
  appendJoined(body, predictions, offset, count);
  body += "]}";
  return body;
}

std::string errorBody(std::string_view message, std::string_view batchId) {
  std::string body = "{\"message\":";
  core::appendGoJsonString(body, message);
  body += ",\"batchId\":";
  core::appendGoJsonString(body, batchId);
  body += ",\"predictions\":null}";
  return body;
}

std::string newBatchId(std::mt19937_64& random) {
  std::array<unsigned char, 16> bytes{};
  for (size_t half = 0; half < 2; ++half) {
    uint64_t word = random();
    for (size_t i = 0; i < 8; ++i) {
      bytes[half * 8 + i] = static_cast<unsigned char>(word & 0xff);
      word >>= 8;
    }
  }
  std::string id;
  core::appendUuidV4(id, bytes);
  return id;
}

}  // namespace batcher::v1
