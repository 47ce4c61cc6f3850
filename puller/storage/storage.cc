#include "puller/storage/storage.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "puller/storage/archive.h"
#include "puller/storage/git.h"
#include "puller/storage/progress.h"
#include "puller/storage/providers.h"
#include "puller/storage/storage_config.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

// Gives the download's progress its total from the listing (the sizes of what will be fetched).
Status planListedBytes(const std::vector<SelectedObject>& selected) {
  if (ProgressTracker* progress = currentProgress()) {
    uint64_t total = 0;
    for (const auto& object : selected)
      total += object.size;
    progress->planBytes(total);
  }
  return Status::success();
}

}  // namespace

std::string redactUri(std::string_view uri) {
  std::string out(uri);
  size_t query = out.find_first_of("?#");
  if (query != std::string::npos) {
    out = out.substr(0, query) + (out[query] == '?' ? "?<redacted>" : "");
  }
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t authorityEnd = out.find('/', scheme + 3);
    size_t at = out.rfind('@', authorityEnd == std::string::npos ? out.size() : authorityEnd);
    if (at != std::string::npos && at > scheme) out.erase(scheme + 3, at - scheme - 2);
  }
  return out;
}

void splitBucket(std::string_view rest, std::string& bucket, std::string& prefix) {
  size_t slash = rest.find('/');
  bucket = std::string(rest.substr(0, slash));
  prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
}

Status selectObjects(const std::vector<ListedObject>& listing, const std::string& prefix,
                     const Patterns& patterns, std::vector<SelectedObject>& selected) {
  selected.clear();
  if (!prefix.empty() && prefix.back() != '/') {
    for (const auto& object : listing) {
      if (object.key == prefix) {
        std::string base = prefix.substr(prefix.rfind('/') + 1);
        selected.push_back({object.key, base, object.size, object.version});
        return planListedBytes(selected);
      }
    }
  }
  std::set<std::string> parents;
  std::vector<SelectedObject> candidates;
  std::map<std::string, size_t> positions;  // relative path -> index in candidates
  for (const auto& object : listing) {
    const std::string& key = object.key;
    if (key.empty() || key.back() == '/') continue;
    std::string relative;
    if (prefix.empty() || prefix.back() == '/') {
      if (!key.starts_with(prefix)) continue;
      relative = key.substr(prefix.size());
    } else {
      // "models/m1" selects "models/m1/..." but not "models/m10/...".
      if (!key.starts_with(prefix + "/")) continue;
      relative = key.substr(prefix.size() + 1);
    }
    // An empty segment right after the prefix ("models/m1//weights.bin") is dropped, as upstream's
    // lstrip("/") does; otherwise the rest would read as an absolute path.
    relative.erase(0, relative.find_first_not_of('/'));
    auto safe = safeRelativePath(relative);
    if (!safe) {
      return Status::failure("object \"" + key + "\" would be written outside the destination");
    }
    for (fs::path parent = safe->parent_path(); !parent.empty(); parent = parent.parent_path()) {
      parents.insert(parent.generic_string());
    }
    // Keys that differ only in empty or "." segments name the same file: the last listed wins,
    // as with upstream's one-by-one download, rather than two transfers writing one file at once.
    auto [position, added] = positions.emplace(safe->generic_string(), candidates.size());
    if (added) {
      candidates.push_back({key, *safe, object.size, object.version});
    } else {
      candidates[position->second] = {key, *safe, object.size, object.version};
    }
  }
  for (auto& candidate : candidates) {
    std::string relative = candidate.relative.generic_string();
    if (!patterns.keeps(relative)) continue;
    if (!parents.contains(relative)) {
      selected.push_back(std::move(candidate));
    }
  }
  return planListedBytes(selected);
}

Status checkSize(const SelectedObject& object, uint64_t received) {
  if (received == object.size) return Status::success();
  return Status::failure("object \"" + object.key + "\" is " + std::to_string(object.size) +
                         " bytes in the listing but " + std::to_string(received) +
                         " bytes were received");
}

void applyDefaultTls(HttpRequest& request) {
  request.caFile = envFirst({"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"});
  if (std::string bundle = caBundleConfigMapFile(); !bundle.empty()) {
    request.extraCaFiles.push_back(bundle);
  }
}

Status hostHeaders(const std::string& host,
                   std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string variable = host + "-headers";
  const std::string text = env(variable.c_str());
  if (text.empty()) return Status::success();
  const Status malformed =
      Status::failure("environment variable " + variable + " is not a JSON object of strings");
  nlohmann::json object = nlohmann::json::parse(text, nullptr, false);
  if (!object.is_object()) return malformed;
  for (const auto& [name, value] : object.items()) {
    if (!value.is_string()) return malformed;
    headers.emplace_back(name, value.get<std::string>());
  }
  return Status::success();
}

