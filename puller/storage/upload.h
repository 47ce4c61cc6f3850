// Uploads of one object to S3, Google Cloud Storage or Azure Blob, blocking (libcurl easy, as
// the downloads), for the logger's blob sinks. Endpoints and credentials come from the same
// environment and the same auth code as downloads (s3.h, gcs.h, azure.h):
//   - S3: PutObject, or a multipart upload above UploadOptions::multipartThreshold; SigV4 with
//     AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; AWS_ENDPOINT_URL or
//     S3_ENDPOINT (+ S3_USE_HTTPS), AWS_REGION / AWS_DEFAULT_REGION, S3_USER_VIRTUAL_BUCKET,
//     S3_VERIFY_SSL, AWS_CA_BUNDLE; unsigned only with awsAnonymousCredential=true.
//   - GCS: a media upload (uploadType=media) with a read-write token from
//     GOOGLE_APPLICATION_CREDENTIALS, anonymous without it (as upstream's client);
//     STORAGE_EMULATOR_HOST.
//   - Azure: Put Blob (BlockBlob) at AZURE_SERVICE_URL, else AZURE_STORAGE_BLOB_ENDPOINT, else
//     https://<AZURE_ACCOUNT_NAME or the URL's account>.blob.core.windows.net; credentials, first
//     match: a service principal (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET), Shared
//     Key (AZURE_STORAGE_ACCESS_KEY), a bearer token (AZURE_ACCESS_TOKEN, as upstream).
// Failures on the way (no answer, 408, 429, 5xx) are retried with backoff; the error of the last
// attempt is returned. Messages never hold a credential, a signature or a token.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/util/backoff.h"
#include "puller/storage/storage.h"

namespace storage {

enum class BlobService { S3, Gcs, Azure };

struct UploadTarget {
  BlobService service = BlobService::S3;
  std::string bucket;        // the S3 or GCS bucket, the Azure container
  std::string azureAccount;  // abfs://container@<account>/...: "account" or "account.dfs.core..."
};

struct UploadOptions {
  int attempts = 5;       // per request, the first included
  core::Backoff backoff;  // the wait before each retry
  // S3 objects larger than this go up in parts of partSize (S3 wants at least 5 MiB but for the
  // last); a part is sent and retried on its own.
  uint64_t multipartThreshold = uint64_t{64} << 20;
  uint64_t partSize = uint64_t{16} << 20;
  const std::atomic<bool>* cancel = nullptr;  // set to give up (a transfer in progress stops)
};

// What an upload took, for logs and tests.
struct UploadReport {
  int requests = 0;  // HTTP requests made, retries included
  int retries = 0;
  int parts = 0;  // S3 multipart uploads: the number of parts; 0 for single requests
};

class Uploader {
 public:
  // Reads the endpoint and credential configuration from the environment. Fails, naming what is
  // missing, when uploads cannot work (no Azure endpoint or credentials, no AWS keys without
  // awsAnonymousCredential=true, an access key that is not base64).
  static std::unique_ptr<Uploader> create(const UploadTarget& target, std::string& error);
  virtual ~Uploader() = default;

  // Uploads `data` as the object `key` (replacing one of that name). Safe to call from one
  // thread at a time per Uploader.
  Status upload(const std::string& key, std::string_view data, const std::string& contentType,
                const UploadOptions& options, UploadReport* report = nullptr);
  // Where an object goes, for logs: "s3://bucket/key", "gs://bucket/key",
  // "abfs://container@account/key".
  virtual std::string describe(const std::string& key) const = 0;

 protected:
  // The upload itself, counting its requests in `counts` (zeroed).
  virtual Status put(const std::string& key, std::string_view data, const std::string& contentType,
                     const UploadOptions& options, UploadReport& counts) = 0;
};

}  // namespace storage
