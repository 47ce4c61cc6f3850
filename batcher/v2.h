// Open Inference Protocol v2 batching (POST /v2/models/<m>/infer): requests whose inputs agree
// in names, datatypes, trailing shapes and parameters are concatenated along the first
// dimension; each output of the model's answer is split back by the callers' row counts.
// Anything else (binary extension, unknown fields, inconsistent shapes) is not batched.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace batcher::v2 {

struct Input {
  std::string name;        // exact JSON text, quotes included
  std::string datatype;    // exact JSON text
  std::string parameters;  // exact JSON text, or empty when absent
  std::vector<uint64_t> shape;
  std::string data;  // the flattened elements' exact texts, comma-separated, row-major
};

struct Request {
  std::string id;          // exact JSON text, or empty when absent
  std::string parameters;  // exact JSON text, or empty when absent
  std::string outputs;     // exact JSON text, or empty when absent
  std::vector<Input> inputs;
  uint64_t rows = 0;  // the first dimension, shared by every input
  // Requests with equal signatures (and the same path) can share a batch.
  std::string signature;
};

// Reads an inference request; nullopt when it cannot be batched (the caller passes it through).
std::optional<Request> parseRequest(std::string_view body);

// The merged request: every input concatenated along the first dimension, in request order.
// All requests must have the same signature.
std::string mergeRequests(const std::vector<const Request*>& requests);

// The model's answer to a merged request, split back: one body per request, in order.
struct Split {
  std::string error;  // why the answer could not be split; empty on success
  std::vector<std::string> bodies;
};
Split splitResponse(std::string_view body, const std::vector<const Request*>& requests);

// The JSON error body the protocol uses: {"error":"<message>"}.
std::string errorBody(std::string_view message);

}  // namespace batcher::v2
