#include "batcher/v2.h"

#include <charconv>

#include "batcher/json.h"
#include "core/util/encoding.h"

namespace batcher::v2 {

namespace {

namespace od = json::od;

// Element counts above this are refused rather than risking overflow in shape products.
constexpr uint64_t kMaxElements = uint64_t{1} << 48;

// Fields of the binary tensor extension change the body layout; such requests pass through.
bool usesBinaryExtension(std::string_view text) {
  return text.find("binary_data") != std::string_view::npos;
}

// Reads a shape: an array of non-negative integers.
bool readShape(od::value value, std::vector<uint64_t>& shape) {
  std::vector<std::string_view> dims;
  if (json::readElements(value, dims)) return false;
  for (auto dim : dims) {
    uint64_t n = 0;
    auto [end, error] = std::from_chars(dim.data(), dim.data() + dim.size(), n);
    if (error != std::errc() || end != dim.data() + dim.size() || n > kMaxElements) return false;
    shape.push_back(n);
  }
  return true;
}

// The number of elements a shape holds; nullopt when it is implausibly large.
std::optional<uint64_t> elementCount(const std::vector<uint64_t>& shape, size_t first = 0) {
  uint64_t count = 1;
  for (size_t i = first; i < shape.size(); ++i) {
    if (shape[i] != 0 && count > kMaxElements / shape[i]) return std::nullopt;
    count *= shape[i];
  }
  return count;
}

void appendJoined(std::string& out, const std::vector<std::string_view>& items, size_t offset,
                  size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += ',';
    out += items[offset + i];
  }
}

void appendShape(std::string& out, uint64_t rows, const std::vector<uint64_t>& shape) {
  out += '[';
  out += std::to_string(rows);
  for (size_t i = 1; i < shape.size(); ++i) {
    out += ',';
    out += std::to_string(shape[i]);
  }
  out += ']';
}

void appendKey(std::string& out, std::string_view key) {
  core::appendGoJsonString(out, key);
  out += ':';
}

// The model's keys are written back exactly as the model wrote them.
void appendKey(std::string& out, const json::Key& key) {
  out += key.text;
  out += ':';
}

// Reads a value that must be of `type`, returning its exact text.
bool readTyped(od::value value, od::json_type type, std::string& text) {
  od::json_type actual;
  std::string_view raw;
  if (value.type().get(actual) || actual != type || json::readRaw(value, raw)) return false;
  text.assign(raw);
  return true;
}

std::optional<Input> readInput(od::value value) {
  od::object object;
  if (value.get_object().get(object)) return std::nullopt;
  Input input;
  bool hasShape = false;
  bool hasData = false;
  std::vector<std::string_view> leaves;
  for (auto field : object) {
    json::Key key;
    od::value item;
    if (json::readKey(field, key) || field.value().get(item)) return std::nullopt;
    bool ok = false;
    if (key.name == "name" && input.name.empty()) {
      ok = readTyped(item, od::json_type::string, input.name);
    } else if (key.name == "datatype" && input.datatype.empty()) {
      ok = readTyped(item, od::json_type::string, input.datatype);
    } else if (key.name == "parameters" && input.parameters.empty()) {
      ok = readTyped(item, od::json_type::object, input.parameters);
    } else if (key.name == "shape" && !hasShape) {
      ok = hasShape = readShape(item, input.shape);
    } else if (key.name == "data" && !hasData) {
      od::json_type type;
      ok = hasData =
          !item.type().get(type) && type == od::json_type::array && !json::readLeaves(item, leaves);
    }
    if (!ok) return std::nullopt;
  }
  if (input.name.empty() || input.datatype.empty() || !hasShape || !hasData ||
      input.shape.empty() || usesBinaryExtension(input.parameters)) {
    return std::nullopt;
  }
  auto count = elementCount(input.shape);
  if (!count || *count != leaves.size()) return std::nullopt;
  appendJoined(input.data, leaves, 0, leaves.size());
  return input;
}

bool readInputs(od::value value, std::vector<Input>& inputs) {
  od::array array;
  if (value.get_array().get(array)) return false;
  for (auto element : array) {
    od::value item;
    if (element.get(item)) return false;
    auto input = readInput(item);
    if (!input) return false;
    inputs.push_back(std::move(*input));
  }
  return !inputs.empty();
}

std::string signatureOf(const Request& request) {
  std::string signature;
  for (const auto& input : request.inputs) {
    signature += input.name;
    signature += '\x1f';
    signature += input.datatype;
    signature += '\x1f';
    for (size_t i = 1; i < input.shape.size(); ++i) {
      signature += std::to_string(input.shape[i]);
      signature += ',';
    }
    signature += '\x1f';
    signature += input.parameters;
    signature += '\x1e';
  }
  signature += '\x1d';
  signature += request.parameters;
  signature += '\x1d';
  signature += request.outputs;
  return signature;
}

// One output of the model's answer: its fields in order, with shape and data decoded.
struct Output {
  std::vector<std::pair<json::Key, std::string_view>> fields;  // raw values; shape/data empty
  std::vector<uint64_t> shape;
  std::vector<std::string_view> leaves;
  uint64_t rowSize = 0;
};

std::string readOutput(od::value value, uint64_t totalRows, Output& output) {
  od::object object;
  if (value.get_object().get(object)) return "an output is not an object";
  bool hasShape = false;
  bool hasData = false;
  for (auto field : object) {
    json::Key key;
    od::value item;
    if (json::readKey(field, key) || field.value().get(item)) return "invalid JSON";
    std::string_view raw;
    if (key.name == "shape" && !hasShape) {
      hasShape = true;
      if (!readShape(item, output.shape)) return "an output shape is not a list of sizes";
    } else if (key.name == "data" && !hasData) {
      hasData = true;
      if (json::readLeaves(item, output.leaves)) return "invalid JSON";
    } else if (json::readRaw(item, raw)) {
      return "invalid JSON";
    }
    output.fields.emplace_back(std::move(key), raw);
  }
  if (!hasShape || !hasData) return "an output has no shape or no data";
  if (output.shape.empty() || output.shape[0] != totalRows) {
    return "an output's first dimension is not the batch's " + std::to_string(totalRows) + " rows";
  }
  auto count = elementCount(output.shape);
  if (!count || *count != output.leaves.size()) {
    return "an output's data does not match its shape";
  }
  output.rowSize = *elementCount(output.shape, 1);
  return "";
}

void appendOutput(std::string& out, const Output& output, uint64_t rowOffset, uint64_t rows) {
  out += '{';
  bool first = true;
  for (const auto& [key, raw] : output.fields) {
    if (!first) out += ',';
    first = false;
    appendKey(out, key);
    if (key.name == "shape") {
      appendShape(out, rows, output.shape);
    } else if (key.name == "data") {
      out += '[';
      appendJoined(out, output.leaves, rowOffset * output.rowSize, rows * output.rowSize);
      out += ']';
    } else {
      out += raw;
    }
  }
  out += '}';
}

}  // namespace

