// The Google credential chain, in the order Google's client libraries use (Application Default
// Credentials):
//   1. GOOGLE_APPLICATION_CREDENTIALS naming a key file: a service account key (an RS256 JWT
//      exchanged at the key's token_uri), an authorized user (refresh token), or an
//      external_account file (workload identity federation: a subject token from a file or a
//      URL exchanged at Google's STS, then optionally a service account impersonated), or an
//      impersonated_service_account file (a source credential's token buys the target
//      account's token from IAM Credentials, through its delegates);
//   2. the file gcloud writes ($CLOUDSDK_CONFIG, else ~/.config/gcloud,
//      /application_default_credentials.json), of the same kinds, when it exists;
//   3. the metadata server (GKE Workload Identity, a VM's service account) at GCE_METADATA_HOST
//      or GCE_METADATA_IP (default 169.254.169.254), asked with a 1 s connect limit so runs off
//      Google Cloud do not hang;
//   4. anonymous, which only public buckets accept.
// Tokens come from the process-wide cache (token_cache.h).
#pragma once

#include <atomic>
#include <string>

#include "puller/storage/storage.h"

namespace storage::gcp {

inline constexpr const char* kCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";

enum class Kind {
  ServiceAccount,
  AuthorizedUser,
  ExternalAccount,
  Impersonated,
  MetadataServer,
  Anonymous
};

struct Credential {
  Kind kind = Kind::Anonymous;
  // Which credential this is, for messages and logs ("the service account key for x@y in
  // GOOGLE_APPLICATION_CREDENTIALS (/path)"); never holds a secret.
  std::string description;
  std::string fileText;  // the key file's JSON, for the file kinds
  std::string metadataHost;
  std::string cacheKey;  // token cache key, without the scope
};

// Walks the chain. Fails when GOOGLE_APPLICATION_CREDENTIALS names a file that cannot be read
// or used; otherwise finds the metadata server (which already yields a token for `scope`) or
// settles on anonymous.
Status findCredential(const std::atomic<bool>* cancel, const std::string& scope,
                      Credential& credential);

// A token with `scope` for the credential, cached; empty for anonymous.
Status accessToken(const Credential& credential, const std::atomic<bool>* cancel,
                   const std::string& scope, std::string& token);

// Drops the cached token (after the storage server refused it).
void forgetToken(const Credential& credential, const std::string& scope);

// What to add to a 401/403 answer's message: which credential the request carried, or why it
// carried none.
std::string refusalHint(const Credential& credential);

}  // namespace storage::gcp
