// Which incoming headers reach every step call: PROPAGATE_HEADERS as upstream reads it, a comma
// list of RE2 patterns matched unanchored against each header's Go-canonical name.
#pragma once

#include <memory>
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

  // The headers of `incoming` whose canonical name one of the patterns matches, every value of
  // each, under the canonical name. Host, Content-Length and Transfer-Encoding are never
  // propagated (Go's client writes its own).
  core::Headers select(const core::Headers& incoming) const;
  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }

 private:
  std::vector<std::unique_ptr<re2::RE2>> patterns_;
};

}  // namespace router