std::optional<Request> parseRequest(std::string_view body) {
  json::Source source(body);
  od::document document;
  od::object root;
  if (source.iterate(document) || document.get_object().get(root)) return std::nullopt;
  Request request;
  bool hasInputs = false;
  for (auto field : root) {
    json::Key key;
    od::value item;
    if (json::readKey(field, key) || field.value().get(item)) return std::nullopt;
    bool ok = false;
    if (key.name == "id" && request.id.empty()) {
      ok = readTyped(item, od::json_type::string, request.id);
    } else if (key.name == "parameters" && request.parameters.empty()) {
      ok = readTyped(item, od::json_type::object, request.parameters);
    } else if (key.name == "outputs" && request.outputs.empty()) {
      ok = readTyped(item, od::json_type::array, request.outputs);
    } else if (key.name == "inputs" && !hasInputs) {
      ok = hasInputs = readInputs(item, request.inputs);
    }
    if (!ok) return std::nullopt;
  }
  if (!hasInputs || json::expectEnd(document) || usesBinaryExtension(request.parameters) ||
      usesBinaryExtension(request.outputs)) {
    return std::nullopt;
  }
  request.rows = request.inputs.front().shape[0];
  for (const auto& input : request.inputs) {
    if (input.shape[0] != request.rows) return std::nullopt;
  }
  if (request.rows == 0) return std::nullopt;
  request.signature = signatureOf(request);
  return request;
}

