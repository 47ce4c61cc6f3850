#include "puller/storage/gcp_credentials.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "puller/storage/providers.h"
#include "puller/storage/token_cache.h"
#include "puller/storage/util.h"

namespace storage::gcp {
namespace {

using nlohmann::json;

constexpr const char* kDefaultTokenUri = "https://oauth2.googleapis.com/token";
constexpr const char* kCredentialsVariable = "GOOGLE_APPLICATION_CREDENTIALS";
// Off Google Cloud nothing answers at the metadata address; a connect limit this short keeps
// such runs from waiting (google-auth allows several seconds, the gap study asks for about 1 s).
constexpr auto kMetadataConnectTimeout = std::chrono::seconds(1);
// The GKE metadata server can answer 5xx for the first seconds of a pod's life.
constexpr int kMetadataAttempts = 3;

// Hosts where the metadata server did not answer, with why and when, so the downloads that
// follow do not wait for it again. Forgotten after a while: a long-running puller should find a
// metadata server that was only slow once.
constexpr auto kRememberAbsence = std::chrono::minutes(1);
struct Absence {
  std::string reason;
  std::chrono::steady_clock::time_point since;
};
std::mutex absentMutex;
std::map<std::string, Absence>& absentHosts() {
  static auto* hosts = new std::map<std::string, Absence>();
  return *hosts;
}

HttpRequest tokenRequest(const std::string& url, const std::atomic<bool>* cancel) {
  HttpRequest request;
  request.method = "POST";
  request.url = url;
  request.cancel = cancel;
  request.timeout = std::chrono::seconds(60);
  applyDefaultTls(request);
  return request;
}

// "POST url: HTTP 400 (invalid_grant: reason)": OAuth and Google errors name their cause in the
// body, which holds no secret.
std::string endpointFailure(const HttpRequest& request, const HttpResponse& response) {
  std::string text = describeFailure(request, response);
  const json answer = json::parse(response.body, nullptr, false);
  if (!answer.is_object()) return text;
  std::string detail;
  if (answer.contains("error") && answer["error"].is_string()) {
    detail = answer["error"].get<std::string>();
    if (answer.contains("error_description") && answer["error_description"].is_string()) {
      detail += ": " + answer["error_description"].get<std::string>();
    }
  } else if (answer.contains("error") && answer["error"].is_object() &&
             answer["error"].contains("message") && answer["error"]["message"].is_string()) {
    detail = answer["error"]["message"].get<std::string>();
  }
  return detail.empty() ? text : text + " (" + detail + ")";
}

// Reads `field` (a string) and, when present, the lifetime `lifetimeField` (seconds, a number or
// a numeric string) of a token answer.
Status readTokenAnswer(const HttpResponse& response, const char* field, const char* what,
                       tokens::Fetched& out) {
  const json answer = json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains(field) || !answer[field].is_string() ||
      answer[field].get<std::string>().empty()) {
    return Status::failure(std::string(what) + " returned no " + field);
  }
  out.token = answer[field].get<std::string>();
  if (answer.contains("expires_in") && answer["expires_in"].is_number_integer()) {
    out.lifetime = std::chrono::seconds(answer["expires_in"].get<long>());
  } else if (answer.contains("expireTime") && answer["expireTime"].is_string()) {
    auto left = tokens::secondsUntil(answer["expireTime"].get<std::string>());
    if (left) out.lifetime = *left;
  }
  return Status::success();
}

Status postForToken(HttpRequest& request, const Credential& credential, const char* field,
                    tokens::Fetched& out) {
  HttpResponse response = httpFetch(request);
  if (!response.ok()) {
    return Status::failure("cannot get a Google access token with " + credential.description +
                           ": " + endpointFailure(request, response));
  }
  return readTokenAnswer(response, field, "the Google token endpoint", out);
}

Status serviceAccountToken(const Credential& credential, const json& key,
                           const std::atomic<bool>* cancel, const std::string& scope,
                           tokens::Fetched& out) {
  const std::string tokenUri = key.value("token_uri", kDefaultTokenUri);
  const long now = static_cast<long>(std::time(nullptr));
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (key.contains("private_key_id")) header["kid"] = key["private_key_id"];
  const json claims = {{"iss", key.value("client_email", "")},
                       {"scope", scope},
                       {"aud", tokenUri},
                       {"iat", now},
                       {"exp", now + 3600}};
  const std::string unsignedJwt =
      base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
  auto signature = rs256Sign(key.value("private_key", ""), unsignedJwt);
  if (!signature) {
    return Status::failure("the private_key of " + credential.description + " is not usable");
  }
  HttpRequest request = tokenRequest(tokenUri, cancel);
  request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  request.body = formEncode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                             {"assertion", unsignedJwt + "." + base64UrlEncode(*signature)}});
  return postForToken(request, credential, "access_token", out);
}

