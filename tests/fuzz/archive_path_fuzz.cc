// Fuzzes the check that decides whether an archive entry's path may be written (the same check
// guards hard-link targets): storage::safeRelativePath. A path it accepts must, once joined to
// the destination and normalised, stay strictly inside the destination; and it must accept
// exactly the paths its contract describes: relative, no ".." component, no NUL, not empty once
// "." and empty components are dropped.
//
// Input: an entry path as an archive would carry it.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "puller/storage/util.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace fs = std::filesystem;

bool contractAccepts(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  bool named = false;
  while (true) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (part == "..") return false;
    named = named || (!part.empty() && part != ".");
    if (slash == std::string_view::npos) return named;
    path.remove_prefix(slash + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view path(reinterpret_cast<const char*>(data), size);
  auto relative = storage::safeRelativePath(path);
  FUZZ_CHECK(relative.has_value() == contractAccepts(path));
  if (!relative) return 0;
  FUZZ_CHECK(relative->is_relative());
  FUZZ_CHECK(!relative->has_root_name() && !relative->has_root_directory());
  for (const auto& part : *relative)
    FUZZ_CHECK(part != ".." && part != "." && !part.empty());
  const fs::path destination = "/mnt/models/model";
  fs::path full = (destination / *relative).lexically_normal();
  auto [inDestination, inFull] =
      std::mismatch(destination.begin(), destination.end(), full.begin(), full.end());
  FUZZ_CHECK(inDestination == destination.end());
  FUZZ_CHECK(inFull != full.end());
  FUZZ_CHECK(full.lexically_relative(destination) == relative->lexically_normal());
  return 0;
}
