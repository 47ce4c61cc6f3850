#include "puller/storage/azure_credentials.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <thread>

#include "puller/storage/providers.h"
#include "puller/storage/token_cache.h"
#include "puller/storage/util.h"

namespace storage::azure {
namespace {

using nlohmann::json;

// Off Azure nothing answers at the IMDS address; this keeps such runs from waiting.
constexpr auto kManagedIdentityConnectTimeout = std::chrono::seconds(1);
// IMDS answers 404/410/429/5xx while a VM or node boots or when throttling.
constexpr int kManagedIdentityAttempts = 3;

std::string withoutTrailingSlash(std::string text) {
  while (!text.empty() && text.back() == '/')
    text.pop_back();
  return text;
}

// A lifetime from "expires_in" (number or numeric string, Entra and IMDS) or "expires_on" (epoch
// seconds as a string, the identity endpoint).
std::chrono::seconds lifetimeOf(const json& answer) {
  auto number = [&](const char* field) -> std::optional<long> {
    if (!answer.contains(field)) return std::nullopt;
    if (answer[field].is_number_integer()) return answer[field].get<long>();
    if (answer[field].is_string()) {
      const std::string text = answer[field].get<std::string>();
      char* end = nullptr;
      const long value = std::strtol(text.c_str(), &end, 10);
      if (!text.empty() && *end == '\0') return value;
    }
    return std::nullopt;
  };
  if (auto in = number("expires_in")) return std::chrono::seconds(*in);
  if (auto on = number("expires_on")) {
    return std::chrono::seconds(*on - static_cast<long>(std::time(nullptr)));
  }
  return std::chrono::seconds(3600);
}

// "POST url: HTTP 400 (AADSTS700024: Client assertion is not within its valid time range.)":
// Entra names the cause in error_description, which holds no secret.
std::string endpointFailure(const HttpRequest& request, const HttpResponse& response) {
  std::string text = describeFailure(request, response);
  const json answer = json::parse(response.body, nullptr, false);
  if (answer.is_object() && answer.contains("error_description") &&
      answer["error_description"].is_string()) {
    text += " (" + answer["error_description"].get<std::string>() + ")";
  } else if (answer.is_object() && answer.contains("error") && answer["error"].is_string()) {
    text += " (" + answer["error"].get<std::string>() + ")";
  }
  return text;
}

Status readToken(const Credential& credential, const HttpResponse& response, tokens::Fetched& out) {
  const json answer = json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("access_token") ||
      !answer["access_token"].is_string() || answer["access_token"].get<std::string>().empty()) {
    return Status::failure("the token endpoint of " + credential.description +
                           " returned no access_token");
  }
  out.token = answer["access_token"].get<std::string>();
  out.lifetime = lifetimeOf(answer);
  return Status::success();
}

Status entraToken(const Credential& credential, const std::atomic<bool>* cancel,
                  tokens::Fetched& out) {
  std::vector<std::pair<std::string, std::string>> form{{"grant_type", "client_credentials"},
                                                        {"client_id", credential.clientId},
                                                        {"scope", kStorageScope}};
  if (credential.kind == Kind::ClientSecret) {
    form.emplace_back("client_secret", credential.clientSecret);
  } else {
    const std::optional<std::string> text = readTextFile(credential.tokenFile);
    if (!text || trim(*text).empty()) {
      return Status::failure("cannot read the federated token file " + credential.tokenFile +
                             " (AZURE_FEDERATED_TOKEN_FILE)");
    }
    form.emplace_back("client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.emplace_back("client_assertion", trim(*text));
  }
  HttpRequest request;
  request.method = "POST";
  request.url = credential.tokenUrl;
  request.cancel = cancel;
  request.timeout = std::chrono::seconds(60);
  applyDefaultTls(request);
  request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  request.body = formEncode(form);
  HttpResponse response = httpFetch(request);
  if (!response.ok()) {
    return Status::failure("cannot get an Azure AD token with " + credential.description + ": " +
                           endpointFailure(request, response));
  }
  return readToken(credential, response, out);
}

// `answered` is false when no server answered at all (not on Azure).
Status managedIdentityToken(const Credential& credential, const std::atomic<bool>* cancel,
                            tokens::Fetched& out, bool& answered) {
  HttpRequest request;
  request.url = credential.tokenUrl;
  request.cancel = cancel;
  request.connectTimeout = kManagedIdentityConnectTimeout;
  request.timeout = std::chrono::seconds(30);
  if (credential.identityHeader.empty()) {
    request.headers.push_back("Metadata: true");
  } else {
    applyDefaultTls(request);
    request.headers.push_back("X-IDENTITY-HEADER: " + credential.identityHeader);
  }
  HttpResponse response;
  for (int attempt = 1; attempt <= kManagedIdentityAttempts; ++attempt) {
    response = httpFetch(request);
    const bool transient = response.status == 404 || response.status == 410 ||
                           response.status == 429 || response.status >= 500;
    if (!transient || response.cancelled) break;
    if (attempt < kManagedIdentityAttempts) {
      std::this_thread::sleep_for(attempt * std::chrono::milliseconds(300));
    }
  }
  answered = response.status != 0 || response.cancelled;
  if (!response.ok()) {
    return Status::failure("cannot get a token with " + credential.description + ": " +
                           endpointFailure(request, response));
  }
  return readToken(credential, response, out);
}

Status fetchToken(const Credential& credential, const std::atomic<bool>* cancel,
                  tokens::Fetched& out) {
  if (credential.kind == Kind::ManagedIdentity) {
    bool answered = false;
    return managedIdentityToken(credential, cancel, out, answered);
  }
  return entraToken(credential, cancel, out);
}

Credential entraCredential(Kind kind, const std::string& clientId, const std::string& tenant) {
  Credential credential;
  credential.kind = kind;
  credential.clientId = clientId;
  std::string authority = withoutTrailingSlash(env("AZURE_AUTHORITY_HOST"));
  if (authority.empty()) authority = "https://login.microsoftonline.com";
  credential.tokenUrl = authority + "/" + percentEncode(tenant, false) + "/oauth2/v2.0/token";
  return credential;
}

}  // namespace

Status findCredential(bool sasInUrl, const std::atomic<bool>* cancel, Credential& credential) {
  credential = {};
  if (sasInUrl) {
    credential.kind = Kind::Sas;
    credential.description = "the SAS token in the URL";
    return Status::success();
  }
  const std::string clientId = envFirst({"AZURE_CLIENT_ID", "AZ_CLIENT_ID"});
  const std::string key = env("AZURE_STORAGE_ACCESS_KEY");
  std::string triedIdentity;
  if (!clientId.empty()) {
    const std::string tenant = envFirst({"AZURE_TENANT_ID", "AZ_TENANT_ID"});
    const std::string secret = envFirst({"AZURE_CLIENT_SECRET", "AZ_CLIENT_SECRET"});
    const std::string tokenFile = env("AZURE_FEDERATED_TOKEN_FILE");
    if (!secret.empty()) {
      if (tenant.empty()) {
        return Status::failure("AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is missing");
      }
      credential = entraCredential(Kind::ClientSecret, clientId, tenant);
      credential.clientSecret = secret;
      credential.description =
          "the client secret of service principal " + clientId + " (tenant " + tenant + ")";
      credential.cacheKey =
          "azure-secret|" + credential.tokenUrl + "|" + clientId + "|" + sha256Hex(secret);
      return Status::success();
    }
    if (!tokenFile.empty()) {
      if (tenant.empty()) {
        return Status::failure("AZURE_FEDERATED_TOKEN_FILE is set but AZURE_TENANT_ID is missing");
      }
      credential = entraCredential(Kind::WorkloadIdentity, clientId, tenant);
      credential.tokenFile = tokenFile;
      credential.description = "workload identity " + clientId + " (tenant " + tenant +
                               ", AZURE_FEDERATED_TOKEN_FILE " + tokenFile + ")";
      credential.cacheKey =
          "azure-workload|" + credential.tokenUrl + "|" + clientId + "|" + tokenFile;
      return Status::success();
    }
    credential.kind = Kind::ManagedIdentity;
    credential.clientId = clientId;
    const std::string query = "resource=" + percentEncode(kStorageResource, false) +
                              "&client_id=" + percentEncode(clientId, false);
    const std::string identityEndpoint = env("IDENTITY_ENDPOINT");
    const std::string identityHeader = env("IDENTITY_HEADER");
    std::string where;
    if (!identityEndpoint.empty() && !identityHeader.empty()) {
      credential.tokenUrl = identityEndpoint +
                            (identityEndpoint.find('?') == std::string::npos ? "?" : "&") +
                            "api-version=2019-08-01&" + query;
      credential.identityHeader = identityHeader;
      where = "IDENTITY_ENDPOINT " + redactUri(identityEndpoint);
    } else {
      std::string authority = withoutTrailingSlash(env("AZURE_POD_IDENTITY_AUTHORITY_HOST"));
      if (authority.empty()) authority = "http://169.254.169.254";
      credential.tokenUrl =
          authority + "/metadata/identity/oauth2/token?api-version=2018-02-01&" + query;
      where = "IMDS " + authority;
    }
    credential.description = "managed identity " + clientId + " (" + where + ")";
    credential.cacheKey = "azure-managed|" + credential.tokenUrl;
    bool answered = true;
    std::string token;
    Status status = tokens::get(
        credential.cacheKey,
        [&](tokens::Fetched& out) {
          return managedIdentityToken(credential, cancel, out, answered);
        },
        token);
    if (status.ok) return status;
    if (answered) return status;
    triedIdentity = "AZURE_CLIENT_ID " + clientId +
                    " has no AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE and no managed "
                    "identity endpoint answered at " +
                    where;
  }
  if (!key.empty()) {
    if (!base64Decode(key)) return Status::failure("AZURE_STORAGE_ACCESS_KEY is not valid base64");
    credential = {};
    credential.kind = Kind::SharedKey;
    credential.accountKey = key;
    credential.description = "the account key in AZURE_STORAGE_ACCESS_KEY";
    return Status::success();
  }
  if (!triedIdentity.empty()) {
    return Status::failure("no Azure credentials: " + triedIdentity +
                           ", and AZURE_STORAGE_ACCESS_KEY is unset");
  }
  credential = {};
  credential.description =
      "no credentials (no SAS in the URL; AZURE_CLIENT_ID and AZURE_STORAGE_ACCESS_KEY are unset)";
  return Status::success();
}

Status bearerToken(const Credential& credential, const std::atomic<bool>* cancel,
                   std::string& token) {
  token.clear();
  if (credential.cacheKey.empty()) return Status::success();
  return tokens::get(
      credential.cacheKey,
      [&](tokens::Fetched& out) { return fetchToken(credential, cancel, out); }, token);
}

void forgetToken(const Credential& credential) {
  if (!credential.cacheKey.empty()) tokens::invalidate(credential.cacheKey);
}

std::string refusalHint(const Credential& credential) {
  switch (credential.kind) {
    case Kind::Anonymous:
      return "the request was anonymous: " + credential.description;
    case Kind::Sas:
    case Kind::SharedKey:
      return "the request was signed with " + credential.description;
    default:
      return "the request carried a token from " + credential.description;
  }
}

}  // namespace storage::azure
