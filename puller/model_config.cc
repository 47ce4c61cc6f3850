#include "puller/model_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <set>

#include "puller/storage/util.h"

namespace puller {

std::string ModelSpec::toJson() const {
  nlohmann::json json = {{"storageUri", storageUri},
                         {"framework", framework},
                         {"memory", memory.empty() ? "0" : memory}};
  return json.dump();
}

std::string ModelSpec::markerName() const {
  std::string memoryKey = memory;
  if (auto value = parseQuantity(memory)) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6Lf", *value);
    memoryKey = buffer;
  }
  nlohmann::json canonical = {
      {"storageUri", storageUri}, {"framework", framework}, {"memory", memoryKey}};
  return "SUCCESS." + storage::sha256Hex(canonical.dump());
}

std::optional<long double> parseQuantity(std::string_view text) {
  if (text.empty()) return 0.0L;
  size_t i = 0;
  if (text[i] == '+' || text[i] == '-') ++i;
  size_t digitsStart = i;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) != 0 || text[i] == '.')) {
    ++i;
  }
  if (i == digitsStart) return std::nullopt;
  std::string number(text.substr(0, i));
  char* end = nullptr;
  long double value = std::strtold(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return std::nullopt;
  std::string_view suffix = text.substr(i);
  static const std::pair<std::string_view, long double> kSuffixes[] = {
      {"", 1.0L},      {"Ki", 0x1p10L}, {"Mi", 0x1p20L}, {"Gi", 0x1p30L},
      {"Ti", 0x1p40L}, {"Pi", 0x1p50L}, {"Ei", 0x1p60L}, {"n", 1e-9L},
      {"u", 1e-6L},    {"m", 1e-3L},    {"k", 1e3L},     {"M", 1e6L},
      {"G", 1e9L},     {"T", 1e12L},    {"P", 1e15L},    {"E", 1e18L}};
  for (const auto& [name, factor] : kSuffixes) {
    if (suffix == name) return value * factor;
  }
  // A decimal exponent: "1e3", "2E-2".
  if (suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    std::string exponent(suffix.substr(1));
    char* expEnd = nullptr;
    long power = std::strtol(exponent.c_str(), &expEnd, 10);
    if (expEnd == exponent.c_str() + exponent.size()) {
      return value * std::pow(10.0L, static_cast<long double>(power));
    }
  }
  return std::nullopt;
}

bool sameSpec(const ModelSpec& a, const ModelSpec& b) {
  if (a.storageUri != b.storageUri || a.framework != b.framework) return false;
  if (a.memory == b.memory) return true;
  auto left = parseQuantity(a.memory);
  auto right = parseQuantity(b.memory);
  if (!left || !right) return false;
  return std::fabs(*left - *right) <= 1e-9L * std::fmax(std::fabs(*left), 1.0L);
}

bool isValidModelName(std::string_view name) {
  if (name.empty() || name.size() > kMaxModelNameBytes || name.front() == '.') return false;
  for (unsigned char c : name) {
    if (c == '/' || c < 0x20 || c == 0x7F) return false;
  }
  return true;
}

namespace {

std::optional<ModelSpec> specFromJson(const nlohmann::json& json, std::string& error) {
  if (!json.is_object()) {
    error = "modelSpec is not an object";
    return std::nullopt;
  }
  ModelSpec spec;
  for (const auto& [field, target] :
       {std::pair<const char*, std::string*>{"storageUri", &spec.storageUri},
        {"framework", &spec.framework}}) {
    if (!json.contains(field) || json[field].is_null()) continue;
    if (!json[field].is_string()) {
      error = std::string(field) + " is not a string";
      return std::nullopt;
    }
    *target = json[field].get<std::string>();
  }
  if (json.contains("memory") && !json["memory"].is_null()) {
    const auto& memory = json["memory"];
    if (memory.is_string()) {
      spec.memory = memory.get<std::string>();
    } else if (memory.is_number()) {
      spec.memory = memory.dump();
    } else {
      error = "memory is neither a string nor a number";
      return std::nullopt;
    }
    if (!parseQuantity(spec.memory)) {
      error = "memory \"" + spec.memory + "\" is not a quantity";
      return std::nullopt;
    }
  }
  return spec;
}

}  // namespace

std::optional<std::vector<ModelEntry>> parseModelConfig(std::string_view text, std::string& error) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) {
    error = "models.json is not valid JSON";
    return std::nullopt;
  }
  if (!json.is_array()) {
    error = "models.json is not a JSON array";
    return std::nullopt;
  }
  std::vector<ModelEntry> models;
  std::set<std::string> names;
  for (size_t i = 0; i < json.size(); ++i) {
    const auto& item = json[i];
    std::string where = "entry " + std::to_string(i);
    if (!item.is_object() || !item.contains("modelName") || !item["modelName"].is_string()) {
      error = where + " has no string modelName";
      return std::nullopt;
    }
    std::string name = item["modelName"].get<std::string>();
    if (name.size() > kMaxModelNameBytes) {
      error = where + ": modelName \"" + name + "\" is " + std::to_string(name.size()) +
              " bytes; at most " + std::to_string(kMaxModelNameBytes) +
              " fit in the name of its temporary download folder";
      return std::nullopt;
    }
    if (!isValidModelName(name)) {
      error = where + ": modelName \"" + name + "\" cannot be a folder name";
      return std::nullopt;
    }
    if (!names.insert(name).second) {
      error = where + ": modelName \"" + name + "\" appears twice";
      return std::nullopt;
    }
    std::string specError;
    auto spec =
        specFromJson(item.contains("modelSpec") ? item["modelSpec"] : nlohmann::json(), specError);
    if (!spec) {
      error = where + " (" + name + "): " + specError;
      return std::nullopt;
    }
    models.push_back({name, *spec});
  }
  return models;
}

std::optional<ModelSpec> parseModelSpec(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  std::string error;
  if (json.is_discarded()) return std::nullopt;
  return specFromJson(json, error);
}

std::vector<ModelOp> diffModels(Tracker& tracker, const std::vector<ModelEntry>& models) {
  std::vector<ModelOp> ops;
  std::set<std::string> listed;
  for (const auto& model : models) {
    listed.insert(model.name);
    auto it = tracker.find(model.name);
    if (it == tracker.end()) {
      ops.push_back({OpType::Add, model.name, model.spec, false});
      tracker.emplace(model.name, model.spec);
    } else if (!sameSpec(it->second, model.spec)) {
      ops.push_back({OpType::Remove, model.name, it->second, false});
      ops.push_back({OpType::Add, model.name, model.spec, false});
      it->second = model.spec;  // remembered, unlike upstream, so the next sync is quiet
    }
  }
  for (auto it = tracker.begin(); it != tracker.end();) {
    if (listed.contains(it->first)) {
      ++it;
      continue;
    }
    ops.push_back({OpType::Remove, it->first, it->second, false});
    it = tracker.erase(it);
  }
  return ops;
}

}  // namespace puller
