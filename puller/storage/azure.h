// Azure Blob Storage: Shared Key signing (exposed for tests that upload fixtures).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

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

// The current time as RFC 1123 ("Mon, 01 Jan 2024 00:00:00 GMT") for x-ms-date.
std::string httpDateNow();

}  // namespace storage::azure
