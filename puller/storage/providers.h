// Internal interface between the dispatcher (storage.cc) and the per-scheme providers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "puller/storage/http_client.h"
#include "puller/storage/storage.h"

namespace storage {

namespace fs = std::filesystem;

// What a provider leaves in the destination: the relative paths of the files it wrote, and
// whether a single file should be unpacked (the dispatcher decides by name when unset).
struct Downloaded {
  std::vector<fs::path> files;
  bool archiveByContentType = false;
  bool mayUnpack = true;  // false for sources that never unpack (Hugging Face snapshots)
};

// An object in a bucket listing.
struct ListedObject {
  std::string key;
  uint64_t size = 0;
  // What names this content of the object (S3 and Azure ETag, GCS generation), "" when unknown:
  // an interrupted download resumes only into the same content.
  std::string version;
};

// An object to fetch, where it goes relative to the destination, and its size in the listing.
struct SelectedObject {
  std::string key;
  fs::path relative;
  uint64_t size = 0;
  std::string version;  // as in ListedObject
  // Bytes [0, present) are already in the file (an http(s) file's first part): kept, and the
  // rest fetched as ranges.
  uint64_t present = 0;
};

// Chooses what to download from a listing under `prefix`: a key equal to the prefix is a single
// object (saved under its base name); otherwise keys below the prefix at a '/' boundary keep their
// structure. Folder placeholders ("x/", or an object that is also a parent of others) are skipped.
// Slashes right after the prefix are dropped (upstream's lstrip("/")); keys that name the same
// file keep the last listed. Fails when a key would land outside the destination.
// The download's allow/ignore patterns filter the relative paths, except for the single-object
// case (a URI naming one object fetches it whatever the patterns say).
Status selectObjects(const std::vector<ListedObject>& listing, const std::string& prefix,
                     const Patterns& patterns, std::vector<SelectedObject>& selected);

// A retryable failure naming the object and both sizes unless `received` is the listed size. A
// body cut short by a gateway that sends no Content-Length otherwise reads as complete.
Status checkSize(const SelectedObject& object, uint64_t received);

// Splits "bucket/some/prefix" (the part after "s3://" or "gs://").
void splitBucket(std::string_view rest, std::string& bucket, std::string& prefix);

// The CA bundle and TLS verification shared by the generic schemes (SSL_CERT_FILE and
// REQUESTS_CA_BUNDLE, as the Python initializer's requests library reads them).
void applyDefaultTls(HttpRequest& request);

// The headers the `<host>-headers` variable holds for `host` (a JSON object of strings, as
// upstream's https secret form sets it), appended to `headers`; unset adds none. Fails, naming
// the variable, when it is not such an object.
Status hostHeaders(const std::string& host,
                   std::vector<std::pair<std::string, std::string>>& headers);

Status downloadS3(const std::string& uri, const fs::path& destination,
                  const DownloadOptions& options, Downloaded& out);
Status downloadGcs(const std::string& uri, const fs::path& destination,
                   const DownloadOptions& options, Downloaded& out);
Status downloadAzure(const std::string& uri, const fs::path& destination,
                     const DownloadOptions& options, Downloaded& out);
Status downloadHttp(const std::string& uri, const fs::path& destination,
                    const DownloadOptions& options, Downloaded& out);
Status downloadHuggingFace(const std::string& uri, const fs::path& destination,
                           const DownloadOptions& options, Downloaded& out);
Status downloadGit(const std::string& uri, const fs::path& destination,
                   const DownloadOptions& options, Downloaded& out);
Status downloadHdfs(const std::string& uri, const fs::path& destination,
                    const DownloadOptions& options, Downloaded& out);
Status downloadLocal(const std::string& uri, const fs::path& destination,
                     const DownloadOptions& options, Downloaded& out);

Status downloadOci(const std::string& uri, const fs::path& destination,
                   const DownloadOptions& options, Downloaded& out);
Status downloadModelScope(const std::string& uri, const fs::path& destination,
                          const DownloadOptions& options, Downloaded& out);

Status downloadAzureFiles(const std::string& uri, const fs::path& destination,
                          const DownloadOptions& options, Downloaded& out);

// Splits a model hub URI, <scheme>://<owner>/<model>[:<revision>], into "owner/model" and the
// revision (left as given when the URI names none); false when it is not of that form.
bool splitHubRepository(std::string_view uri, std::string& repo, std::string& revision);

bool isAzureBlobUri(std::string_view uri);
// https://<account>.file.core.windows.net/...: an Azure Files share.
bool isAzureFileUri(std::string_view uri);
// oci:// and oci+fetch:// (KServe's webhook spelling).
bool isOciUri(std::string_view uri);

// Creates the parent folders of destination/relative and returns the full path.
Status prepareFile(const fs::path& destination, const fs::path& relative, fs::path& full);

}  // namespace storage