Status authorizedUserToken(const Credential& credential, const json& key,
                           const std::atomic<bool>* cancel, tokens::Fetched& out) {
  HttpRequest request = tokenRequest(key.value("token_uri", kDefaultTokenUri), cancel);
  request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  request.body = formEncode({{"grant_type", "refresh_token"},
                             {"client_id", key.value("client_id", "")},
                             {"client_secret", key.value("client_secret", "")},
                             {"refresh_token", key.value("refresh_token", "")}});
  return postForToken(request, credential, "access_token", out);
}

// The subject token of an external_account file, read anew for every exchange: the projected
// token it names rotates.
Status subjectToken(const Credential& credential, const json& source,
                    const std::atomic<bool>* cancel, std::string& token) {
  std::string text;
  std::string where;
  if (source.contains("file") && source["file"].is_string()) {
    where = source["file"].get<std::string>();
    // An empty file counts as unreadable, as a token file never is empty.
    std::optional<std::string> content = readTextFile(where);
    if (!content || content->empty()) {
      return Status::failure("cannot read the subject token file " + where + " of " +
                             credential.description);
    }
    text = std::move(*content);
  } else if (source.contains("url") && source["url"].is_string()) {
    HttpRequest request;
    request.url = source["url"].get<std::string>();
    request.cancel = cancel;
    request.timeout = std::chrono::seconds(30);
    applyDefaultTls(request);
    if (source.contains("headers") && source["headers"].is_object()) {
      for (const auto& [name, value] : source["headers"].items()) {
        if (value.is_string()) request.headers.push_back(name + ": " + value.get<std::string>());
      }
    }
    HttpResponse response = httpFetch(request);
    if (!response.ok()) {
      return Status::failure("cannot get the subject token of " + credential.description + ": " +
                             describeFailure(request, response));
    }
    where = redactUri(request.url);
    text = response.body;
  } else {
    return Status::failure("the credential_source of " + credential.description +
                           " names neither a file nor a url (other sources are not supported)");
  }
  const json format = source.value("format", json::object());
  if (format.is_object() && format.value("type", "text") == "json") {
    const std::string field = format.value("subject_token_field_name", "");
    const json parsed = json::parse(text, nullptr, false);
    if (!parsed.is_object() || !parsed.contains(field) || !parsed[field].is_string()) {
      return Status::failure("the subject token from " + where + " has no string field \"" + field +
                             "\"");
    }
    token = parsed[field].get<std::string>();
  } else {
    token = trim(text);
  }
  if (token.empty()) return Status::failure("the subject token from " + where + " is empty");
  return Status::success();
}

// IAM Credentials generateAccessToken for `scope`, authorized by `bearer`.
Status impersonate(const Credential& credential, const std::string& url, const std::string& bearer,
                   const std::string& scope, long lifetime, const json& delegates,
                   const std::atomic<bool>* cancel, tokens::Fetched& out) {
  HttpRequest request = tokenRequest(url, cancel);
  request.headers.push_back("Content-Type: application/json");
  request.headers.push_back("Authorization: Bearer " + bearer);
  json body{{"scope", json::array({scope})}, {"lifetime", std::to_string(lifetime) + "s"}};
  if (!delegates.empty()) body["delegates"] = delegates;
  request.body = body.dump();
  return postForToken(request, credential, "accessToken", out);
}

