// JSON the router reads and writes as text, so numbers and strings keep the exact form the
// models sent (upstream decodes and re-encodes through Go values, losing precision above 2^53
// and rewriting 1.0 as 1).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace router {

// mapPredictionsToInstances: when `input` is a JSON object whose "predictions" is a non-empty
// array (keys matched without regard to case, as Go decodes into a struct; "predictions" and
// "instances", where present, must be arrays or null), the result is {"instances":<that array>}
// with the array's text as it was; otherwise `input` unchanged.
std::string mapPredictionsToInstances(std::string_view input);

// Why `body` cannot be an Ensemble step's result (a JSON object or null, as Go decodes it into
// a map), in the words of Go's encoding/json; nullopt when it can.
std::optional<std::string> ensembleResultProblem(std::string_view body);

// The Ensemble's answer: a JSON object with each result under its key, keys sorted bytewise as
// Go writes map keys, each value's text as the step sent it (surrounding white space dropped).
std::string mergeEnsemble(std::vector<std::pair<std::string, std::string>> results);

// v2 chaining: when `response` is an Open Inference Protocol answer (a JSON object whose
// "outputs" is an array), the v2 request that sends its outputs on: {"id":<its id, when it has
// one>,"inputs":<the outputs array as it was>} (tensors keep their names, shapes, datatypes,
// parameters and data text); nullopt otherwise.
std::optional<std::string> v2ResponseAsRequest(std::string_view response);

// A Sequence's intermediate outputs: a JSON object with each step's output under its key, in
// step order; a JSON output as its text (white space around it dropped), any other as a JSON
// string.
std::string sequenceOutputs(const std::vector<std::pair<std::string, std::string>>& outputs);

// Upstream's error body: {"error":"Failed to process request","cause":"<cause>"} (Go escaping).
std::string errorBody(std::string_view cause);

}  // namespace router
