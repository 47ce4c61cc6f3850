#include "puller/storage/upload.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <thread>

#include "puller/storage/azure.h"
#include "puller/storage/gcs.h"
#include "puller/storage/providers.h"
#include "puller/storage/s3.h"
#include "puller/storage/util.h"

namespace storage {
namespace {

// Azure's Put Blob takes at most this much (service version 2019-12-12 and later).
constexpr uint64_t kMaxAzurePutBlob = uint64_t{5000} << 20;
// S3 allows at most this many parts.
constexpr uint64_t kMaxParts = 10000;

// Sends the request `make` builds (again for each attempt: dates and signatures are fresh)
// until it succeeds, fails for good, or the attempts are spent. `last` is the last request
// made, for error messages.
template <typename Make>
HttpResponse perform(const Make& make, const UploadOptions& options, UploadReport& report,
                     HttpRequest& last) {
  for (int attempt = 1;; ++attempt) {
    last = make();
    HttpResponse response = httpFetch(last);
    ++report.requests;
    if (response.ok() || !retryableAnswer(response) || attempt >= options.attempts) {
      return response;
    }
    ++report.retries;
    if (!sleepUnlessCancelled(options.backoff.delay(attempt), options.cancel)) return response;
  }
}

std::string attemptsText(const UploadReport& report) {
  return report.requests > 1 ? " (after " + std::to_string(report.requests) + " attempts)" : "";
}

// ---- S3 ----

class S3Uploader : public Uploader {
 public:
  explicit S3Uploader(std::string bucket) : bucket_(std::move(bucket)) {}

  Status put(const std::string& key, std::string_view data, const std::string& contentType,
             const UploadOptions& options, UploadReport& counts) override {
    // Read for each object, as each download does, so credentials that change are picked up.
    S3Config config = s3ConfigFromEnv();
    if (Status credentials = s3ResolveCredentials(config, options.cancel); !credentials.ok) {
      return Status::failure("cannot upload " + describe(key) + ": " + credentials.message);
    }
    if (data.size() > options.multipartThreshold && options.partSize > 0) {
      return multipart(config, key, data, contentType, options, counts);
    }
    HttpRequest last;
    const std::string hash = sha256Hex(data);
    const HttpResponse response = perform(
        [&] {
          HttpRequest request = s3Request(config, bucket_, "PUT", key, {}, hash,
                                          {{"content-type", contentType}}, options.cancel);
          request.payload = data;
          return request;
        },
        options, counts, last);
    if (response.ok()) return Status::success();
    return Status::failure("cannot upload " + describe(key) + ": " + s3ErrorText(last, response) +
                           attemptsText(counts));
  }

  std::string describe(const std::string& key) const override {
    return "s3://" + bucket_ + "/" + key;
  }

