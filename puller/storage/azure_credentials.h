// The Azure Blob credential chain, first match wins:
//   1. a SAS token in the URL's query;
//   2. with AZURE_CLIENT_ID (or AZ_CLIENT_ID) set, as azure-identity's DefaultAzureCredential:
//      a. a client secret (AZURE_CLIENT_SECRET, AZURE_TENANT_ID): client_credentials grant;
//      a'. a certificate (AZURE_CLIENT_CERTIFICATE_PATH: PEM key and certificate, or PKCS#12
//         with AZURE_CLIENT_CERTIFICATE_PASSWORD; AZURE_TENANT_ID): an RS256 client assertion
//         signed with its key (x5t; x5c with AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true);
//      b. workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID): the file's token sent
//         as client_assertion, the file read again at every refresh (it rotates);
//      c. managed identity for that client id: IDENTITY_ENDPOINT + IDENTITY_HEADER (App
//         Service, Arc) or IMDS (AZURE_POD_IDENTITY_AUTHORITY_HOST, default
//         http://169.254.169.254, asked with a 1 s connect limit);
//      the token endpoints are at AZURE_AUTHORITY_HOST (default login.microsoftonline.com);
//   3. the account key AZURE_STORAGE_ACCESS_KEY (Shared Key);
//   4. anonymous (public containers).
// Bearer tokens come from the process-wide cache (token_cache.h).
#pragma once

#include <atomic>
#include <string>

#include "puller/storage/storage.h"

namespace storage::azure {

inline constexpr const char* kStorageScope = "https://storage.azure.com/.default";
inline constexpr const char* kStorageResource = "https://storage.azure.com/";

enum class Kind {
  Sas,
  ClientSecret,
  ClientCertificate,
  WorkloadIdentity,
  ManagedIdentity,
  SharedKey,
  Anonymous
};

struct Credential {
  Kind kind = Kind::Anonymous;
  // Which credential this is, for messages and logs; never holds a secret.
  std::string description;
  std::string accountKey;  // SharedKey
  std::string cacheKey;    // bearer kinds
  // What the token request needs (the secret and the identity header are never shown).
  std::string clientId;
  std::string tokenUrl;  // Entra token endpoint, or the managed identity endpoint with its query
  std::string clientSecret;
  std::string certificatePath;
  std::string certificatePassword;
  bool sendCertificateChain = false;
  std::string tokenFile;
  std::string identityHeader;  // "" for IMDS, which takes "Metadata: true" instead
};

// Walks the chain; `sasInUrl` when the URL carries a SAS. Managed identity is only chosen when
// its endpoint answers with a token. Fails when AZURE_CLIENT_ID is set but no identity for it
// works and there is no account key either, naming what was tried.
Status findCredential(bool sasInUrl, const std::atomic<bool>* cancel, Credential& credential);

// The bearer token of a ClientSecret, WorkloadIdentity or ManagedIdentity credential, cached.
Status bearerToken(const Credential& credential, const std::atomic<bool>* cancel,
                   std::string& token);

// Drops the cached token (after the storage server refused it).
void forgetToken(const Credential& credential);

// What to add to a 401/403 answer's message: which credential the request carried.
std::string refusalHint(const Credential& credential);

}  // namespace storage::azure
