// Fuzzes the InferenceGraph decoder and checks (router/graph) with arbitrary --graph-json text:
// nothing may crash, hang or recurse without bound; a syntax error is reported exactly when the
// text is not JSON (on ASCII text, where Go's grammar and the strict one agree); every error line
// starts with "graph: "; an accepted graph satisfies the checks it passed.
#include <cstdint>
#include <string>
#include <string_view>

#include "router/graph.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/json_syntax.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  router::GraphResult decoded = router::decodeGraph(json);
  bool ascii = true;
  for (unsigned char c : json)
    ascii = ascii && c < 0x80;
  bool syntaxError = decoded.error.starts_with("graph: not valid JSON");
  if (ascii && json.size() < 4096) FUZZ_CHECK(syntaxError != fuzz::JsonSyntax::valid(json));

  router::GraphResult r = router::parseGraph(json);
  if (!r.ok()) {
    FUZZ_CHECK(r.graph.nodes.empty());
    size_t start = 0;
    while (start <= r.error.size()) {
      FUZZ_CHECK(std::string_view(r.error).substr(start).starts_with("graph: "));
      size_t end = r.error.find('\n', start);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return 0;
  }
  FUZZ_CHECK(decoded.ok());
  FUZZ_CHECK(r.graph.nodes.count("root") == 1);
  for (const auto& [name, node] : r.graph.nodes) {
    std::int64_t weights = 0;
    for (const router::Step& step : node.steps) {
      if (!step.nodeName.empty()) {
        FUZZ_CHECK(step.serviceUrl.empty() && step.serviceName.empty());
        FUZZ_CHECK(r.graph.nodes.count(step.nodeName) == 1);
      } else {
        FUZZ_CHECK(!step.serviceUrl.empty());
      }
      FUZZ_CHECK(step.dependency.empty() || step.dependency == "Soft" || step.dependency == "Hard");
      if (node.type == router::RouterType::Splitter) {
        FUZZ_CHECK(step.weight && *step.weight >= 0 && *step.weight <= 100);
        weights += *step.weight;
      }
    }
    if (node.type == router::RouterType::Splitter && !node.steps.empty()) {
      FUZZ_CHECK(weights == 100);
    }
  }
  for (const std::string& warning : r.graph.warnings)
    FUZZ_CHECK(warning.starts_with("graph: "));
  return 0;
}