 private:
  Status multipart(const S3Config& config, const std::string& key, std::string_view data,
                   const std::string& contentType, const UploadOptions& options,
                   UploadReport& counts) {
    const std::string what = "cannot upload " + describe(key) + " in parts: ";
    HttpRequest last;
    HttpResponse response = perform(
        [&] {
          return s3Request(config, bucket_, "POST", key, {{"uploads", ""}}, sha256Hex(""),
                           {{"content-type", contentType}}, options.cancel);
        },
        options, counts, last);
    const std::string uploadId = xmlFirst(response.body, "UploadId");
    if (!response.ok() || uploadId.empty()) {
      return Status::failure(
          what + (response.ok() ? "no UploadId in the answer" : s3ErrorText(last, response)) +
          attemptsText(counts));
    }
    const uint64_t partSize =
        std::max<uint64_t>(options.partSize, (data.size() + kMaxParts - 1) / kMaxParts);
    std::string complete = "<CompleteMultipartUpload>";
    Status status = Status::success();
    for (uint64_t offset = 0, number = 1; offset < data.size(); offset += partSize, ++number) {
      const std::string_view part = data.substr(offset, partSize);
      const std::string hash = sha256Hex(part);
      const std::vector<std::pair<std::string, std::string>> query{
          {"partNumber", std::to_string(number)}, {"uploadId", uploadId}};
      response = perform(
          [&] {
            HttpRequest request =
                s3Request(config, bucket_, "PUT", key, query, hash, {}, options.cancel);
            request.payload = part;
            return request;
          },
          options, counts, last);
      if (!response.ok() || response.etag.empty()) {
        status = Status::failure(
            what + "part " + std::to_string(number) + ": " +
            (response.ok() ? "no ETag in the answer" : s3ErrorText(last, response)) +
            attemptsText(counts));
        break;
      }
      ++counts.parts;
      complete += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" +
                  response.etag + "</ETag></Part>";
    }
    if (status.ok) {
      complete += "</CompleteMultipartUpload>";
      const std::string hash = sha256Hex(complete);
      // S3 may answer 200 and report an error in the body; that is retried like a 5xx.
      for (int attempt = 1;; ++attempt) {
        response = perform(
            [&] {
              HttpRequest request =
                  s3Request(config, bucket_, "POST", key, {{"uploadId", uploadId}}, hash,
                            {{"content-type", "application/xml"}}, options.cancel);
              request.payload = complete;
              return request;
            },
            options, counts, last);
        const bool embeddedError = response.ok() && !xmlFirst(response.body, "Code").empty();
        if (response.ok() && !embeddedError) return Status::success();
        if (!embeddedError || attempt >= options.attempts ||
            !sleepUnlessCancelled(options.backoff.delay(attempt), options.cancel)) {
          status = Status::failure(what + "completing: " + s3ErrorText(last, response) +
                                   attemptsText(counts));
          break;
        }
        ++counts.retries;
      }
    }
    // Best effort: the parts of an unfinished upload are stored (and billed) until aborted.
    HttpRequest abort = s3Request(config, bucket_, "DELETE", key, {{"uploadId", uploadId}},
                                  sha256Hex(""), {}, options.cancel);
    abort.timeout = std::chrono::seconds(30);
    httpFetch(abort);
    return status;
  }

  std::string bucket_;
};

// ---- Google Cloud Storage ----

class GcsUploader : public Uploader {
 public:
  explicit GcsUploader(std::string bucket) : bucket_(std::move(bucket)) {}

  Status put(const std::string& key, std::string_view data, const std::string& contentType,
             const UploadOptions& options, UploadReport& counts) override {
    const std::string url = gcs::endpoint() + "/upload/storage/v1/b/" +
                            percentEncode(bucket_, false) +
                            "/o?uploadType=media&name=" + percentEncode(key, false);
    HttpRequest last;
    HttpResponse response;
    // Tokens come from the process's token cache (renewed before they expire); one the server
    // refuses is dropped from it and fetched again, once (it may have been revoked).
    for (int round = 0; round < 2; ++round) {
      std::string token;
      Status status = gcs::accessToken(options.cancel, token, gcs::kReadWriteScope);
      if (!status.ok)
        return Status::failure("cannot upload " + describe(key) + ": " + status.message);
      response = perform(
          [&] {
            HttpRequest request;
            request.method = "POST";
            request.url = url;
            request.cancel = options.cancel;
            applyDefaultTls(request);
            request.headers.push_back("Content-Type: " + contentType);
            if (!token.empty()) request.headers.push_back("Authorization: Bearer " + token);
            request.payload = data;
            return request;
          },
          options, counts, last);
      if (response.status != 401 || token.empty()) break;
      gcs::forgetAccessTokens();
    }
    if (response.ok()) return Status::success();
    std::string message = describeFailure(last, response);
    const auto answer = nlohmann::json::parse(response.body, nullptr, false);
    if (answer.is_object() && answer.contains("error") && answer["error"].is_object() &&
        answer["error"].contains("message") && answer["error"]["message"].is_string()) {
      message += " (" + answer["error"]["message"].get<std::string>() + ")";
    }
    return Status::failure("cannot upload " + describe(key) + ": " + message +
                           attemptsText(counts));
  }

  std::string describe(const std::string& key) const override {
    return "gs://" + bucket_ + "/" + key;
  }

