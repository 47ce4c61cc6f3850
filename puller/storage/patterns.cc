#include "puller/storage/patterns.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include "puller/storage/util.h"

namespace storage {

namespace {

std::string expandFolder(std::string pattern) {
  if (pattern.ends_with('/')) pattern += '*';
  return pattern;
}

bool matchesAny(const std::vector<std::string>& patterns, std::string_view path) {
  for (const auto& pattern : patterns) {
    if (fnmatchPython(expandFolder(pattern), path)) return true;
  }
  return false;
}

}  // namespace

bool fnmatchPython(std::string_view pattern, std::string_view name) {
  // glibc's fnmatch without FNM_PATHNAME or FNM_PERIOD lets '*' cross '/' and match a leading
  // dot, as Python's does; FNM_NOESCAPE makes the backslash literal, as Python's has no escape.
  std::string p(pattern);
  std::string n(name);
  // A NUL would end the C strings early; no file name holds one.
  if (p.find('\0') != std::string::npos || n.find('\0') != std::string::npos) return false;
  return ::fnmatch(p.c_str(), n.c_str(), FNM_NOESCAPE) == 0;
}

bool Patterns::keeps(std::string_view path) const {
  if (!allow.empty() && !matchesAny(allow, path)) return false;
  return !matchesAny(ignore, path);
}

std::vector<std::string> parsePatternList(std::string_view text) {
  std::vector<std::string> out;
  auto add = [&](std::string item) {
    item = trim(item);
    if (!item.empty()) out.push_back(std::move(item));
  };
  if (trim(text).empty()) return out;
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    for (size_t start = 0;;) {
      size_t comma = text.find(',', start);
      add(std::string(text.substr(start, comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return out;
  }
  auto stringify = [](const nlohmann::json& item) {
    return item.is_string() ? item.get<std::string>() : item.dump();
  };
  if (value.is_array()) {
    for (const auto& item : value)
      add(stringify(item));
  } else if (!value.is_null()) {
    add(stringify(value));
  }
  return out;
}

Patterns patternsFromEnvironment() {
  return {parsePatternList(env("STORAGE_ALLOW_PATTERNS")),
          parsePatternList(env("STORAGE_IGNORE_PATTERNS"))};
}

}  // namespace storage
