// Fuzzes the JWE reader of confidential serving (storage::decryptJwe), which reads downloaded
// files that anyone with write access to the bucket controls. For any text: no crash, no
// undefined behaviour, no unbounded allocation; a failure is one line that never shows the key;
// and a success delivered no more plaintext than the ciphertext could hold.
//
// Input: the first byte picks the key's length (16, 24, 32, 48 or 64 bytes, as the algorithms
// need), the rest is the JWE text. The seeds are JWEs jwcrypto made with that key.
#include <cstdint>
#include <string>
#include <string_view>

#include "puller/storage/confidential.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr size_t kLengths[] = {16, 24, 32, 48, 64};
  const std::string key(kLengths[data[0] % 5], 'K');
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t delivered = 0;
  storage::Status status = storage::decryptJwe(text, key, [&](std::string_view piece) {
    delivered += piece.size();
    return true;
  });
  if (!status.ok) {
    FUZZ_CHECK(status.message.find('\n') == std::string::npos);
    FUZZ_CHECK(status.message.find(key) == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(delivered <= text.size());
  return 0;
}
