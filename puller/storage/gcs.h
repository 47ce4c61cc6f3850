// Google Cloud Storage: the endpoint and the access token, shared by downloads and uploads.
#pragma once

#include <atomic>
#include <string>

#include "puller/storage/storage.h"

namespace storage::gcs {

inline constexpr const char* kReadOnlyScope =
    "https://www.googleapis.com/auth/devstorage.read_only";
inline constexpr const char* kReadWriteScope =
    "https://www.googleapis.com/auth/devstorage.read_write";

// https://storage.googleapis.com, or STORAGE_EMULATOR_HOST (http:// when it names no scheme).
std::string endpoint();

// Exchanges GOOGLE_APPLICATION_CREDENTIALS (a service-account key or an authorized-user file)
// for an OAuth access token with `scope`; an empty token and success when the variable is unset
// (anonymous).
Status accessToken(const std::atomic<bool>* cancel, std::string& token,
                   const char* scope = kReadOnlyScope);

}  // namespace storage::gcs
