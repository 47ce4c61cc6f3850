#include "router/propagation.h"

#include <re2/re2.h>

namespace router {

HeaderPropagation::HeaderPropagation() = default;
HeaderPropagation::~HeaderPropagation() = default;
HeaderPropagation::HeaderPropagation(HeaderPropagation&&) noexcept = default;
HeaderPropagation& HeaderPropagation::operator=(HeaderPropagation&&) noexcept = default;

HeaderPropagation HeaderPropagation::parse(std::string_view list,
                                           std::vector<std::string>& problems) {
  HeaderPropagation propagation;
  propagation.add(list, problems);
  return propagation;
}

void HeaderPropagation::add(std::string_view list, std::vector<std::string>& problems) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (!item.empty()) {
      RE2::Options options;
      options.set_log_errors(false);
      auto pattern =
          std::make_unique<re2::RE2>(re2::StringPiece(item.data(), item.size()), options);
      if (pattern->ok()) {
        patterns_.push_back(std::move(pattern));
      } else {
        problems.push_back("header pattern \"" + std::string(item) +
                           "\" is not a valid regular expression (" + pattern->error() +
                           "); it is skipped");
      }
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

core::Headers HeaderPropagation::select(const core::Headers& incoming) const {
  core::Headers out;
  if (patterns_.empty()) return out;
  for (const core::Header& header : incoming) {
    std::string name = core::goCanonicalHeaderName(header.name);
    if (name == "Host" || name == "Content-Length" || name == "Transfer-Encoding") continue;
    for (const auto& pattern : patterns_) {
      if (re2::RE2::PartialMatch(name, *pattern)) {
        out.push_back({std::move(name), header.value});
        break;
      }
    }
  }
  return out;
}

}  // namespace router
