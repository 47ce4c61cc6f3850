// models.json: parsing, spec comparison and the diff against what is loaded.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace puller {

// One model's spec as the TrainedModel controller writes it (unknown fields ignored).
struct ModelSpec {
  std::string storageUri;
  std::string framework;
  std::string memory;  // a Kubernetes quantity, e.g. "100Mi"; "" when absent

  // Compact JSON as upstream writes into SUCCESS markers.
  std::string toJson() const;
  // "SUCCESS.<sha256 of the canonical spec>"; equal specs (see sameSpec) share the name.
  std::string markerName() const;
};

// Specs are equal when URI and framework match and memory is the same quantity ("1Gi" ==
// "1024Mi"), as upstream compares them.
bool sameSpec(const ModelSpec& a, const ModelSpec& b);
// The value of a Kubernetes quantity ("100Mi", "1G", "500m", "1e3"); nullopt when malformed.
std::optional<long double> parseQuantity(std::string_view text);

struct ModelEntry {
  std::string name;
  ModelSpec spec;
};

// Parses models.json: an array of {"modelName", "modelSpec": {...}}. On failure returns
// nullopt and says why in `error` (not an array, bad entry, invalid or duplicate name).
std::optional<std::vector<ModelEntry>> parseModelConfig(std::string_view text, std::string& error);
// Parses the content of a SUCCESS marker.
std::optional<ModelSpec> parseModelSpec(std::string_view text);
// The longest model name: its staging folder ".<name>.tmp-XXXXXX" (and ".<name>.old-XXXXXX")
// must still fit in one 255-byte folder name.
inline constexpr size_t kMaxModelNameBytes = 255 - std::string_view("..tmp-XXXXXX").size();
// A name usable as one folder below the model dir: non-empty, at most kMaxModelNameBytes bytes,
// no '/', NUL or control characters, not starting with '.' (those names are reserved for
// temporary folders).
bool isValidModelName(std::string_view name);

enum class OpType { Add, Remove };

struct ModelOp {
  OpType type = OpType::Add;
  std::string name;
  ModelSpec spec;          // what to add (Add only)
  bool onStartup = false;  // part of the initial set the readiness waits for
};

// name → the spec currently wanted on disk and in the model server.
using Tracker = std::map<std::string, ModelSpec>;

// Updates `tracker` to `models` and returns the operations that get there, per model in order:
// a new model → Add; a changed spec → Remove then Add; a model no longer listed → Remove.
std::vector<ModelOp> diffModels(Tracker& tracker, const std::vector<ModelEntry>& models);

}  // namespace puller
