// Allow and ignore patterns (STORAGE_ALLOW_PATTERNS / STORAGE_IGNORE_PATTERNS), as upstream's
// initializer takes them: a file is fetched when it matches an allow pattern (or none are
// given) and no ignore pattern. Matching is Python's fnmatch on POSIX, which is what
// huggingface_hub uses: case-sensitive, '*' also crosses '/', '?' one character, [set] and [!set],
// backslash literal. A pattern ending in '/' means everything below that folder ("tok/" is
// "tok/*"), as huggingface_hub expands it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace storage {

struct Patterns {
  std::vector<std::string> allow;
  std::vector<std::string> ignore;

  bool empty() const { return allow.empty() && ignore.empty(); }
  // Whether the path (relative, '/' separated) is fetched.
  bool keeps(std::string_view path) const;
};

// The value of a pattern variable: a JSON list (items stringified and stripped, empty ones
// dropped), a JSON scalar (one pattern), or, when it is not JSON, a comma-separated list.
std::vector<std::string> parsePatternList(std::string_view text);

// STORAGE_ALLOW_PATTERNS and STORAGE_IGNORE_PATTERNS from the environment.
Patterns patternsFromEnvironment();

// Python's fnmatch.fnmatchcase(name, pattern) on POSIX.
bool fnmatchPython(std::string_view pattern, std::string_view name);

}  // namespace storage
