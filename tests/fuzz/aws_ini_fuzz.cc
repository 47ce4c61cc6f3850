// Fuzzes the reader of the AWS shared files (storage::aws::iniSection), which reads what a
// mounted Secret holds. For any text and section name: no crash; every key it returns is lower
// case, trimmed and free of the separators and of line breaks; every value is trimmed and on one
// line; and a section it reports missing has no line that is exactly its header.
//
// Input: the first line is the section name, the rest the file.
#include <cstdint>
#include <string>
#include <string_view>

#include "puller/storage/aws_profile.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool trimmed(std::string_view text) {
  return text.empty() || (!blank(text.front()) && !blank(text.back()));
}

// Whether a line of `text`, once trimmed, is exactly the header "[<section>]".
bool hasHeader(std::string_view text, std::string_view section) {
  while (true) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    while (!line.empty() && blank(line.front()))
      line.remove_prefix(1);
    while (!line.empty() && blank(line.back()))
      line.remove_suffix(1);
    if (line.size() == section.size() + 2 && line.front() == '[' && line.back() == ']' &&
        line.substr(1, section.size()) == section) {
      return true;
    }
    if (end == std::string_view::npos) return false;
    text.remove_prefix(end + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string_view section = input.substr(0, newline);
  std::string_view text = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  auto values = storage::aws::iniSection(text, section);
  if (!values) {
    // A header is found whatever surrounds it; a name with outer blanks never matches one.
    FUZZ_CHECK(!trimmed(section) || section.find(']') != std::string_view::npos ||
               !hasHeader(text, section));
    return 0;
  }
  for (const auto& [key, value] : *values) {
    FUZZ_CHECK(!key.empty() && trimmed(key) && trimmed(value));
    FUZZ_CHECK(key.find_first_of("=:\n") == std::string::npos);
    FUZZ_CHECK(value.find('\n') == std::string::npos);
    for (char c : key)
      FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  }
  return 0;
}
