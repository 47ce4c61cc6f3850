// Fuzzes what the OCI source parses from outside: the model URI a user writes
// (storage::parseOciReference) and the WWW-Authenticate challenge a registry answers
// (storage::parseOciChallenge). An accepted reference must satisfy its contract (a registry
// without '/', a lower-case repository without empty or ".." components, a digest of 64 hex
// digits or a tag without URL syntax) and read back the same once written again; a challenge never
// fails, and its scheme is one lower-case word.
//
// Input: the first line is parsed as a URI (after "oci://"), the rest as a challenge.
#include <cstdint>
#include <string>
#include <string_view>

#include "puller/storage/oci.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool lowerRepository(std::string_view repository) {
  if (repository.empty() || repository.front() == '/' || repository.back() == '/') return false;
  for (char c : repository) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
          c == '/')) {
      return false;
    }
  }
  return repository.find("//") == std::string_view::npos &&
         repository.find("..") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string uri = "oci://" + std::string(input.substr(0, newline));
  auto reference = storage::parseOciReference(uri);
  if (reference) {
    FUZZ_CHECK(!reference->registry.empty());
    FUZZ_CHECK(reference->registry.find('/') == std::string::npos);
    FUZZ_CHECK(lowerRepository(reference->repository));
    FUZZ_CHECK(!reference->reference.empty());
    if (reference->byDigest) {
      FUZZ_CHECK(reference->reference.size() == 71 && reference->reference.starts_with("sha256:"));
    } else {
      // Nothing that would leave the manifest's path segment in a URL.
      FUZZ_CHECK(reference->reference.find_first_of("/?#%@: ") == std::string::npos);
    }
    FUZZ_CHECK(reference->registry.find_first_of("/?#%@ ") == std::string::npos);
    std::string again = "oci://" + reference->registry + "/" + reference->repository +
                        (reference->byDigest ? "@" : ":") + reference->reference;
    auto reread = storage::parseOciReference(again);
    FUZZ_CHECK(reread.has_value());
    FUZZ_CHECK(reread->registry == reference->registry);
    FUZZ_CHECK(reread->repository == reference->repository);
    FUZZ_CHECK(reread->reference == reference->reference);
    FUZZ_CHECK(reread->byDigest == reference->byDigest);
  }
  if (newline != std::string_view::npos) {
    storage::OciChallenge challenge = storage::parseOciChallenge(input.substr(newline + 1));
    for (char c : challenge.scheme)
      FUZZ_CHECK(c != ' ' && !(c >= 'A' && c <= 'Z'));
  }
  return 0;
}