Status prepareFile(const fs::path& destination, const fs::path& relative, fs::path& full) {
  full = destination / relative;
  std::error_code ec;
  fs::create_directories(full.parent_path(), ec);
  if (ec)
    return Status::failure("cannot create " + full.parent_path().string() + ": " + ec.message());
  if (fs::is_directory(full, ec)) {
    return Status::failure("cannot write " + full.string() + ": a folder has that name");
  }
  return Status::success();
}

bool splitHubRepository(std::string_view uri, std::string& repo, std::string& revision) {
  size_t scheme = uri.find("://");
  if (scheme == std::string_view::npos) return false;
  std::string_view rest = uri.substr(scheme + 3);
  size_t colon = rest.find(':');
  if (colon != std::string_view::npos) {
    revision = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size() ||
      rest.find('/', slash + 1) != std::string_view::npos || revision.empty()) {
    return false;
  }
  repo = std::string(rest);
  return true;
}

bool isAzureBlobUri(std::string_view uri) {
  if (!uri.starts_with("https://")) return false;
  std::string_view rest = uri.substr(8);
  std::string_view host = rest.substr(0, rest.find_first_of("/?"));
  return host.ends_with(".blob.core.windows.net") || host.ends_with(".blob.storage.azure.net");
}

Status download(const std::string& givenUri, const std::string& destinationText,
                const DownloadOptions& options) {
  if (givenUri.empty()) return Status::failure("there is no storageUri supplied", true);
  StorageSpec spec;
  std::string uri;
  if (Status status = storageSpecFromEnv(spec); !status.ok) {
    return Status::failure(redactUri(givenUri) + ": " + status.message, true);
  }
  if (Status status = rewritePlaceholderUri(givenUri, spec, uri); !status.ok) {
    return Status::failure(redactUri(givenUri) + ": " + status.message, true);
  }
  std::string safeUri = redactUri(uri);
  if (Status status = checkCaBundles(); !status.ok) {
    return Status::failure(safeUri + ": " + status.message, true);
  }
  fs::path destination = destinationText;
  std::error_code ec;
  fs::create_directories(destination, ec);
  if (ec) {
    return Status::failure("cannot create " + destination.string() + ": " + ec.message());
  }

  Downloaded downloaded;
  Status status;
  // Progress lines for long downloads; the tracker lives as long as the download, the reporter
  // stops (and with it every line) before download() returns.
  std::chrono::milliseconds interval = progressInterval();
  std::optional<ProgressTracker> tracker;
  if (interval.count() > 0) tracker.emplace(destination.string());
  ScopedProgress progressScope(tracker ? &*tracker : nullptr);
  std::optional<ProgressReporter> reporter;
  if (tracker) reporter.emplace(*tracker, safeUri, interval);
  if (uri.starts_with("s3://")) {
    status = downloadS3(uri, destination, options, downloaded);
  } else if (uri.starts_with("gs://")) {
    status = downloadGcs(uri, destination, options, downloaded);
  } else if (isAzureBlobUri(uri)) {
    status = downloadAzure(uri, destination, options, downloaded);
  } else if (isAzureFileUri(uri)) {
    status = downloadAzureFiles(uri, destination, options, downloaded);
  } else if (git::isGitUri(uri)) {
    // Before http(s): fetched as a web page, a repository would save its HTML as the model.
    status = downloadGit(uri, destination, options, downloaded);
  } else if (uri.starts_with("http://") || uri.starts_with("https://")) {
    status = downloadHttp(uri, destination, options, downloaded);
  } else if (uri.starts_with("hdfs://") || uri.starts_with("webhdfs://") ||
             uri.starts_with("swebhdfs://")) {
    status = downloadHdfs(uri, destination, options, downloaded);
  } else if (uri.starts_with("hf://")) {
    status = downloadHuggingFace(uri, destination, options, downloaded);
  } else if (uri.starts_with("modelscope://")) {
    status = downloadModelScope(uri, destination, options, downloaded);
  } else if (isOciUri(uri)) {
    status = downloadOci(uri, destination, options, downloaded);
  } else if (uri.starts_with("pvc://") || uri.starts_with("file://") || uri.starts_with("/") ||
             uri.find("://") == std::string::npos) {
    status = downloadLocal(uri, destination, options, downloaded);
  } else {
    return Status::failure(safeUri + ": protocol not supported", true);
  }
  // Unpacking an archive is not download progress.
  if (reporter) reporter->stop();
  if (!status.ok) return Status::failure(safeUri + ": " + status.message, status.permanent);

  if (downloaded.files.size() == 1 && downloaded.mayUnpack &&
      (downloaded.archiveByContentType || isArchiveName(downloaded.files.front().string()))) {
    status = extractArchive(destination / downloaded.files.front(), destination);
    if (!status.ok) {
      fs::remove(destination / downloaded.files.front(), ec);
      return Status::failure(safeUri + ": " + status.message);
    }
  }
  spdlog::debug("storage: downloaded {} ({} files) into {}", safeUri, downloaded.files.size(),
                destination.string());
  return Status::success();
}

}  // namespace storage
