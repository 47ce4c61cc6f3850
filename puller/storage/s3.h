// S3 (and S3-compatible stores) configured from the environment of the KServe initializers.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "puller/storage/http_client.h"
#include "puller/storage/sigv4.h"
#include "puller/storage/storage.h"

namespace storage {

struct S3Config {
  std::string scheme = "https";
  std::string host;      // endpoint authority, host[:port]
  std::string basePath;  // path of a custom endpoint URL, usually ""
  bool pathStyle = false;
  std::string region = "us-east-1";
  bool awsEndpoint = true;  // the host is AWS's own (no custom endpoint)
  bool accelerate = false;  // AWS's transfer acceleration endpoint, always virtual-hosted
  bool anonymous = false;
  sigv4::Credentials credentials;
  // Keys given by STORAGE_CONFIG: used as they are, the credential chain is not asked.
  bool credentialsFromStorageConfig = false;
  bool verifyTls = true;
  std::string caFile;
  // S3_CONNECT_TIMEOUT (15 s, as botocore); S3_READ_TIMEOUT, how long a transfer may stall
  // (ours: 60 s unless set; botocore's 30 s read timeout is per socket read).
  std::chrono::milliseconds connectTimeout{std::chrono::seconds(15)};
  std::chrono::milliseconds stallTimeout{std::chrono::seconds(60)};
};

// Endpoint: AWS_ENDPOINT_URL_S3 (the service-specific variable of the AWS SDKs), else
// AWS_ENDPOINT_URL, else S3_ENDPOINT with S3_USE_HTTPS (default 1), else AWS for the region
// (AWS_REGION, AWS_DEFAULT_REGION, default us-east-1), or <bucket>.s3-accelerate.amazonaws.com
// with S3_USE_ACCELERATE=true (a custom endpoint wins over it, as in the SDKs). Path style for
// custom endpoints (as boto3), virtual-hosted for AWS; S3_USER_VIRTUAL_BUCKET=true/false forces
// either, except that acceleration is virtual-hosted only. Keys from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; unsigned requests only when
// awsAnonymousCredential=true. S3_VERIFY_SSL=0/false disables verification; AWS_CA_BUNDLE names
// a CA file. The s3 keys of STORAGE_CONFIG / STORAGE_OVERRIDE_CONFIG (storage_config.h) win over
// the variables they stand for.
S3Config s3ConfigFromEnv();

// Fails (permanently) when the configuration cannot address the bucket: acceleration needs a
// name that is one DNS label.
Status s3CheckBucket(const S3Config& config, const std::string& bucket);

// Fills `config.credentials` from the AWS credential chain (aws_credentials.h) unless the
// configuration is anonymous; fails with the chain's message (what was tried, or why the source
// refused). Cheap while the cached credentials are fresh, so it runs before each request.
Status s3ResolveCredentials(S3Config& config, const std::atomic<bool>* cancel = nullptr);

// "<Code>: <Message> (HTTP <status>)" from an S3 error answer, or the transport failure.
std::string s3ErrorText(const HttpRequest& request, const HttpResponse& response);

// A request for the bucket (empty key) or an object, SigV4-signed with the configuration's
// credentials (unsigned when anonymous). `payloadHash` is the hex SHA-256 of the body;
// `headers` (lower-case names) are sent and signed too.
HttpRequest s3Request(const S3Config& config, const std::string& bucket, const std::string& method,
                      const std::string& key,
                      const std::vector<std::pair<std::string, std::string>>& query,
                      const std::string& payloadHash,
                      const std::map<std::string, std::string>& headers = {},
                      const std::atomic<bool>* cancel = nullptr);

}  // namespace storage
