// Fuzzes the v1 (":predict") batching functions with the bodies of several callers. Every body
// is parsed as a caller's request; the accepted ones are merged into one model request, a model
// that echoes its instances as predictions answers it, and the answer is split back. Each caller
// must get exactly its own instances back, byte for byte and in order, and every reply the
// batcher can write must be valid JSON.
//
// Input: caller bodies separated by the byte 0x1E (never valid unescaped inside JSON).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "batcher/v1.h"
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

// The exact text of each element of a caller's instances, read through the predictions parser
// so that it does not share the request parser's code path.
std::vector<std::string> elementsOf(std::string_view instances) {
  std::string wrapped = "{\"predictions\":[" + std::string(instances) + "]}";
  batcher::v1::ResponseParse parsed = batcher::v1::parseResponse(wrapped);
  FUZZ_CHECK(parsed.error.empty());
  return {parsed.predictions.begin(), parsed.predictions.end()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<batcher::v1::Request> callers;
  for (std::string_view body : split(input)) {
    batcher::v1::RequestParse parsed = batcher::v1::parseRequest(body);
    if (!parsed.error.empty()) {
      FUZZ_CHECK(parsed.error == batcher::v1::kCantUnmarshal ||
                 parsed.error == batcher::v1::kNoInstances);
      continue;
    }
    FUZZ_CHECK(parsed.request.count > 0);
    callers.push_back(std::move(parsed.request));
  }
  FUZZ_CHECK(fuzz::JsonSyntax::valid(batcher::v1::errorBody(input, "batch")));
  if (callers.empty()) return 0;

  std::vector<std::string_view> parts;
  std::vector<std::string> expected;
  size_t total = 0;
  for (const auto& caller : callers) {
    parts.push_back(caller.instances);
    std::vector<std::string> own = elementsOf(caller.instances);
    FUZZ_CHECK(own.size() == caller.count);
    expected.insert(expected.end(), own.begin(), own.end());
    total += caller.count;
  }
  std::string merged = batcher::v1::buildBatchBody(parts);
  batcher::v1::RequestParse reparsed = batcher::v1::parseRequest(merged);
  FUZZ_CHECK(reparsed.error.empty());
  FUZZ_CHECK(reparsed.request.count == total);
  FUZZ_CHECK(elementsOf(reparsed.request.instances) == expected);

  // The echo model: {"predictions": <the instances array exactly as received>}.
  const std::string_view prefix = "{\"instances\":";
  FUZZ_CHECK(merged.starts_with(prefix));
  std::string answer = "{\"predictions\":" + merged.substr(prefix.size());
  batcher::v1::ResponseParse predictions = batcher::v1::parseResponse(answer);
  FUZZ_CHECK(predictions.error.empty());
  FUZZ_CHECK(predictions.predictions.size() == total);

  size_t offset = 0;
  for (const auto& caller : callers) {
    std::string reply =
        batcher::v1::successBody("batch", predictions.predictions, offset, caller.count);
    FUZZ_CHECK(fuzz::JsonSyntax::valid(reply));
    batcher::v1::ResponseParse mine = batcher::v1::parseResponse(reply);
    FUZZ_CHECK(mine.error.empty());
    FUZZ_CHECK(std::vector<std::string>(mine.predictions.begin(), mine.predictions.end()) ==
               elementsOf(caller.instances));
    offset += caller.count;
  }
  return 0;
}