Status externalAccountToken(const Credential& credential, const json& key,
                            const std::atomic<bool>* cancel, const std::string& scope,
                            tokens::Fetched& out) {
  std::string subject;
  Status status =
      subjectToken(credential, key.value("credential_source", json::object()), cancel, subject);
  if (!status.ok) return status;
  const std::string impersonationUrl = key.value("service_account_impersonation_url", "");
  // With impersonation the federated token only has to be allowed to impersonate; the scope
  // asked for goes on the impersonated token (as google-auth does).
  HttpRequest exchange =
      tokenRequest(key.value("token_url", "https://sts.googleapis.com/v1/token"), cancel);
  exchange.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  const std::string clientId = key.value("client_id", "");
  const std::string clientSecret = key.value("client_secret", "");
  if (!clientId.empty() && !clientSecret.empty()) {
    exchange.headers.push_back("Authorization: Basic " +
                               base64Encode(clientId + ":" + clientSecret));
  }
  exchange.body =
      formEncode({{"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"},
                  {"audience", key.value("audience", "")},
                  {"scope", impersonationUrl.empty() ? scope : kCloudPlatformScope},
                  {"requested_token_type", "urn:ietf:params:oauth:token-type:access_token"},
                  {"subject_token", subject},
                  {"subject_token_type", key.value("subject_token_type", "")}});
  tokens::Fetched federated;
  status = postForToken(exchange, credential, "access_token", federated);
  if (!status.ok || impersonationUrl.empty()) {
    out = std::move(federated);
    return status;
  }
  long lifetime = 3600;
  const json options = key.value("service_account_impersonation", json::object());
  if (options.is_object() && options.contains("token_lifetime_seconds") &&
      options["token_lifetime_seconds"].is_number_integer()) {
    lifetime = options["token_lifetime_seconds"].get<long>();
  }
  return impersonate(credential, impersonationUrl, federated.token, scope, lifetime, json::array(),
                     cancel, out);
}

// A source credential's token with the cloud-platform scope, which is what IAM Credentials
// needs to mint the impersonated token.
Status sourceToken(const Credential& credential, const json& source,
                   const std::atomic<bool>* cancel, tokens::Fetched& out) {
  const std::string type = source.value("type", "");
  if (type == "service_account") {
    return serviceAccountToken(credential, source, cancel, kCloudPlatformScope, out);
  }
  if (type == "authorized_user") return authorizedUserToken(credential, source, cancel, out);
  return externalAccountToken(credential, source, cancel, kCloudPlatformScope, out);
}

// An impersonated_service_account file (what `gcloud auth application-default login
// --impersonate-service-account` writes): the source credentials' token asks IAM Credentials for
// the target account's token, through the delegates in order.
Status impersonatedToken(const Credential& credential, const json& key,
                         const std::atomic<bool>* cancel, const std::string& scope,
                         tokens::Fetched& out) {
  tokens::Fetched source;
  Status status =
      sourceToken(credential, key.value("source_credentials", json::object()), cancel, source);
  if (!status.ok) return status;
  json delegates = key.value("delegates", json::array());
  if (!delegates.is_array()) delegates = json::array();
  return impersonate(credential, key.value("service_account_impersonation_url", ""), source.token,
                     scope, 3600, delegates, cancel, out);
}

