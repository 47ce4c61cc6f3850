// Protocol v1 batching (upstream's wire contract): callers post {"instances":[...]} to a path
// ending in ":predict"; the batcher sends {"instances":[all instances]} to the model and answers
// each caller with {"message","batchId","predictions"} holding its own slice of the predictions.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "batcher/json.h"

namespace batcher::v1 {

// The 400 texts upstream answers with (Go's http.Error adds the newline).
inline constexpr std::string_view kCantUnmarshal = "can't Unmarshal body";
inline constexpr std::string_view kNoInstances = "no instances in the request";
// The message every caller of a batch gets when the model answers a different count.
inline constexpr std::string_view kSizeMismatch =
    "size of prediction is not equal to the size of instances";

// One caller's instances as the batcher keeps them.
struct Request {
  // The exact text from the first instance to the last one (separators included), so the
  // merged body carries every instance byte for byte.
  std::string instances;
  size_t count = 0;
};

struct RequestParse {
  std::string_view error;  // empty on success, else kCantUnmarshal or kNoInstances
  Request request;
};

// Reads a caller's body as Go's json.Unmarshal into struct{Instances []interface{}} does: the
// whole body must be valid JSON; the field name matches case-insensitively and the last
// occurrence wins; other fields are ignored; a top-level null means no instances.
RequestParse parseRequest(std::string_view body);

// The merged model request: {"instances":[...]} with each caller's instances in order.
std::string buildBatchBody(const std::vector<std::string_view>& instanceTexts);

// The model's answer, decoded as upstream's json.Unmarshal into {Predictions []interface{}}.
struct ResponseParse {
  std::string error;                          // Go's decoding error text; empty on success
  std::vector<std::string_view> predictions;  // exact texts, views into `source`
  std::unique_ptr<json::Source> source;
};
ResponseParse parseResponse(std::string_view body);

// A caller's 200 body on success: its own predictions, in order.
std::string successBody(std::string_view batchId, const std::vector<std::string_view>& predictions,
                        size_t offset, size_t count);

// A caller's 200 body when the batch failed (predictions is null).
std::string errorBody(std::string_view message, std::string_view batchId);

// A random UUID version 4 in its lower-case 8-4-4-4-12 form.
std::string newBatchId(std::mt19937_64& random);

}  // namespace batcher::v1
