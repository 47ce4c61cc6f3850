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

// An OAuth access token with `scope` from the credential chain (gcp_credentials.h), cached per
// process; an empty token and success when the chain ends anonymous.
Status accessToken(const std::atomic<bool>* cancel, std::string& token,
                   const char* scope = kReadOnlyScope);

// Drops the process-wide cached Google tokens (a server refused one), so the next accessToken
// fetches a new one.
void forgetAccessTokens();

}  // namespace storage::gcs
