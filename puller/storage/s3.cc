#include "puller/storage/s3.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>

#include "core/util/backoff.h"

#include "puller/storage/aws_credentials.h"
#include "puller/storage/aws_profile.h"
#include "puller/storage/fetch.h"
#include "puller/storage/providers.h"
#include "puller/storage/storage_config.h"
#include "puller/storage/util.h"

namespace storage {
namespace {

constexpr const char* kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Transfer acceleration addresses the bucket as one DNS label of AWS's wildcard certificate, so
// a dotted name (valid for S3 otherwise) cannot use it; S3 refuses such buckets acceleration.
bool acceleratable(const std::string& bucket) {
  if (bucket.size() < 3 || bucket.size() > 63 || bucket.front() == '-' || bucket.back() == '-') {
    return false;
  }
  return std::all_of(bucket.begin(), bucket.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Codes S3 answers when a retry may succeed (botocore's "standard" retry mode).
bool retryableCode(const std::string& code) {
  return code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" ||
         code == "RequestLimitExceeded" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "RequestThrottled";
}

bool retryable(const HttpResponse& response) {
  if (retryableAnswer(response)) return true;
  return response.error.empty() && retryableCode(xmlFirst(response.body, "Code"));
}

class S3Client {
 public:
  S3Client(S3Config config, std::string bucket, const std::atomic<bool>* cancel)
      : config_(std::move(config)), bucket_(std::move(bucket)), cancel_(cancel) {
    int attempts = std::atoi(env("S3_MAX_ATTEMPTS").c_str());
    attempts_ = attempts > 0 ? attempts : 3;
  }

  // A GET of the bucket (a listing, kept in memory), signed with the current credentials and
  // retried with backoff on no answer, 429, 5xx and throttling codes (S3_MAX_ATTEMPTS, 3).
  // `request` is the last request sent (for messages).
  Status list(const std::vector<std::pair<std::string, std::string>>& query, HttpRequest& request,
              HttpResponse& response) {
    const core::Backoff backoff{std::chrono::milliseconds(500), std::chrono::seconds(20)};
    for (int attempt = 1;; ++attempt) {
      S3Config config = currentConfig();
      Status status = s3ResolveCredentials(config, cancel_);
      if (!status.ok) return status;
      request = s3Request(config, bucket_, "GET", "", query, kEmptyHash, {}, cancel_);
      response = httpFetch(request);
      if (!response.ok() && followRegion(config, response)) {
        --attempt;  // a redirect is not a failed attempt
        continue;
      }
      if (response.ok() || !retryable(response) || attempt >= attempts_) break;
      spdlog::warn("storage: s3://{}: {}; retrying ({} of {})", bucket_,
                   s3ErrorText(request, response), attempt + 1, attempts_);
      if (!sleepUnlessCancelled(backoff.delay(attempt), cancel_)) break;
    }
    return Status::success();
  }

  // A GET of an object (of one range of it when `range` is set), signed with the current
  // credentials (the chain's cached ones are refreshed before they expire, so a long download
  // keeps signing) for the bucket's region.
  Status objectRequest(const std::string& key, const ByteRange* range, HttpRequest& request) const {
    S3Config config = currentConfig();
    Status status = s3ResolveCredentials(config, cancel_);
    if (!status.ok) return status;
    std::map<std::string, std::string> headers;
    if (range != nullptr) headers["range"] = range->header();
    request = s3Request(config, bucket_, "GET", key, {}, kEmptyHash, headers, cancel_);
    return Status::success();
  }

  int attempts() const { return attempts_; }

  // The answer's error, naming the bucket and the region it was signed for.
  std::string errorText(const HttpRequest& request, const HttpResponse& response) const {
    std::string text = s3ErrorText(request, response);
    if (response.error.empty()) {
      text += " (bucket " + bucket_ + ", region " + currentConfig().region + ")";
    }
    return text;
  }

 private:
  S3Config currentConfig() const {
    std::lock_guard lock(mutex_);
    return config_;
  }

  // S3 says which region the bucket is in (301 PermanentRedirect, 400 AuthorizationHeaderMalformed,
  // a bare 301 to a HEAD): sign for that region from now on, and for AWS's own endpoint also
  // address it. Once per download: a second redirect is an error.
  bool followRegion(const S3Config& used, const HttpResponse& response) {
    if (response.status != 301 && response.status != 400) return false;
    std::string region = response.bucketRegion;
    if (region.empty()) region = xmlFirst(response.body, "Region");
    if (region.empty() || region == used.region) return false;
    std::lock_guard lock(mutex_);
    if (redirected_) return false;
    redirected_ = true;
    spdlog::warn("storage: bucket {} is in region {}, not {}; following", bucket_, region,
                 used.region);
    config_.region = region;
    if (config_.awsEndpoint && !config_.accelerate) {
      config_.host = region == "us-east-1" ? "s3.amazonaws.com" : "s3." + region + ".amazonaws.com";
    }
    return true;
  }

  mutable std::mutex mutex_;
  S3Config config_;
  std::string bucket_;
  const std::atomic<bool>* cancel_;
  int attempts_ = 3;
  bool redirected_ = false;
};

}  // namespace

std::string s3ErrorText(const HttpRequest& request, const HttpResponse& response) {
  if (!response.error.empty()) return describeFailure(request, response);
  std::string code = xmlFirst(response.body, "Code");
  std::string message = xmlFirst(response.body, "Message");
  std::string text = code.empty() ? "HTTP " + std::to_string(response.status)
                                  : code + (message.empty() ? "" : ": " + message) + " (HTTP " +
                                        std::to_string(response.status) + ")";
  return text;
}

HttpRequest s3Request(const S3Config& config, const std::string& bucket, const std::string& method,
                      const std::string& key,
                      const std::vector<std::pair<std::string, std::string>>& query,
                      const std::string& payloadHash,
                      const std::map<std::string, std::string>& headers,
                      const std::atomic<bool>* cancel) {
  std::string host = config.host;
  std::string path = config.basePath;
  if (config.pathStyle) {
    path += "/" + percentEncode(bucket, false);
    if (!key.empty()) path += "/" + percentEncode(key, true);
  } else {
    host = bucket + "." + host;
    path += "/" + percentEncode(key, true);
  }
  std::string queryText = sigv4::canonicalQuery(query);
  HttpRequest http;
  http.method = method;
  http.url = config.scheme + "://" + host + path + (queryText.empty() ? "" : "?" + queryText);
  http.verifyTls = config.verifyTls;
  http.connectTimeout = config.connectTimeout;
  http.stallTimeout = std::chrono::ceil<std::chrono::seconds>(config.stallTimeout);
  // Like Go, SSL_CERT_FILE stands for the system store; AWS_CA_BUNDLE and the CA bundle
  // ConfigMap are added to it rather than replacing it (private-CA MinIO next to AWS).
  http.caFile = env("SSL_CERT_FILE");
  if (!config.caFile.empty()) http.extraCaFiles.push_back(config.caFile);
  if (std::string bundle = caBundleConfigMapFile(); !bundle.empty()) {
    http.extraCaFiles.push_back(bundle);
  }
  http.cancel = cancel;
  http.headers.push_back("Host: " + host);
  sigv4::Request signing;
  signing.method = method;
  signing.canonicalUri = path;
  signing.query = query;
  signing.payloadHash = payloadHash;
  signing.headers = headers;
  if (!config.anonymous) {
    std::string date = sigv4::amzDateNow();
    signing.headers["x-amz-content-sha256"] = payloadHash;
    signing.headers["x-amz-date"] = date;
    if (!config.credentials.sessionToken.empty()) {
      signing.headers["x-amz-security-token"] = config.credentials.sessionToken;
    }
    signing.headers["host"] = host;
    http.headers.push_back("Authorization: " + sigv4::authorization(signing, config.credentials,
                                                                    config.region, "s3", date));
  }
  for (const auto& [name, value] : signing.headers) {
    if (name != "host") http.headers.push_back(name + ": " + value);
  }
  return http;
}

S3Config s3ConfigFromEnv() {
  StorageSpec spec;
  // An unreadable STORAGE_CONFIG is reported by download(); here it counts as absent.
  if (!storageSpecFromEnv(spec).ok) spec = {};
  auto setting = [&](const char* name) {
    auto it = spec.s3Settings.find(name);
    return it != spec.s3Settings.end() ? it->second : env(name);
  };
  auto settingBool = [&](const char* name, bool fallback) {
    std::string value = toLower(trim(setting(name)));
    if (value == "1" || value == "true" || value == "yes") return true;
    if (value == "0" || value == "false" || value == "no") return false;
    return fallback;
  };
  S3Config config;
  config.region = spec.s3Settings.contains("AWS_DEFAULT_REGION")
                      ? spec.s3Settings["AWS_DEFAULT_REGION"]
                      : aws::configuredRegion();
  if (config.region.empty()) config.region = "us-east-1";
  bool useHttps = envBool("S3_USE_HTTPS", true);
  // STORAGE_CONFIG's endpoint_url stands for AWS_ENDPOINT_URL and wins over every variable.
  std::string endpoint = spec.s3Settings.contains("AWS_ENDPOINT_URL")
                             ? spec.s3Settings["AWS_ENDPOINT_URL"]
                             : env("AWS_ENDPOINT_URL_S3");
  if (endpoint.empty()) endpoint = env("AWS_ENDPOINT_URL");
  if (endpoint.empty()) endpoint = env("S3_ENDPOINT");
  bool custom = !endpoint.empty();
  if (custom) {
    size_t scheme = endpoint.find("://");
    if (scheme != std::string::npos) {
      config.scheme = toLower(endpoint.substr(0, scheme));
      endpoint = endpoint.substr(scheme + 3);
    } else {
      config.scheme = useHttps ? "https" : "http";
    }
    size_t slash = endpoint.find('/');
    config.host = endpoint.substr(0, slash);
    if (slash != std::string::npos) {
      config.basePath = endpoint.substr(slash);
      while (!config.basePath.empty() && config.basePath.back() == '/')
        config.basePath.pop_back();
    }
    config.awsEndpoint = false;
  } else {
    config.host = config.region == "us-east-1" ? "s3.amazonaws.com"
                                               : "s3." + config.region + ".amazonaws.com";
  }
  config.pathStyle = !envBool("S3_USER_VIRTUAL_BUCKET", !custom);
  if (!custom && settingBool("S3_USE_ACCELERATE", false)) {
    config.accelerate = true;
    config.host = "s3-accelerate.amazonaws.com";
    config.pathStyle = false;
  }
  if (spec.s3Settings.contains("AWS_ACCESS_KEY_ID") &&
      spec.s3Settings.contains("AWS_SECRET_ACCESS_KEY")) {
    config.credentials = {spec.s3Settings["AWS_ACCESS_KEY_ID"],
                          spec.s3Settings["AWS_SECRET_ACCESS_KEY"], ""};
    config.credentialsFromStorageConfig = true;
  } else {
    config.credentials.accessKeyId = env("AWS_ACCESS_KEY_ID");
    config.credentials.secretAccessKey = env("AWS_SECRET_ACCESS_KEY");
    config.credentials.sessionToken = env("AWS_SESSION_TOKEN");
  }
  config.anonymous = settingBool("awsAnonymousCredential", false);
  config.verifyTls = settingBool("S3_VERIFY_SSL", true);
  config.caFile = setting("AWS_CA_BUNDLE");
  config.connectTimeout = envSeconds("S3_CONNECT_TIMEOUT", config.connectTimeout, false);
  config.stallTimeout = envSeconds("S3_READ_TIMEOUT", config.stallTimeout, false);
  return config;
}

Status s3CheckBucket(const S3Config& config, const std::string& bucket) {
  if (!config.accelerate || acceleratable(bucket)) return Status::success();
  return Status::failure("bucket " + bucket +
                             " cannot use S3_USE_ACCELERATE: its name must be a host label "
                             "(lower-case letters, digits and '-', no dots)",
                         true);
}

Status s3ResolveCredentials(S3Config& config, const std::atomic<bool>* cancel) {
  if (config.anonymous || config.credentialsFromStorageConfig) return Status::success();
  aws::CredentialResult result = aws::resolveCredentials(cancel);
  if (!result.ok) return Status::failure(result.error);
  config.credentials = std::move(result.credentials);
  return Status::success();
}

Status downloadS3(const std::string& uri, const fs::path& destination,
                  const DownloadOptions& options, Downloaded& out) {
  std::string bucket;
  std::string prefix;
  splitBucket(std::string_view(uri).substr(5), bucket, prefix);
  if (bucket.empty()) return Status::failure("no bucket in the URI", true);
  S3Config config = s3ConfigFromEnv();
  if (Status status = s3CheckBucket(config, bucket); !status.ok) return status;
  if (config.verifyTls) {
    if (Status status = checkCaBundles(config.caFile, "AWS_CA_BUNDLE"); !status.ok) return status;
  }
  S3Client client(std::move(config), bucket, options.cancel);

  std::vector<ListedObject> listing;
  std::string token;
  Status status;
  do {
    std::vector<std::pair<std::string, std::string>> query{{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty()) query.emplace_back("continuation-token", token);
    HttpRequest request;
    HttpResponse response;
    status = client.list(query, request, response);
    if (!status.ok) return status;
    if (!response.ok()) {
      return Status::failure("unable to list objects: " + client.errorText(request, response));
    }
    for (const auto& contents : xmlElements(response.body, "Contents")) {
      listing.push_back({xmlFirst(contents, "Key"),
                         std::strtoull(xmlFirst(contents, "Size").c_str(), nullptr, 10),
                         xmlFirst(contents, "ETag")});
    }
    token = xmlFirst(response.body, "IsTruncated") == "true"
                ? xmlFirst(response.body, "NextContinuationToken")
                : "";
  } while (!token.empty());

  std::vector<SelectedObject> selected;
  status = selectObjects(listing, prefix, options.patterns, selected);
  if (!status.ok) return status;
  if (selected.empty()) return Status::failure("has no objects or does not exist");

  ObjectSource source;
  source.request = [&](const SelectedObject& object, const ByteRange* range, HttpRequest& request) {
    return client.objectRequest(object.key, range, request);
  };
  source.failure = [&](const HttpRequest& request, const HttpResponse& response) {
    return client.errorText(request, response);
  };
  source.retryable = retryable;
  source.attempts = client.attempts();
  // Upstream's files at once: here the GETs in flight, files and parts alike.
  source.connections = concurrencyFromEnv("S3_MAX_FILE_CONCURRENCY", kFileConcurrency);
  status = fetchObjects(selected, destination, source, options.cancel);
  if (!status.ok) return status;
  for (const auto& object : selected)
    out.files.push_back(object.relative);
  return Status::success();
}

}  // namespace storage
