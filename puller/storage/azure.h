// Azure Blob Storage: Shared Key signing (exposed for tests that upload fixtures) and the Azure
// AD token of the AZURE_CLIENT_ID identity, shared by downloads and uploads.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "puller/storage/http_client.h"
#include "puller/storage/storage.h"

namespace storage::azure {

inline constexpr const char* kApiVersion = "2021-08-06";

// The Authorization header value "SharedKey <account>:<signature>" for a request, or "" when
// the key is not valid base64. `path` is the URL path as sent (percent-encoded, including the
// account for path-style emulator URLs); `query` holds decoded names and values; `headers` holds
// lower-case names (x-ms-* and the standard ones that are signed, e.g. content-length).
std::string sharedKeyAuthorization(const std::string& account, const std::string& base64Key,
                                   const std::string& method, const std::string& path,
                                   const std::vector<std::pair<std::string, std::string>>& query,
                                   const std::map<std::string, std::string>& headers);

// A token for https://storage.azure.com from the AZURE_CLIENT_ID identity of the credential chain
// (azure_credentials.h: client secret, workload identity or managed identity), cached per
// process.
Status aadToken(const std::atomic<bool>* cancel, std::string& token);
// Drops the process-wide cached Azure AD tokens (a server refused one).
void forgetAadTokens();

// "<Code> (HTTP <status>)" from an Azure error answer (with a hint on 403), or the transport
// failure.
std::string errorText(const HttpRequest& request, const HttpResponse& response);

// The current time as RFC 1123 ("Mon, 01 Jan 2024 00:00:00 GMT") for x-ms-date.
std::string httpDateNow();

}  // namespace storage::azure