// A token from the metadata server, 5xx answers asked again. On failure `absentReason` is set
// when there is no Google metadata server there at all (nothing answered, 403/404, or a 200 that
// is no token answer), and left empty when the server exists but failed.
Status metadataToken(const std::string& host, const std::atomic<bool>* cancel,
                     const std::string& scope, tokens::Fetched& out, std::string& absentReason) {
  HttpRequest request;
  request.url = "http://" + host +
                "/computeMetadata/v1/instance/service-accounts/default/token?scopes=" +
                percentEncode(scope, false);
  request.headers.push_back("Metadata-Flavor: Google");
  request.cancel = cancel;
  request.connectTimeout = kMetadataConnectTimeout;
  request.timeout = std::chrono::seconds(10);
  HttpResponse response;
  for (int attempt = 1; attempt <= kMetadataAttempts; ++attempt) {
    response = httpFetch(request);
    if (response.status < 500 || response.cancelled) break;
    if (attempt < kMetadataAttempts) {
      std::this_thread::sleep_for(attempt * std::chrono::milliseconds(300));
    }
  }
  if (response.cancelled) return Status::failure("cancelled");
  if (response.status == 0) {
    absentReason = "no metadata server answered at " + host;
    return Status::failure(absentReason);
  }
  // Another service on the address (an AWS or Azure metadata endpoint) answers 404 here; so does
  // a metadata server whose VM has no service account. Either way there is no Google credential.
  if (response.status == 404 || response.status == 403) {
    absentReason = "the metadata server at " + host + " has no service account token (HTTP " +
                   std::to_string(response.status) + ")";
    return Status::failure(absentReason);
  }
  if (!response.ok()) {
    return Status::failure("cannot get a token from the metadata server at " + host + ": " +
                           endpointFailure(request, response));
  }
  Status status = readTokenAnswer(response, "access_token", "the metadata server", out);
  // A 200 that is not a token answer is not Google's metadata server.
  if (!status.ok) absentReason = "the server at " + host + " is not a Google metadata server";
  return status;
}

Status fetchToken(const Credential& credential, const std::atomic<bool>* cancel,
                  const std::string& scope, tokens::Fetched& out) {
  if (credential.kind == Kind::MetadataServer) {
    std::string ignored;
    return metadataToken(credential.metadataHost, cancel, scope, out, ignored);
  }
  const json key = json::parse(credential.fileText, nullptr, false);
  switch (credential.kind) {
    case Kind::ServiceAccount:
      return serviceAccountToken(credential, key, cancel, scope, out);
    case Kind::AuthorizedUser:
      return authorizedUserToken(credential, key, cancel, out);
    case Kind::ExternalAccount:
      return externalAccountToken(credential, key, cancel, scope, out);
    case Kind::Impersonated:
      return impersonatedToken(credential, key, cancel, scope, out);
    default:
      return Status::success();
  }
}

// "sa@project.iam.gserviceaccount.com" from ".../serviceAccounts/<email>:generateAccessToken".
std::string impersonatedAccount(const std::string& url) {
  const size_t start = url.rfind("serviceAccounts/");
  if (start == std::string::npos) return "";
  const std::string rest = url.substr(start + 16);
  return rest.substr(0, rest.find(':'));
}

// A credentials file, named by GOOGLE_APPLICATION_CREDENTIALS or found where gcloud writes it;
// `origin` says which in messages.
Status fromFile(const std::string& path, const std::string& origin, Credential& credential) {
  const std::optional<std::string> text = readTextFile(path);
  if (!text || text->empty()) {
    return Status::failure("cannot read the " + origin + " file " + path);
  }
  const json key = json::parse(*text, nullptr, false);
  if (!key.is_object()) {
    return Status::failure("the " + origin + " file " + path + " is not JSON");
  }
  const std::string type = key.value("type", "");
  const std::string where = " in " + origin + " (" + path + ")";
  if (type == "service_account") {
    credential.kind = Kind::ServiceAccount;
    credential.description =
        "the service account key for " + key.value("client_email", "?") + where;
  } else if (type == "authorized_user") {
    credential.kind = Kind::AuthorizedUser;
    credential.description = "the authorized user credentials" + where;
  } else if (type == "external_account") {
    credential.kind = Kind::ExternalAccount;
    credential.description = "the workload identity federation credentials" + where;
    const std::string account =
        impersonatedAccount(key.value("service_account_impersonation_url", ""));
    if (!account.empty()) credential.description += " impersonating " + account;
  } else if (type == "impersonated_service_account") {
    const std::string account =
        impersonatedAccount(key.value("service_account_impersonation_url", ""));
    const json source = key.value("source_credentials", json());
    const std::string sourceType = source.is_object() ? source.value("type", "") : "";
    if (account.empty() || (sourceType != "service_account" && sourceType != "authorized_user" &&
                            sourceType != "external_account")) {
      return Status::failure("the impersonated_service_account credentials" + where +
                             " need a service_account_impersonation_url naming the account and "
                             "source_credentials of type service_account, authorized_user or "
                             "external_account");
    }
    credential.kind = Kind::Impersonated;
    credential.description = "the credentials" + where + " impersonating " + account + " with " +
                             sourceType + " credentials";
  } else {
    return Status::failure("unsupported credentials type \"" + type + "\"" + where +
                           "; expected service_account, authorized_user, external_account or "
                           "impersonated_service_account");
  }
  credential.fileText = *text;
  credential.cacheKey = "gcp-file|" + sha256Hex(credential.fileText);
  return Status::success();
}

