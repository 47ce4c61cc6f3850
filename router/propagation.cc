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

bool HeaderPropagation::addPattern(std::string_view pattern, std::string& problem) {
  RE2::Options options;
  options.set_log_errors(false);
  auto compiled =
      std::make_unique<re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!compiled->ok()) {
    problem = compiled->error();
    return false;
  }
  patterns_.push_back(std::move(compiled));
  return true;
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

namespace {

bool lowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool allZeros(std::string_view text) {
  return text.find_first_not_of('0') == std::string_view::npos;
}

}  // namespace

std::optional<TraceParent> TraceParent::parse(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  constexpr size_t kLength = 55;
  if (value.size() < kLength || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  std::string_view version = value.substr(0, 2);
  std::string_view traceId = value.substr(3, 32);
  std::string_view parentId = value.substr(36, 16);
  std::string_view flags = value.substr(53, 2);
  if (!lowerHex(version) || version == "ff" || !lowerHex(traceId) || !lowerHex(parentId) ||
      !lowerHex(flags) || allZeros(traceId) || allZeros(parentId)) {
    return std::nullopt;
  }
  if (version == "00" ? value.size() != kLength : value.size() > kLength && value[kLength] != '-') {
    return std::nullopt;
  }
  TraceParent parent;
  parent.text_ = "00-";
  parent.text_ += traceId;
  parent.text_ += "-0000000000000000-";
  parent.text_ += flags;
  return parent;
}

std::string TraceParent::child(uint64_t parentId) const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = text_;
  for (size_t i = 0; i < 16; ++i)
    out[36 + i] = kHex[(parentId >> (60 - 4 * i)) & 0xF];
  return out;
}

}  // namespace router
