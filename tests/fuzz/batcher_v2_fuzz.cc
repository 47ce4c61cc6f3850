// Fuzzes the Open Inference Protocol v2 batching functions with the bodies of several callers.
// Accepted requests are grouped by signature as the batcher queues them; each group is merged,
// the merged request must read back as one request of the same signature holding every row, a
// model that echoes each input as an output answers it, and the answer is split back: each
// caller must get exactly the reply the protocol defines for its own rows, byte for byte.
//
// Input: caller bodies separated by the byte 0x1E (never valid unescaped inside JSON).
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "batcher/v2.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/json_syntax.h"

namespace {

constexpr char kSeparator = '\x1e';
constexpr size_t kMaxCallers = 8;

std::vector<std::string_view> split(std::string_view input) {
  std::vector<std::string_view> parts;
  while (parts.size() < kMaxCallers) {
    size_t at = input.find(kSeparator);
    parts.push_back(input.substr(0, at));
    if (at == std::string_view::npos) break;
    input.remove_prefix(at + 1);
  }
  return parts;
}

std::string shapeText(uint64_t rows, const std::vector<uint64_t>& shape) {
  std::string text = "[" + std::to_string(rows);
  for (size_t i = 1; i < shape.size(); ++i)
    text += "," + std::to_string(shape[i]);
  return text + "]";
}

// One output per input: same name, shape, datatype and data.
std::string outputsText(const std::vector<batcher::v2::Input>& inputs, uint64_t rows,
                        const std::vector<std::string>& data) {
  std::string text = "[";
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (k > 0) text += ",";
    text += "{\"name\":" + inputs[k].name + ",\"shape\":" + shapeText(rows, inputs[k].shape) +
            ",\"datatype\":" + inputs[k].datatype + ",\"data\":[" + data[k] + "]}";
  }
  return text + "]";
}

void checkGroup(const std::vector<const batcher::v2::Request*>& group) {
  const batcher::v2::Request& first = *group.front();
  uint64_t rows = 0;
  std::vector<std::string> data(first.inputs.size());
  for (const auto* request : group) {
    rows += request->rows;
    for (size_t k = 0; k < first.inputs.size(); ++k) {
      const std::string& part = request->inputs[k].data;
      if (part.empty()) continue;
      if (!data[k].empty()) data[k] += ",";
      data[k] += part;
    }
  }
  std::string merged = batcher::v2::mergeRequests(group);
  FUZZ_CHECK(fuzz::JsonSyntax::valid(merged));
  auto reparsed = batcher::v2::parseRequest(merged);
  FUZZ_CHECK(reparsed.has_value());
  FUZZ_CHECK(reparsed->signature == first.signature);
  FUZZ_CHECK(reparsed->rows == rows);
  FUZZ_CHECK(reparsed->id.empty());
  for (size_t k = 0; k < first.inputs.size(); ++k)
    FUZZ_CHECK(reparsed->inputs[k].data == data[k]);

  std::string answer =
      "{\"model_name\":\"m\",\"outputs\":" + outputsText(first.inputs, rows, data) + "}";
  batcher::v2::Split split = batcher::v2::splitResponse(answer, group);
  FUZZ_CHECK(split.error.empty());
  FUZZ_CHECK(split.bodies.size() == group.size());
  for (size_t i = 0; i < group.size(); ++i) {
    const batcher::v2::Request& caller = *group[i];
    std::vector<std::string> own;
    for (const auto& input : caller.inputs)
      own.push_back(input.data);
    std::string expected = "{\"model_name\":\"m\",";
    if (!caller.id.empty()) expected += "\"id\":" + caller.id + ",";
    expected += "\"outputs\":" + outputsText(caller.inputs, caller.rows, own) + "}";
    FUZZ_CHECK(split.bodies[i] == expected);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(fuzz::JsonSyntax::valid(batcher::v2::errorBody(input)));
  std::vector<batcher::v2::Request> requests;
  for (std::string_view body : split(input)) {
    auto parsed = batcher::v2::parseRequest(body);
    if (!parsed) continue;
    FUZZ_CHECK(parsed->rows > 0);
    FUZZ_CHECK(!parsed->inputs.empty());
    requests.push_back(std::move(*parsed));
  }
  std::map<std::string, std::vector<const batcher::v2::Request*>> groups;
  for (const auto& request : requests)
    groups[request.signature].push_back(&request);
  for (const auto& [signature, group] : groups)
    checkGroup(group);
  return 0;
}
