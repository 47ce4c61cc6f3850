#include "puller/storage/azure_credentials.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include <ctime>
#include <memory>
#include <thread>
#include <vector>

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

// A certificate's private key (as unencrypted PEM, for rs256Sign) and its certificates (DER,
// the signing one first).
struct CertificateKey {
  std::string keyPem;
  std::vector<std::string> certificates;
};

std::string derOf(X509* certificate) {
  int length = i2d_X509(certificate, nullptr);
  if (length <= 0) return "";
  std::string der(static_cast<size_t>(length), '\0');
  auto* cursor = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(certificate, &cursor);
  return der;
}

// Reads AZURE_CLIENT_CERTIFICATE_PATH as azure-identity does: PEM holding the private key and
// the certificate (chain), or PKCS#12 with AZURE_CLIENT_CERTIFICATE_PASSWORD. Read at every
// token request: the file rotates like a federated token.
Status loadCertificate(const Credential& credential, CertificateKey& out) {
  const std::string& path = credential.certificatePath;
  std::optional<std::string> content = readTextFile(path);
  if (!content || content->empty()) {
    return Status::failure("cannot read the certificate file " + path +
                           " (AZURE_CLIENT_CERTIFICATE_PATH)");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(content->data(), static_cast<int>(content->size())), BIO_free);
  using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using Cert = std::unique_ptr<X509, decltype(&X509_free)>;
  Key key(nullptr, EVP_PKEY_free);
  // The password goes as OpenSSL's callback argument, so an encrypted key never prompts.
  void* password = const_cast<char*>(credential.certificatePassword.c_str());
  if (content->find("-----BEGIN") != std::string::npos) {
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, password));
    std::unique_ptr<BIO, decltype(&BIO_free)> certs(
        BIO_new_mem_buf(content->data(), static_cast<int>(content->size())), BIO_free);
    while (X509* certificate = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
      Cert owned(certificate, X509_free);
      out.certificates.push_back(derOf(certificate));
    }
  } else {
    std::unique_ptr<PKCS12, decltype(&PKCS12_free)> p12(d2i_PKCS12_bio(bio.get(), nullptr),
                                                        PKCS12_free);
    EVP_PKEY* parsedKey = nullptr;
    X509* certificate = nullptr;
    STACK_OF(X509)* chain = nullptr;
    if (p12 && PKCS12_parse(p12.get(), credential.certificatePassword.c_str(), &parsedKey,
                            &certificate, &chain) == 1) {
      key.reset(parsedKey);
      Cert owned(certificate, X509_free);
      if (certificate != nullptr) out.certificates.push_back(derOf(certificate));
      for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i)
        out.certificates.push_back(derOf(sk_X509_value(chain, i)));
      sk_X509_pop_free(chain, X509_free);
    } else if (p12) {
      return Status::failure("cannot open the PKCS#12 certificate " + path +
                             ": wrong or missing AZURE_CLIENT_CERTIFICATE_PASSWORD");
    }
  }
  if (!key) {
    return Status::failure("the certificate file " + path +
                           " holds no private key that opens (PEM with the key and the "
                           "certificate, or PKCS#12 with AZURE_CLIENT_CERTIFICATE_PASSWORD)");
  }
  if (out.certificates.empty() || out.certificates.front().empty()) {
    return Status::failure("the certificate file " + path + " holds no certificate");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> pem(BIO_new(BIO_s_mem()), BIO_free);
  if (!pem ||
      PEM_write_bio_PrivateKey(pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::failure("cannot use the private key of " + path);
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(pem.get(), &data);
  out.keyPem.assign(data, static_cast<size_t>(length));
  return Status::success();
}

// The client assertion a certificate credential sends (RFC 7523, as MSAL builds it): RS256,
// x5t the certificate's SHA-1 thumbprint (x5c its chain when asked), for the token endpoint,
// valid ten minutes.
Status certificateAssertion(const Credential& credential, std::string& assertion) {
  CertificateKey key;
  Status status = loadCertificate(credential, key);
  if (!status.ok) return status;
  unsigned char thumbprint[EVP_MAX_MD_SIZE];
  unsigned int thumbprintLength = 0;
  const std::string& der = key.certificates.front();
  EVP_Digest(der.data(), der.size(), thumbprint, &thumbprintLength, EVP_sha1(), nullptr);
  json header{{"alg", "RS256"},
              {"typ", "JWT"},
              {"x5t", base64UrlEncode(std::string_view(reinterpret_cast<char*>(thumbprint),
                                                       thumbprintLength))}};
  if (credential.sendCertificateChain) {
    json chain = json::array();
    for (const auto& certificate : key.certificates)
      chain.push_back(base64Encode(certificate));
    header["x5c"] = chain;
  }
  unsigned char id[16];
  RAND_bytes(id, sizeof id);
  const long long now = static_cast<long long>(std::time(nullptr));
  json claims{{"aud", credential.tokenUrl},
              {"iss", credential.clientId},
              {"sub", credential.clientId},
              {"jti", hex(std::string_view(reinterpret_cast<char*>(id), sizeof id))},
              {"iat", now},
              {"nbf", now},
              {"exp", now + 600}};
  std::string input = base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
  std::optional<std::string> signature = rs256Sign(key.keyPem, input);
  if (!signature) {
    return Status::failure("cannot sign with the private key of " + credential.certificatePath +
                           " (an RSA key is needed)");
  }
  assertion = input + "." + base64UrlEncode(*signature);
  return Status::success();
}

Status entraToken(const Credential& credential, const std::atomic<bool>* cancel,
                  tokens::Fetched& out) {
  std::vector<std::pair<std::string, std::string>> form{{"grant_type", "client_credentials"},
                                                        {"client_id", credential.clientId},
                                                        {"scope", kStorageScope}};
  if (credential.kind == Kind::ClientSecret) {
    form.emplace_back("client_secret", credential.clientSecret);
  } else if (credential.kind == Kind::ClientCertificate) {
    std::string assertion;
    Status status = certificateAssertion(credential, assertion);
    if (!status.ok) return status;
    form.emplace_back("client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.emplace_back("client_assertion", assertion);
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
    const std::string certificate = env("AZURE_CLIENT_CERTIFICATE_PATH");
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
    if (!certificate.empty()) {
      if (tenant.empty()) {
        return Status::failure(
            "AZURE_CLIENT_CERTIFICATE_PATH is set but AZURE_TENANT_ID is missing");
      }
      credential = entraCredential(Kind::ClientCertificate, clientId, tenant);
      credential.certificatePath = certificate;
      credential.certificatePassword = env("AZURE_CLIENT_CERTIFICATE_PASSWORD");
      credential.sendCertificateChain = envBool("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", false);
      credential.description = "the certificate " + certificate + " of service principal " +
                               clientId + " (tenant " + tenant + ")";
      credential.cacheKey = "azure-certificate|" + credential.tokenUrl + "|" + clientId + "|" +
                            certificate + (credential.sendCertificateChain ? "|chain" : "");
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
                    " has no AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or "
                    "AZURE_FEDERATED_TOKEN_FILE and no managed "
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