 private:
  std::string bucket_;
};

// ---- Azure Blob ----

enum class AzureAuth { ServicePrincipal, SharedKey, StaticToken };

class AzureUploader : public Uploader {
 public:
  AzureUploader(const UploadTarget& target, std::string endpoint, std::string account,
                AzureAuth auth, std::string secret)
      : container_(target.bucket),
        urlAccount_(target.azureAccount),
        endpoint_(std::move(endpoint)),
        account_(std::move(account)),
        auth_(auth),
        secret_(std::move(secret)) {
    const size_t scheme = endpoint_.find("://");
    const size_t path = endpoint_.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    basePath_ = path == std::string::npos ? "" : endpoint_.substr(path);
  }

  Status put(const std::string& key, std::string_view data, const std::string& contentType,
             const UploadOptions& options, UploadReport& counts) override {
    if (data.size() > kMaxAzurePutBlob) {
      return Status::failure("cannot upload " + describe(key) + ": " + std::to_string(data.size()) +
                                 " bytes is more than Put Blob takes (5000 MiB)",
                             true);
    }
    const std::string path =
        basePath_ + "/" + percentEncode(container_, false) + "/" + percentEncode(key, true);
    HttpRequest last;
    HttpResponse response;
    for (int round = 0; round < 2; ++round) {
      std::string token;
      if (auth_ == AzureAuth::ServicePrincipal) {
        Status status = azure::aadToken(options.cancel, token);
        if (!status.ok) {
          return Status::failure("cannot upload " + describe(key) + ": " + status.message);
        }
      } else if (auth_ == AzureAuth::StaticToken) {
        token = secret_;
      }
      response = perform(
          [&] {
            HttpRequest request;
            request.method = "PUT";
            request.url = endpoint_.substr(0, endpoint_.size() - basePath_.size()) + path;
            request.cancel = options.cancel;
            applyDefaultTls(request);
            const std::map<std::string, std::string> headers{
                {"content-length", std::to_string(data.size())},
                {"content-type", contentType},
                {"x-ms-blob-type", "BlockBlob"},
                {"x-ms-date", azure::httpDateNow()},
                {"x-ms-version", azure::kApiVersion}};
            for (const auto& [name, value] : headers) {
              if (name != "content-length") request.headers.push_back(name + ": " + value);
            }
            if (auth_ == AzureAuth::SharedKey) {
              request.headers.push_back(
                  "Authorization: " +
                  azure::sharedKeyAuthorization(account_, secret_, "PUT", path, {}, headers));
            } else {
              request.headers.push_back("Authorization: Bearer " + token);
            }
            request.payload = data;
            return request;
          },
          options, counts, last);
      if (response.status != 401 || auth_ != AzureAuth::ServicePrincipal) break;
      azure::forgetAadTokens();
    }
    if (response.ok()) return Status::success();
    return Status::failure("cannot upload " + describe(key) + ": " +
                           azure::errorText(last, response) + attemptsText(counts));
  }

  std::string describe(const std::string& key) const override {
    return "abfs://" + container_ + "@" + (urlAccount_.empty() ? account_ : urlAccount_) + "/" +
           key;
  }