std::string mergeRequests(const std::vector<const Request*>& requests) {
  const Request& first = *requests.front();
  uint64_t totalRows = 0;
  size_t size = 64 + first.parameters.size() + first.outputs.size();
  for (const auto* request : requests) {
    totalRows += request->rows;
    for (const auto& input : request->inputs)
      size += input.data.size() + 1;
  }
  std::string body;
  body.reserve(size);
  body += "{\"inputs\":[";
  for (size_t k = 0; k < first.inputs.size(); ++k) {
    const Input& input = first.inputs[k];
    if (k > 0) body += ',';
    body += "{\"name\":";
    body += input.name;
    body += ",\"shape\":";
    appendShape(body, totalRows, input.shape);
    body += ",\"datatype\":";
    body += input.datatype;
    if (!input.parameters.empty()) {
      body += ",\"parameters\":";
      body += input.parameters;
    }
    body += ",\"data\":[";
    bool empty = true;
    for (const auto* request : requests) {
      const std::string& data = request->inputs[k].data;
      if (data.empty()) continue;
      if (!empty) body += ',';
      body += data;
      empty = false;
    }
    body += "]}";
  }
  body += ']';
  if (!first.parameters.empty()) {
    body += ",\"parameters\":";
    body += first.parameters;
  }
  if (!first.outputs.empty()) {
    body += ",\"outputs\":";
    body += first.outputs;
  }
  body += '}';
  return body;
}

Split splitResponse(std::string_view body, const std::vector<const Request*>& requests) {
  Split split;
  uint64_t totalRows = 0;
  for (const auto* request : requests)
    totalRows += request->rows;

  if (json::trim(body).empty()) {
    split.error = "the model's answer is empty";
    return split;
  }
  json::Source source(body);
  od::document document;
  od::object root;
  if (source.iterate(document) || document.get_object().get(root)) {
    split.error = "the model's answer is not a JSON object";
    return split;
  }
  std::vector<std::pair<json::Key, std::string_view>> fields;
  std::vector<Output> outputs;
  bool hasOutputs = false;
  bool hasId = false;
  for (auto field : root) {
    json::Key key;
    od::value item;
    std::string_view raw;
    if (json::readKey(field, key) || field.value().get(item)) {
      split.error = "the model's answer is not valid JSON";
      return split;
    }
    if (key.name == "outputs") {
      if (hasOutputs) {
        split.error = "the model's answer has two outputs fields";
        return split;
      }
      hasOutputs = true;
      od::array array;
      if (item.get_array().get(array)) {
        split.error = "the model's outputs are not a list";
        return split;
      }
      for (auto element : array) {
        od::value value;
        Output output;
        split.error = element.get(value) ? "invalid JSON" : readOutput(value, totalRows, output);
        if (!split.error.empty()) return split;
        outputs.push_back(std::move(output));
      }
    } else if (json::readRaw(item, raw)) {
      split.error = "the model's answer is not valid JSON";
      return split;
    }
    hasId = hasId || key.name == "id";
    fields.emplace_back(std::move(key), raw);
  }
  if (json::expectEnd(document)) {
    split.error = "the model's answer is not valid JSON";
    return split;
  }
  if (!hasOutputs) {
    split.error = "the model's answer has no outputs";
    return split;
  }

  uint64_t rowOffset = 0;
  for (const auto* request : requests) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, raw] : fields) {
      const bool isOutputs = key.name == "outputs";
      if (isOutputs && !hasId && !request->id.empty()) {
        if (!first) out += ',';
        appendKey(out, "id");
        out += request->id;
        first = false;
      }
      if (!first) out += ',';
      first = false;
      appendKey(out, key);
      if (isOutputs) {
        out += '[';
        for (size_t i = 0; i < outputs.size(); ++i) {
          if (i > 0) out += ',';
          appendOutput(out, outputs[i], rowOffset, request->rows);
        }
        out += ']';
      } else if (key.name == "id" && !request->id.empty()) {
        out += request->id;
      } else {
        out += raw;
      }
    }
    out += '}';
    split.bodies.push_back(std::move(out));
    rowOffset += request->rows;
  }
  return split;
}

std::string errorBody(std::string_view message) {
  std::string body = "{\"error\":";
  core::appendGoJsonString(body, message);
  body += '}';
  return body;
}

}  // namespace batcher::v2
