// Confidential model serving, as KServe's initializer does it when CONFIDENTIAL_ENABLED=true:
// after the downloads, every file below the destinations that is a JWE (named *.jwe, or opening
// with "eyJ", the base64url of '{"' that starts a compact JWE's header) is decrypted in place
// with the key the Confidential Data Hub releases for CONFIDENTIAL_RESOURCE_ID
// (kbs:///<repository>/<type>/<tag>, asked of CDH_ADDR, default http://127.0.0.1:8006, at
// /cdh/resource/<repository>/<type>/<tag>; the answer's body is the key), and a ".jwe" suffix
// is dropped from the name.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "puller/storage/storage.h"

namespace storage {

// CONFIDENTIAL_ENABLED is true (any case, as upstream compares it).
bool confidentialEnabled();

// CONFIDENTIAL_RESOURCE_ID names a resource (checked before any download, so a misconfigured
// pod fails at once rather than after fetching the model).
Status checkConfidentialSettings();

// Decrypts the JWE files below each folder (or the file itself when a destination is one).
// The key is fetched once. Each plaintext is written to a temporary file beside the JWE and
// moved over it only after its authentication tag checked, so a wrong key or a tampered file
// leaves the JWE as it was and fails with the file's name.
Status decryptConfidential(const std::vector<std::string>& destinations,
                           const std::atomic<bool>* cancel = nullptr);

// Decrypts one JWE, compact or JSON serialization (flattened, or general with one recipient),
// with the symmetric `key`: alg "dir" (the key is the content key) or A128KW/A192KW/A256KW (AES
// key wrap), enc A128GCM/A192GCM/A256GCM or A128CBC-HS256/A192CBC-HS384/A256CBC-HS512; no
// "zip". The plaintext goes to `sink` in pieces as the ciphertext is decoded, and is authentic
// only when this returns success. `sink` returns false to stop (a write failed).
Status decryptJwe(std::string_view text, std::string_view key,
                  const std::function<bool(std::string_view)>& sink);

}  // namespace storage
