// Fuzzes the models.json parser the puller reads from its ConfigMap. A rejected file must say
// why; an accepted one must hold only valid, distinct model names and memory quantities that
// parse, each spec must survive the round trip through its SUCCESS marker text unchanged, and
// diffing the same list twice must add every model once and then do nothing.
//
// Input: the content of models.json.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "puller/model_config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto models = puller::parseModelConfig(text, error);
  if (!models) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  std::set<std::string> names;
  for (const auto& model : *models) {
    FUZZ_CHECK(puller::isValidModelName(model.name));
    FUZZ_CHECK(names.insert(model.name).second);
    FUZZ_CHECK(puller::parseQuantity(model.spec.memory).has_value());
    FUZZ_CHECK(puller::sameSpec(model.spec, model.spec));
    auto back = puller::parseModelSpec(model.spec.toJson());
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(puller::sameSpec(*back, model.spec));
    FUZZ_CHECK(back->markerName() == model.spec.markerName());
    FUZZ_CHECK(model.spec.markerName().size() == 8 + 64);
  }
  puller::Tracker tracker;
  auto added = puller::diffModels(tracker, *models);
  FUZZ_CHECK(added.size() == models->size());
  for (const auto& op : added)
    FUZZ_CHECK(op.type == puller::OpType::Add);
  FUZZ_CHECK(tracker.size() == models->size());
  FUZZ_CHECK(puller::diffModels(tracker, *models).empty());
  return 0;
}
