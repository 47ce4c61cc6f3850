// Which incoming headers reach every step call: PROPAGATE_HEADERS as upstream reads it, a comma
// list of RE2 patterns matched unanchored against each header's Go-canonical name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/head.h"

namespace re2 {
class RE2;
}

namespace router {

class HeaderPropagation {
 public:
  HeaderPropagation();
  ~HeaderPropagation();
  HeaderPropagation(HeaderPropagation&&) noexcept;
  HeaderPropagation& operator=(HeaderPropagation&&) noexcept;

  // Compiles `list` split on ',' with nothing trimmed (as upstream: a space after a comma is part
  // of the next pattern; empty items are skipped). A pattern RE2 refuses is left out and
  // reported in `problems`, one line each; the others apply.
  static HeaderPropagation parse(std::string_view list, std::vector<std::string>& problems);
  // Adds the patterns of `list` (a graph's own list) after these.
  void add(std::string_view list, std::vector<std::string>& problems);
  // Adds one pattern (the graph's propagateHeaders, where a comma belongs to the pattern);
  // false, with RE2's reason in `problem`, when RE2 refuses it.
  bool addPattern(std::string_view pattern, std::string& problem);

  // The headers of `incoming` whose canonical name one of the patterns matches, every value of
  // each, under the canonical name. Host, Content-Length and Transfer-Encoding are never
  // propagated (Go's client writes its own).
  core::Headers select(const core::Headers& incoming) const;
  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }

 private:
  std::vector<std::unique_ptr<re2::RE2>> patterns_;
};

// W3C Trace Context for step calls (ours; upstream passes the headers only when a
// PROPAGATE_HEADERS pattern names them, unchanged, so every step claims the client's span as
// its parent). The client's `traceparent` is checked as W3C's level 1 says (version 00 exactly
// 55 characters; a later version at least that, the rest after a '-'; lower-case hex; trace id
// and parent id not all zeros; version ff refused); every step call gets version 00 with the
// same trace id and flags and a fresh parent id.
class TraceParent {
 public:
  // nullopt when `value` is no valid traceparent (then none is sent, as W3C asks).
  static std::optional<TraceParent> parse(std::string_view value);
  // The traceparent of one step call, with `parentId` (not 0) as its parent id.
  std::string child(uint64_t parentId) const;
  std::string_view traceId() const { return std::string_view(text_).substr(3, 32); }

 private:
  std::string text_;  // "00-<trace id>-0000000000000000-<flags>"
};

}  // namespace router