// Where `gcloud auth application-default login` writes its credentials: $CLOUDSDK_CONFIG, else
// ~/.config/gcloud.
std::string wellKnownFile() {
  std::string dir = env("CLOUDSDK_CONFIG");
  if (dir.empty()) dir = env("HOME") + "/.config/gcloud";
  return dir + "/application_default_credentials.json";
}

}  // namespace

Status findCredential(const std::atomic<bool>* cancel, const std::string& scope,
                      Credential& credential) {
  credential = {};
  const std::string path = env(kCredentialsVariable);
  if (!path.empty()) return fromFile(path, kCredentialsVariable, credential);
  std::error_code ec;
  if (const std::string gcloud = wellKnownFile(); fs::exists(gcloud, ec)) {
    return fromFile(gcloud, "gcloud's application default credentials", credential);
  }

  std::string host = env("GCE_METADATA_HOST");
  std::string skipped;
  if (envBool("NO_GCE_CHECK", false)) {
    skipped = "the metadata server is not asked (NO_GCE_CHECK)";
  } else if (host.empty() && !env("STORAGE_EMULATOR_HOST").empty()) {
    // An emulator never takes a metadata token; asking would only cost the probe's wait.
    skipped =
        "the metadata server is not asked with STORAGE_EMULATOR_HOST unless GCE_METADATA_HOST is "
        "set";
  }
  if (host.empty()) {
    const std::string ip = env("GCE_METADATA_IP");
    host = ip.empty() ? "169.254.169.254" : ip;
  }
  if (skipped.empty()) {
    std::string absentReason;
    {
      std::lock_guard<std::mutex> lock(absentMutex);
      auto it = absentHosts().find(host);
      if (it != absentHosts().end() &&
          std::chrono::steady_clock::now() - it->second.since < kRememberAbsence) {
        absentReason = it->second.reason;
      }
    }
    if (absentReason.empty()) {
      credential.kind = Kind::MetadataServer;
      credential.metadataHost = host;
      credential.description = "the metadata server's service account token (" + host + ")";
      credential.cacheKey = "gcp-metadata|" + host;
      std::string token;
      Status status = tokens::get(
          credential.cacheKey + "|" + scope,
          [&](tokens::Fetched& out) {
            return metadataToken(host, cancel, scope, out, absentReason);
          },
          token);
      if (status.ok) return status;
      if (absentReason.empty()) return status;
      std::lock_guard<std::mutex> lock(absentMutex);
      absentHosts()[host] = {absentReason, std::chrono::steady_clock::now()};
    }
    skipped = absentReason;
  }
  credential = {};
  credential.description =
      std::string("no credentials (") + kCredentialsVariable + " is unset and " + skipped + ")";
  return Status::success();
}

Status accessToken(const Credential& credential, const std::atomic<bool>* cancel,
                   const std::string& scope, std::string& token) {
  token.clear();
  if (credential.kind == Kind::Anonymous) return Status::success();
  return tokens::get(
      credential.cacheKey + "|" + scope,
      [&](tokens::Fetched& out) { return fetchToken(credential, cancel, scope, out); }, token);
}

void forgetToken(const Credential& credential, const std::string& scope) {
  if (credential.kind != Kind::Anonymous) tokens::invalidate(credential.cacheKey + "|" + scope);
}

std::string refusalHint(const Credential& credential) {
  if (credential.kind == Kind::Anonymous) {
    return "the request was anonymous: " + credential.description;
  }
  return "the request carried a token from " + credential.description;
}

}  // namespace storage::gcp