 private:
  std::string container_;
  std::string urlAccount_;
  std::string endpoint_;  // scheme://authority[/path], without a trailing '/'
  std::string basePath_;  // the endpoint's path ("/devstoreaccount1" for azurite), "" on Azure
  std::string account_;
  AzureAuth auth_;
  std::string secret_;  // the Shared Key or the static token
};

std::unique_ptr<Uploader> createAzure(const UploadTarget& target, std::string& error) {
  // The account: AZURE_ACCOUNT_NAME, else the first label of the URL's host.
  const std::string urlAccount = target.azureAccount.substr(0, target.azureAccount.find('.'));
  std::string account = env("AZURE_ACCOUNT_NAME");
  if (account.empty()) account = urlAccount;
  std::string endpoint = envFirst({"AZURE_SERVICE_URL", "AZURE_STORAGE_BLOB_ENDPOINT"});
  if (endpoint.empty() && !account.empty()) {
    endpoint = "https://" + account + ".blob.core.windows.net";
  }
  if (endpoint.empty()) {
    error =
        "no Azure Blob endpoint: set AZURE_SERVICE_URL or AZURE_ACCOUNT_NAME, or name the "
        "account in the URL (abfs://container@account/...)";
    return nullptr;
  }
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  if (account.empty()) {
    // From the endpoint: <account>.blob.core.windows.net, or a path-style emulator's first
    // path segment (http://127.0.0.1:10000/devstoreaccount1).
    const size_t scheme = endpoint.find("://");
    const std::string rest = scheme == std::string::npos ? endpoint : endpoint.substr(scheme + 3);
    const size_t slash = rest.find('/');
    const std::string host = rest.substr(0, slash);
    if (host.ends_with(".blob.core.windows.net")) {
      account = host.substr(0, host.find('.'));
    } else if (slash != std::string::npos) {
      account = rest.substr(slash + 1, rest.find('/', slash + 1) - slash - 1);
    }
  }
  AzureAuth auth;
  std::string secret;
  if (!envFirst({"AZURE_CLIENT_ID", "AZ_CLIENT_ID"}).empty()) {
    // A client secret, workload identity or managed identity (azure_credentials.h); the token
    // is fetched at the first upload, so only a missing tenant is known here.
    auth = AzureAuth::ServicePrincipal;
    const bool tenant = !envFirst({"AZURE_TENANT_ID", "AZ_TENANT_ID"}).empty();
    if (!tenant && !envFirst({"AZURE_CLIENT_SECRET", "AZ_CLIENT_SECRET"}).empty()) {
      error = "AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is missing";
      return nullptr;
    }
    if (!tenant && !env("AZURE_FEDERATED_TOKEN_FILE").empty()) {
      error = "AZURE_FEDERATED_TOKEN_FILE is set but AZURE_TENANT_ID is missing";
      return nullptr;
    }
  } else if (!(secret = env("AZURE_STORAGE_ACCESS_KEY")).empty()) {
    auth = AzureAuth::SharedKey;
    if (!base64Decode(secret)) {
      error = "AZURE_STORAGE_ACCESS_KEY is not valid base64";
      return nullptr;
    }
    if (account.empty()) {
      error = "Shared Key needs the account name: set AZURE_ACCOUNT_NAME";
      return nullptr;
    }
  } else if (!(secret = env("AZURE_ACCESS_TOKEN")).empty()) {
    auth = AzureAuth::StaticToken;
  } else {
    error =
        "no Azure credentials: set AZURE_STORAGE_ACCESS_KEY, AZURE_CLIENT_ID with "
        "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or AZURE_ACCESS_TOKEN";
    return nullptr;
  }
  return std::make_unique<AzureUploader>(target, endpoint, account, auth, secret);
}

}  // namespace

Status Uploader::upload(const std::string& key, std::string_view data,
                        const std::string& contentType, const UploadOptions& options,
                        UploadReport* report) {
  UploadReport local;
  UploadReport& counts = report != nullptr ? *report : local;
  counts = {};
  return put(key, data, contentType, options, counts);
}

std::unique_ptr<Uploader> Uploader::create(const UploadTarget& target, std::string& error) {
  if (target.bucket.empty()) {
    error = "no bucket specified";
    return nullptr;
  }
  switch (target.service) {
    case BlobService::S3: {
      // Found now so that a sink without credentials is refused at start, not at its first
      // object; the chain caches what it fetched for the uploads.
      S3Config config = s3ConfigFromEnv();
      if (Status bucket = s3CheckBucket(config, target.bucket); !bucket.ok) {
        error = bucket.message;
        return nullptr;
      }
      if (Status credentials = s3ResolveCredentials(config); !credentials.ok) {
        error = credentials.message;
        return nullptr;
      }
      return std::make_unique<S3Uploader>(target.bucket);
    }
    case BlobService::Gcs:
      return std::make_unique<GcsUploader>(target.bucket);
    case BlobService::Azure:
      return createAzure(target, error);
  }
  error = "unknown blob service";
  return nullptr;
}

}  // namespace storage
