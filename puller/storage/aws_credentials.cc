#include "puller/storage/aws_credentials.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "puller/storage/aws_profile.h"
#include "puller/storage/http_client.h"
#include "puller/storage/spawn.h"
#include "puller/storage/storage.h"
#include "puller/storage/storage_config.h"
#include "puller/storage/util.h"

namespace storage::aws {
namespace {

using Clock = std::chrono::system_clock;

// What a source answered: credentials and when they stop working (nullopt: never said).
struct Fetched {
  sigv4::Credentials credentials;
  std::optional<Clock::time_point> expiration;
};

// A source either is not configured here (`configured` false, `why` says what is missing),
// answered (`fetched`), or failed (`error`, final for the chain).
struct Attempt {
  bool configured = false;
  std::string why;
  std::optional<Fetched> fetched;
  std::string error;
};

// "2026-12-07T01:02:03Z", optionally with fractional seconds or a "+00:00" offset (all sources
// answer UTC).
std::optional<Clock::time_point> parseIsoTime(const std::string& text) {
  std::tm utc{};
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
                  &utc.tm_hour, &utc.tm_min, &utc.tm_sec) != 6) {
    return std::nullopt;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  std::time_t seconds = timegm(&utc);
  if (seconds == -1) return std::nullopt;
  return Clock::from_time_t(seconds);
}

std::string region() {
  return configuredRegion();
}

bool isTransient(const HttpResponse& response) {
  return !response.error.empty() || response.status == 429 || response.status >= 500;
}

// A few quick attempts for answers worth a retry (no answer, 429, 5xx); the rest is final.
HttpResponse fetchWithRetries(const HttpRequest& request, int attempts,
                              const std::atomic<bool>* cancel) {
  HttpResponse response;
  for (int attempt = 1;; ++attempt) {
    response = httpFetch(request);
    if (!isTransient(response) || response.cancelled || attempt >= attempts) return response;
    if (cancel != nullptr && cancel->load()) return response;
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
}

// ---- environment ----

Attempt fromEnvironment() {
  Attempt attempt;
  std::string id = env("AWS_ACCESS_KEY_ID");
  std::string secret = env("AWS_SECRET_ACCESS_KEY");
  if (id.empty() && secret.empty()) {
    attempt.why = "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set)";
    return attempt;
  }
  attempt.configured = true;
  if (id.empty() || secret.empty()) {
    attempt.error = std::string("AWS credentials in the environment are incomplete: ") +
                    (id.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") + " is not set";
    return attempt;
  }
  attempt.fetched = Fetched{{id, secret, env("AWS_SESSION_TOKEN")}, std::nullopt};
  return attempt;
}

// ---- web identity (IRSA) ----

}  // namespace

std::string stsEndpointFromEnv() {
  std::string endpoint = env("AWS_ENDPOINT_URL_STS");
  if (!endpoint.empty()) return endpoint;
  std::string where = region();
  if (where.empty() || toLower(env("AWS_STS_REGIONAL_ENDPOINTS")) == "legacy") {
    return "https://sts.amazonaws.com";
  }
  return "https://sts." + where + ".amazonaws.com" + (where.starts_with("cn-") ? ".cn" : "");
}

namespace {

// A form POST to STS, trusting what the S3 requests trust; few quick retries, as the SDKs.
HttpRequest stsRequest(const std::string& endpoint, std::string body,
                       const std::atomic<bool>* cancel) {
  HttpRequest request;
  request.method = "POST";
  request.url = endpoint;
  request.headers.push_back("Content-Type: application/x-www-form-urlencoded; charset=utf-8");
  request.body = std::move(body);
  request.caFile = env("SSL_CERT_FILE");
  if (std::string bundle = env("AWS_CA_BUNDLE"); !bundle.empty()) {
    request.extraCaFiles.push_back(bundle);
  }
  if (std::string bundle = caBundleConfigMapFile(); !bundle.empty()) {
    request.extraCaFiles.push_back(bundle);
  }
  request.connectTimeout = std::chrono::seconds(5);
  request.timeout = std::chrono::seconds(30);
  request.cancel = cancel;
  return request;
}

// The credentials of an AssumeRole* answer, or why there are none.
Attempt stsCredentials(const std::string& what, const std::string& action,
                       const HttpResponse& response) {
  Attempt attempt;
  attempt.configured = true;
  if (!response.ok()) {
    std::string code = response.error.empty() ? xmlFirst(response.body, "Code") : "";
    std::string message = xmlFirst(response.body, "Message");
    if (!response.error.empty()) {
      attempt.error = what + "no answer from STS: " + response.error;
    } else if (!code.empty()) {
      attempt.error = what + action + " refused: " + code +
                      (message.empty() ? "" : ": " + message) + " (HTTP " +
                      std::to_string(response.status) + ")";
    } else {
      attempt.error = what + action + " failed: HTTP " + std::to_string(response.status);
    }
    return attempt;
  }
  std::string credentials = xmlFirst(response.body, "Credentials");
  Fetched fetched{{xmlFirst(credentials, "AccessKeyId"), xmlFirst(credentials, "SecretAccessKey"),
                   xmlFirst(credentials, "SessionToken")},
                  parseIsoTime(xmlFirst(credentials, "Expiration"))};
  if (fetched.credentials.accessKeyId.empty() || fetched.credentials.secretAccessKey.empty()) {
    attempt.error = what + "the STS answer holds no credentials";
    return attempt;
  }
  attempt.fetched = std::move(fetched);
  return attempt;
}

std::string defaultSessionName() {
  return "kserve-storage-" + std::to_string(std::time(nullptr));
}

Attempt assumeRoleWithWebIdentity(const std::string& role, const std::string& tokenFile,
                                  std::string sessionName, const std::atomic<bool>* cancel) {
  std::string endpoint = stsEndpointFromEnv();
  std::string what = "AWS web identity (role " + role + ", STS " + redactUri(endpoint) + "): ";
  // Read on every fetch: the kubelet rotates the projected token.
  auto token = readTextFile(tokenFile);
  if (!token) {
    Attempt attempt;
    attempt.configured = true;
    attempt.error = what + "cannot read the token file " + tokenFile;
    return attempt;
  }
  if (sessionName.empty()) sessionName = defaultSessionName();
  HttpRequest request = stsRequest(endpoint,
                                   formEncode({{"Action", "AssumeRoleWithWebIdentity"},
                                               {"Version", "2011-06-15"},
                                               {"RoleArn", role},
                                               {"RoleSessionName", sessionName},
                                               {"WebIdentityToken", trim(*token)}}),
                                   cancel);
  return stsCredentials(what, "AssumeRoleWithWebIdentity", fetchWithRetries(request, 3, cancel));
}

Attempt fromWebIdentity(const std::atomic<bool>* cancel) {
  Attempt attempt;
  std::string role = env("AWS_ROLE_ARN");
  std::string tokenFile = env("AWS_WEB_IDENTITY_TOKEN_FILE");
  std::string sessionName = env("AWS_ROLE_SESSION_NAME");
  if (role.empty() && tokenFile.empty()) {
    // The profile's form of the same (role_arn with web_identity_token_file), as the SDKs read
    // it when the variables are unset.
    Profile profile = loadProfile();
    if (!profile.value("web_identity_token_file").empty()) {
      role = profile.value("role_arn");
      tokenFile = profile.value("web_identity_token_file");
      if (sessionName.empty()) sessionName = profile.value("role_session_name");
    }
  }
  if (role.empty() || tokenFile.empty()) {
    attempt.why = "web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not both set)";
    return attempt;
  }
  return assumeRoleWithWebIdentity(role, tokenFile, sessionName, cancel);
}

// ---- the shared files' profile ----

// A command line as the SDKs split credential_process (shlex: blanks separate, quotes group,
// a backslash escapes the next character outside single quotes).
std::vector<std::string> splitCommand(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool inWord = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
        word += line[++i];
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      inWord = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      inWord = true;
    } else if (c == ' ' || c == '\t') {
      if (inWord) words.push_back(std::move(word));
      word.clear();
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push_back(std::move(word));
  return words;
}

Attempt fromProcess(const std::string& what, const std::string& command,
                    const std::atomic<bool>* cancel) {
  Attempt attempt;
  attempt.configured = true;
  SpawnRequest request;
  request.argv = splitCommand(command);
  request.timeout = std::chrono::minutes(1);
  request.cancel = cancel;
  if (request.argv.empty()) {
    attempt.error = what + "credential_process is empty";
    return attempt;
  }
  SpawnResult result = spawnAndWait(request);
  if (!result.ok()) {
    std::string why = !result.error.empty() ? result.error
                      : result.timedOut     ? "did not finish within a minute"
                                        : "exited with status " + std::to_string(result.exitCode);
    std::string line = result.lastErrorLine();
    attempt.error = what + "credential_process " + request.argv[0] + " " + why +
                    (line.empty() ? "" : ": " + line);
    return attempt;
  }
  nlohmann::json answer = nlohmann::json::parse(result.out, nullptr, false);
  if (!answer.is_object() || answer.value("Version", 0) != 1 || !answer.contains("AccessKeyId") ||
      !answer["AccessKeyId"].is_string() || !answer.contains("SecretAccessKey") ||
      !answer["SecretAccessKey"].is_string()) {
    attempt.error = what + "credential_process " + request.argv[0] +
                    " did not print a JSON object with Version 1, AccessKeyId and "
                    "SecretAccessKey";
    return attempt;
  }
  Fetched fetched{{answer["AccessKeyId"].get<std::string>(),
                   answer["SecretAccessKey"].get<std::string>(), answer.value("SessionToken", "")},
                  std::nullopt};
  if (answer.contains("Expiration") && answer["Expiration"].is_string()) {
    fetched.expiration = parseIsoTime(answer["Expiration"].get<std::string>());
  }
  attempt.fetched = std::move(fetched);
  return attempt;
}

Attempt fromContainer(const std::atomic<bool>* cancel);
Attempt fromInstanceMetadata(const std::atomic<bool>* cancel);

// The region an STS endpoint signs for: its own for sts.<region>.amazonaws.com[.cn], us-east-1
// for the global endpoint, else (AWS_ENDPOINT_URL_STS elsewhere) the configured region.
std::string stsSigningRegion(const std::string& endpoint) {
  size_t scheme = endpoint.find("://");
  std::string host = toLower(endpoint.substr(scheme == std::string::npos ? 0 : scheme + 3));
  host = host.substr(0, host.find_first_of(":/"));
  if (host == "sts.amazonaws.com") return "us-east-1";
  for (std::string_view suffix : {".amazonaws.com", ".amazonaws.com.cn"}) {
    if (host.starts_with("sts.") && host.ends_with(suffix)) {
      std::string middle = host.substr(4, host.size() - 4 - suffix.size());
      if (!middle.empty() && middle.find('.') == std::string::npos) return middle;
    }
  }
  std::string configured = region();
  return configured.empty() ? "us-east-1" : configured;
}

// STS AssumeRole signed (SigV4, service sts) with the source's credentials.
Attempt assumeRole(const std::string& what, const Profile& profile, const Fetched& source,
                   const std::atomic<bool>* cancel) {
  std::string endpoint = stsEndpointFromEnv();
  std::string sessionName = profile.value("role_session_name");
  if (sessionName.empty()) sessionName = defaultSessionName();
  std::vector<std::pair<std::string, std::string>> form{{"Action", "AssumeRole"},
                                                        {"Version", "2011-06-15"},
                                                        {"RoleArn", profile.value("role_arn")},
                                                        {"RoleSessionName", sessionName}};
  if (std::string id = profile.value("external_id"); !id.empty())
    form.emplace_back("ExternalId", id);
  if (std::string seconds = profile.value("duration_seconds"); !seconds.empty()) {
    form.emplace_back("DurationSeconds", seconds);
  }
  HttpRequest request = stsRequest(endpoint, formEncode(form), cancel);
  std::string rest =
      endpoint.substr(endpoint.find("://") == std::string::npos ? 0 : endpoint.find("://") + 3);
  size_t slash = rest.find('/');
  sigv4::Request signing;
  signing.method = "POST";
  signing.canonicalUri = slash == std::string::npos ? "/" : rest.substr(slash);
  signing.payloadHash = sha256Hex(request.body);
  signing.headers["content-type"] = "application/x-www-form-urlencoded; charset=utf-8";
  signing.headers["host"] = rest.substr(0, slash);
  std::string date = sigv4::amzDateNow();
  signing.headers["x-amz-date"] = date;
  request.headers.push_back("X-Amz-Date: " + date);
  if (!source.credentials.sessionToken.empty()) {
    signing.headers["x-amz-security-token"] = source.credentials.sessionToken;
    request.headers.push_back("X-Amz-Security-Token: " + source.credentials.sessionToken);
  }
  request.headers.push_back("Authorization: " + sigv4::authorization(signing, source.credentials,
                                                                     stsSigningRegion(endpoint),
                                                                     "sts", date));
  return stsCredentials(
      what + "role " + profile.value("role_arn") + ", STS " + redactUri(endpoint) + ": ",
      "AssumeRole", fetchWithRetries(request, 3, cancel));
}

Attempt profileKeys(const Profile& profile, const std::string& what) {
  Attempt attempt;
  attempt.configured = true;
  std::string id = profile.value("aws_access_key_id");
  std::string secret = profile.value("aws_secret_access_key");
  if (id.empty() || secret.empty()) {
    attempt.error =
        what + "incomplete keys: " + (id.empty() ? "aws_access_key_id" : "aws_secret_access_key") +
        " is not set";
    return attempt;
  }
  attempt.fetched = Fetched{{id, secret, profile.value("aws_session_token")}, std::nullopt};
  return attempt;
}

// What one profile gives, as botocore resolves it: a role (role_arn with source_profile, whose
// credentials may be a role in turn, or credential_source), else keys, else credential_process.
// `chain` holds the profiles already on the way here, to refuse a loop.
Attempt profileCredentials(const Profile& profile, std::vector<std::string>& chain,
                           const std::atomic<bool>* cancel) {
  Attempt attempt;
  std::string what = "AWS profile \"" + profile.name + "\": ";
  chain.push_back(profile.name);
  std::string role = profile.value("role_arn");
  std::string sourceProfile = profile.value("source_profile");
  std::string credentialSource = profile.value("credential_source");
  if (!role.empty() && !profile.value("web_identity_token_file").empty() && sourceProfile.empty() &&
      credentialSource.empty()) {
    return assumeRoleWithWebIdentity(role, profile.value("web_identity_token_file"),
                                     profile.value("role_session_name"), cancel);
  }
  if (!role.empty()) {
    attempt.configured = true;
    if (sourceProfile.empty() == credentialSource.empty()) {
      attempt.error = what + "role_arn needs exactly one of source_profile and credential_source";
      return attempt;
    }
    if (!profile.value("mfa_serial").empty()) {
      attempt.error = what + "the role asks for an MFA code (mfa_serial), which a pod cannot enter";
      return attempt;
    }
    Attempt source;
    if (sourceProfile == profile.name) {
      // A profile may be its own source: its keys assume its role.
      source = profileKeys(profile, what);
    } else if (!sourceProfile.empty()) {
      if (std::find(chain.begin(), chain.end(), sourceProfile) != chain.end()) {
        std::string loop;
        for (const std::string& name : chain)
          loop += name + " -> ";
        attempt.error = what + "source_profile makes a loop: " + loop + sourceProfile;
        return attempt;
      }
      Profile next = loadProfile(sourceProfile);
      if (!next.found) {
        attempt.error = what + "source_profile \"" + sourceProfile + "\" is not in " +
                        next.credentialsFile + " or " + next.configFile;
        return attempt;
      }
      source = profileCredentials(next, chain, cancel);
      if (!source.configured) {
        attempt.error = what + "source_profile \"" + sourceProfile + "\" holds no credentials";
        return attempt;
      }
    } else if (credentialSource == "Environment") {
      source = fromEnvironment();
    } else if (credentialSource == "Ec2InstanceMetadata") {
      source = fromInstanceMetadata(cancel);
    } else if (credentialSource == "EcsContainer") {
      source = fromContainer(cancel);
    } else {
      attempt.error = what + "credential_source " + credentialSource +
                      " is not one of Environment, Ec2InstanceMetadata, EcsContainer";
      return attempt;
    }
    if (!source.configured) {
      attempt.error =
          what + "credential_source " + credentialSource + " found no credentials: " + source.why;
      return attempt;
    }
    if (!source.fetched) return source;
    return assumeRole(what, profile, *source.fetched, cancel);
  }
  if (!profile.value("aws_access_key_id").empty() ||
      !profile.value("aws_secret_access_key").empty()) {
    return profileKeys(profile, what);
  }
  std::string command = profile.value("credential_process");
  if (!command.empty()) return fromProcess(what, command, cancel);
  if (!profile.value("sso_session").empty() || !profile.value("sso_start_url").empty()) {
    attempt.configured = true;
    attempt.error = what +
                    "SSO profiles are not supported (their token comes from a browser login); "
                    "give the profile keys, a role, web_identity_token_file or credential_process";
    return attempt;
  }
  attempt.why = "shared profile \"" + profile.name + "\" (no keys, role or credential_process)";
  return attempt;
}

Attempt fromProfile(const std::atomic<bool>* cancel) {
  Attempt attempt;
  Profile profile = loadProfile();
  std::string files = profile.credentialsFile + " or " + profile.configFile;
  if (!profile.found) {
    if (profile.named) {
      attempt.configured = true;
      attempt.error = "the AWS profile \"" + profile.name + "\" (AWS_PROFILE) is not in " + files;
    } else {
      attempt.why = "shared files (no [default] profile in " + files + ")";
    }
    return attempt;
  }
  std::vector<std::string> chain;
  return profileCredentials(profile, chain, cancel);
}

// ---- container credentials (EKS Pod Identity, ECS) ----

// Plain http only to the addresses the container agents use, as the SDKs allow.
bool allowedPlainHost(const std::string& url) {
  std::string rest = url.substr(7);
  std::string authority = rest.substr(0, rest.find('/'));
  std::string host;
  if (authority.starts_with("[")) {
    host = authority.substr(1, authority.find(']') - 1);
  } else {
    host = authority.substr(0, authority.find(':'));
  }
  host = toLower(host);
  return host == "localhost" || host.starts_with("127.") || host == "::1" ||
         host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

Fetched fromJson(const nlohmann::json& document, const char* tokenField) {
  auto text = [&](const char* name) {
    auto it = document.find(name);
    return it != document.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  return {{text("AccessKeyId"), text("SecretAccessKey"), text(tokenField)},
          parseIsoTime(text("Expiration"))};
}

Attempt fromContainer(const std::atomic<bool>* cancel) {
  Attempt attempt;
  std::string url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  std::string relative = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (url.empty() && relative.empty()) {
    attempt.why =
        "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI and "
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI are not set)";
    return attempt;
  }
  attempt.configured = true;
  if (!relative.empty()) url = "http://169.254.170.2" + relative;
  std::string what = "AWS container credentials (" + redactUri(url) + "): ";
  if (toLower(url).starts_with("http://")) {
    if (!allowedPlainHost(url)) {
      attempt.error = what +
                      "plain http is only allowed to loopback, 169.254.170.2, 169.254.170.23 and "
                      "fd00:ec2::23";
      return attempt;
    }
  } else if (!toLower(url).starts_with("https://")) {
    attempt.error = what + "not an http(s) URL";
    return attempt;
  }
  HttpRequest request;
  request.url = url;
  std::string tokenFile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  std::string token;
  if (!tokenFile.empty()) {
    // Read on every fetch: the EKS Pod Identity agent's token rotates.
    auto text = readTextFile(tokenFile);
    if (!text) {
      attempt.error = what + "cannot read the token file " + tokenFile;
      return attempt;
    }
    token = trim(*text);
  } else {
    token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    attempt.error = what + "the authorization token holds a line break";
    return attempt;
  }
  if (!token.empty()) request.headers.push_back("Authorization: " + token);
  request.headers.push_back("Accept: application/json");
  request.connectTimeout = std::chrono::seconds(2);
  request.timeout = std::chrono::seconds(5);
  request.cancel = cancel;
  HttpResponse response = fetchWithRetries(request, 3, cancel);
  if (!response.ok()) {
    attempt.error =
        what + (response.error.empty() ? "refused: HTTP " + std::to_string(response.status)
                                       : "no answer: " + response.error);
    return attempt;
  }
  auto document = nlohmann::json::parse(response.body, nullptr, false);
  if (!document.is_object()) {
    attempt.error = what + "the answer is not a JSON object";
    return attempt;
  }
  Fetched fetched = fromJson(document, "Token");
  if (fetched.credentials.accessKeyId.empty() || fetched.credentials.secretAccessKey.empty()) {
    attempt.error = what + "the answer holds no credentials";
    return attempt;
  }
  attempt.fetched = std::move(fetched);
  return attempt;
}

// ---- EC2 instance metadata (IMDSv2, v1 fallback) ----

Attempt fromInstanceMetadata(const std::atomic<bool>* cancel) {
  Attempt attempt;
  if (envBool("AWS_EC2_METADATA_DISABLED", false)) {
    attempt.why = "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)";
    return attempt;
  }
  std::string endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (endpoint.empty()) {
    endpoint = toLower(env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")) == "ipv6"
                   ? "http://[fd00:ec2::254]"
                   : "http://169.254.169.254";
  }
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  // The SDKs give the metadata service 1 s and one attempt so that pods off EC2 do not stall.
  double timeoutSeconds = 1;
  if (std::string text = env("AWS_METADATA_SERVICE_TIMEOUT"); !text.empty()) {
    timeoutSeconds = std::strtod(text.c_str(), nullptr);
    if (timeoutSeconds <= 0) timeoutSeconds = 1;
  }
  int attempts = 1;
  if (std::string text = env("AWS_METADATA_SERVICE_NUM_ATTEMPTS"); !text.empty()) {
    attempts = std::max(1, std::atoi(text.c_str()));
  }
  auto timeout = std::chrono::milliseconds(static_cast<long>(timeoutSeconds * 1000));
  auto base = [&](const std::string& method, const std::string& path) {
    HttpRequest request;
    request.method = method;
    request.url = endpoint + path;
    request.connectTimeout = timeout;
    request.timeout = timeout;
    request.cancel = cancel;
    return request;
  };

  HttpRequest tokenRequest = base("PUT", "/latest/api/token");
  tokenRequest.headers.push_back("X-aws-ec2-metadata-token-ttl-seconds: 21600");
  HttpResponse tokenResponse = fetchWithRetries(tokenRequest, attempts, cancel);
  std::string token;
  if (tokenResponse.ok()) {
    token = trim(tokenResponse.body);
  } else if (!tokenResponse.error.empty() || tokenResponse.status >= 500) {
    // No metadata service (or a pod behind a hop limit of 1): not an EC2 credential source.
    attempt.why = "instance metadata (no answer from " + endpoint + " within " +
                  std::to_string(timeout.count()) + " ms: " +
                  (tokenResponse.error.empty() ? "HTTP " + std::to_string(tokenResponse.status)
                                               : tokenResponse.error) +
                  ")";
    return attempt;
  } else if (envBool("AWS_EC2_METADATA_V1_DISABLED", false) ||
             (tokenResponse.status != 403 && tokenResponse.status != 404 &&
              tokenResponse.status != 405)) {
    attempt.why = "instance metadata (token request refused: HTTP " +
                  std::to_string(tokenResponse.status) + ")";
    return attempt;
  }
  auto get = [&](const std::string& path) {
    HttpRequest request = base("GET", path);
    if (!token.empty()) request.headers.push_back("X-aws-ec2-metadata-token: " + token);
    return fetchWithRetries(request, attempts, cancel);
  };
  const std::string rolesPath = "/latest/meta-data/iam/security-credentials/";
  HttpResponse roles = get(rolesPath);
  if (!roles.ok()) {
    attempt.why = "instance metadata (no instance profile: " +
                  (roles.error.empty() ? "HTTP " + std::to_string(roles.status) : roles.error) +
                  ")";
    return attempt;
  }
  std::string role = trim(roles.body.substr(0, roles.body.find('\n')));
  if (role.empty()) {
    attempt.why = "instance metadata (no instance profile role)";
    return attempt;
  }
  attempt.configured = true;
  std::string what = "AWS instance metadata (role " + role + "): ";
  HttpResponse answer = get(rolesPath + percentEncode(role, false));
  if (!answer.ok()) {
    attempt.error =
        what + (answer.error.empty() ? "HTTP " + std::to_string(answer.status) : answer.error);
    return attempt;
  }
  auto document = nlohmann::json::parse(answer.body, nullptr, false);
  if (!document.is_object()) {
    attempt.error = what + "the answer is not a JSON object";
    return attempt;
  }
  if (auto code = document.find("Code");
      code != document.end() && code->is_string() && *code != "Success") {
    attempt.error = what + "the metadata service answered " + code->get<std::string>();
    return attempt;
  }
  Fetched fetched = fromJson(document, "Token");
  if (fetched.credentials.accessKeyId.empty() || fetched.credentials.secretAccessKey.empty()) {
    attempt.error = what + "the answer holds no credentials";
    return attempt;
  }
  attempt.fetched = std::move(fetched);
  return attempt;
}

// ---- the cache ----

struct Cache {
  std::mutex mutex;
  std::string fingerprint;  // the variables that chose and configured the cached source
  std::optional<Fetched> value;
  std::string source;
  Clock::time_point refreshAt;
};

Cache& cache() {
  static Cache instance;
  return instance;
}

// Everything that decides which source answers and how; a change starts over (tests change the
// environment within one process). Token contents are not part of it: they rotate.
std::string fingerprint() {
  std::string out;
  for (const char* name :
       {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
        "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "AWS_EC2_METADATA_V1_DISABLED", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "HOME"}) {
    out += env(name);
    out.push_back('\n');
  }
  out += sha256Hex(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
  return out;
}

// Fetch again ahead of expiry: 5 minutes before, or half-way through a shorter lifetime, so a
// long download never signs with credentials that are about to lapse.
Clock::time_point refreshTime(const Fetched& fetched) {
  Clock::time_point now = Clock::now();
  if (!fetched.expiration) return now + std::chrono::minutes(30);
  auto lifetime = *fetched.expiration - now;
  auto margin = std::min<Clock::duration>(std::chrono::minutes(5), lifetime / 2);
  return *fetched.expiration - margin;
}

}  // namespace

CredentialResult resolveCredentials(const std::atomic<bool>* cancel) {
  CredentialResult result;
  Attempt environment = fromEnvironment();
  if (environment.configured) {
    result.ok = environment.fetched.has_value();
    if (result.ok) result.credentials = environment.fetched->credentials;
    result.source = "environment";
    result.error = environment.error;
    return result;
  }

  Cache& shared = cache();
  std::lock_guard lock(shared.mutex);
  std::string print = fingerprint();
  if (print != shared.fingerprint) {
    shared.fingerprint = print;
    shared.value.reset();
  }
  Clock::time_point now = Clock::now();
  if (shared.value && now < shared.refreshAt) {
    result.ok = true;
    result.credentials = shared.value->credentials;
    result.source = shared.source;
    return result;
  }

  std::vector<std::string> tried{environment.why};
  using Source = Attempt (*)(const std::atomic<bool>*);
  const std::pair<const char*, Source> sources[] = {{"web identity", fromWebIdentity},
                                                    {"shared profile", fromProfile},
                                                    {"container credentials", fromContainer},
                                                    {"instance metadata", fromInstanceMetadata}};
  for (const auto& [name, fetch] : sources) {
    Attempt attempt = fetch(cancel);
    if (!attempt.configured) {
      tried.push_back(attempt.why);
      continue;
    }
    result.source = name;
    if (!attempt.fetched) {
      // Credentials fetched earlier and not yet expired still sign; the next call tries again.
      if (shared.value && shared.source == name &&
          (!shared.value->expiration || now < *shared.value->expiration)) {
        spdlog::warn("storage: refreshing AWS credentials failed, using the current ones: {}",
                     attempt.error);
        result.ok = true;
        result.credentials = shared.value->credentials;
        return result;
      }
      shared.value.reset();
      result.error = attempt.error;
      return result;
    }
    shared.refreshAt = refreshTime(*attempt.fetched);
    shared.source = name;
    if (!shared.value) spdlog::info("storage: AWS credentials from {}", name);
    shared.value = std::move(attempt.fetched);
    result.ok = true;
    result.credentials = shared.value->credentials;
    return result;
  }
  shared.value.reset();
  result.error = "no AWS credentials found; tried: ";
  for (size_t i = 0; i < tried.size(); ++i) {
    result.error += (i == 0 ? "" : ", ") + tried[i];
  }
  result.error += ". Set awsAnonymousCredential=true for unsigned requests";
  return result;
}

void clearCredentialCache() {
  Cache& shared = cache();
  std::lock_guard lock(shared.mutex);
  shared.fingerprint.clear();
  shared.value.reset();
}

}  // namespace storage::aws
