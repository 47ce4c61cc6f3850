// The storage library: downloads a model from a URI into a local folder. Used by the puller
// (into a temporary folder it then renames into place) and by the storage-initializer binary.
//
// Schemes: s3://, gs://, Azure Blob (https://<account>.blob.core.windows.net/...), git
// (git://, http(s)://...repo.git[@ref]), http(s)://, HDFS through WebHDFS (hdfs://,
// webhdfs://, swebhdfs://), hf://owner/model[:revision], pvc://claim/path, file://path and plain
// local paths.
// A prefix keeps its folder structure below the destination; a single object lands inside the
// destination under its base name; a single tar, tar.gz or zip is extracted and removed.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "puller/storage/patterns.h"

namespace storage {

// The outcome of a download. Messages name the (redacted) URI and the cause; they never carry
// credentials, signatures or SAS tokens.
struct Status {
  bool ok = true;
  std::string message;
  bool permanent = false;  // retrying cannot help (malformed or unsupported URI)

  static Status success() { return {}; }
  static Status failure(std::string message, bool permanent = false) {
    return {false, std::move(message), permanent};
  }
};

struct DownloadOptions {
  const std::atomic<bool>* cancel = nullptr;  // set to abort a transfer in progress
  // Which files of a listing are fetched (S3, GCS, Azure Blob, Hugging Face, ModelScope: the path
  // below the prefix; local folders: the top-level names). Not applied to http(s) files, git nor
  // OCI images.
  Patterns patterns;
};

// Downloads `uri` into the folder `destination`, which is created when missing.
Status download(const std::string& uri, const std::string& destination,
                const DownloadOptions& options = {});

// The URI without its query string or user info, safe to log ("?<redacted>" marks a query).
std::string redactUri(std::string_view uri);

}  // namespace storage
