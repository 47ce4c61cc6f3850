// JSON helpers for the batcher. Values are read with simdjson's on-demand API, validated
// completely (as Go's encoding/json validates a whole document before decoding it), and kept as
// their exact source text, so instances and predictions are spliced without re-serialisation:
// numbers keep their spelling (12345678901234567890, 1.10, 1e400) and objects their key order.
#pragma once

#include <simdjson.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace batcher::json {

namespace od = simdjson::ondemand;

// Nesting deeper than this is rejected (simdjson's default; Go allows 10000).
inline constexpr size_t kMaxDepth = 1024;

// A padded copy of one JSON text and the parser reading it. Views returned by the functions
// below point into the copy and stay valid as long as the Source lives.
class Source {
 public:
  explicit Source(std::string_view text);
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Starts reading the document (stage 1: structure and UTF-8 are checked here).
  simdjson::error_code iterate(od::document& document);
  std::string_view text() const { return std::string_view(text_.data(), text_.size()); }

 private:
  simdjson::padded_string text_;
  std::unique_ptr<od::parser> ownParser_;
  od::parser* parser_;
};

// An object key: its exact text (quotes included) and its name as Go's decoder reads it.
struct Key {
  std::string_view text;
  std::string name;
};

// Reads the key of an object field. Go accepts lone UTF-16 surrogate escapes ("\ud800") and
// decodes each to U+FFFD; simdjson's unescaped_key() refuses the whole document, so keys are
// decoded here instead.
simdjson::error_code readKey(simdjson::simdjson_result<od::field>& field, Key& key);

// Checks a JSON string literal (quotes included) as Go's scanner does and, when `decoded` is
// given, stores its value as Go's decoder produces it, lone surrogate escapes as U+FFFD.
bool unquote(std::string_view literal, std::string* decoded = nullptr);

// Reads one value completely, validating every nested token, and returns its exact text
// (without surrounding whitespace).
simdjson::error_code readRaw(od::value value, std::string_view& text, size_t depth = 0);

// Validates one value completely and discards it.
simdjson::error_code skip(od::value value, size_t depth = 0);

// Reads an array, appending the exact text of each element.
simdjson::error_code readElements(od::value value, std::vector<std::string_view>& elements,
                                  size_t depth = 0);

// Flattens nested arrays: appends the text of every non-array leaf in row-major order.
simdjson::error_code readLeaves(od::value value, std::vector<std::string_view>& leaves,
                                size_t depth = 0);

// Succeeds when nothing but whitespace follows the root value just read.
simdjson::error_code expectEnd(od::document& document);

// Validates a whole document of any type (used where only its syntax matters).
simdjson::error_code validate(od::document& document, std::string_view text);

// True when `text` is a JSON number as RFC 8259 spells it.
bool isNumber(std::string_view text);

// JSON whitespace removed from both ends.
std::string_view trim(std::string_view text);

// Go's encoding/json field matching: an exact match, or a match under Go's case folding
// (ASCII letters, and the few non-ASCII runes that fold to ASCII letters, such as U+017F 'ſ'
// for 's' and U+0130 'İ' for 'i'). `name` must be all lower-case ASCII.
bool goFieldMatches(std::string_view key, std::string_view name);

// The message Go's encoding/json gives for a syntax error in `text` ("unexpected end of JSON
// input", "invalid character 'x' looking for beginning of value", ...); empty when Go would
// accept the syntax.
std::string goSyntaxError(std::string_view text);

}  // namespace batcher::json
