// Google Cloud Storage through its JSON API, with the credential chain of gcp_credentials.h.
// STORAGE_EMULATOR_HOST points the client at another endpoint, as the official client libraries
// allow.
#include "puller/storage/gcs.h"

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "puller/storage/fetch.h"
#include "puller/storage/gcp_credentials.h"
#include "puller/storage/providers.h"
#include "puller/storage/token_cache.h"
#include "puller/storage/util.h"

namespace storage {
namespace gcs {

std::string endpoint() {
  std::string host = env("STORAGE_EMULATOR_HOST");
  if (host.empty()) return "https://storage.googleapis.com";
  while (!host.empty() && host.back() == '/')
    host.pop_back();
  return host.find("://") == std::string::npos ? "http://" + host : host;
}

Status accessToken(const std::atomic<bool>* cancel, std::string& token, const char* scope) {
  gcp::Credential credential;
  Status status = gcp::findCredential(cancel, scope, credential);
  if (!status.ok) return status;
  return gcp::accessToken(credential, cancel, scope, token);
}

void forgetAccessTokens() {
  tokens::invalidatePrefix("gcp-");
}

}  // namespace gcs

namespace {

constexpr const char* kNotFound =
    "unable to download object/s because: storage: object doesn't exist";

}  // namespace

Status downloadGcs(const std::string& uri, const fs::path& destination,
                   const DownloadOptions& options, Downloaded& out) {
  std::string bucket;
  std::string prefix;
  splitBucket(std::string_view(uri).substr(5), bucket, prefix);
  if (bucket.empty()) return Status::failure("no bucket in the URI", true);
  gcp::Credential credential;
  Status status = gcp::findCredential(options.cancel, gcs::kReadOnlyScope, credential);
  if (!status.ok) return status;
  spdlog::info("gs://{}: using {}", bucket, credential.description);

  std::string base = gcs::endpoint() + "/storage/v1/b/" + percentEncode(bucket, false) + "/o";
  // The token is taken from the cache for each request, so one that expires during a long
  // download is replaced before it is refused.
  auto makeRequest = [&](const std::string& url, HttpRequest& request) {
    std::string token;
    Status got = gcp::accessToken(credential, options.cancel, gcs::kReadOnlyScope, token);
    if (!got.ok) return got;
    request.url = url;
    request.cancel = options.cancel;
    applyDefaultTls(request);
    if (!token.empty()) request.headers.push_back("Authorization: Bearer " + token);
    return Status::success();
  };
  // 401 and 403 name the credential the request carried, or why it carried none.
  auto failure = [&](const HttpRequest& request, const HttpResponse& response) {
    std::string text = describeFailure(request, response);
    const auto answer = nlohmann::json::parse(response.body, nullptr, false);
    if (answer.is_object() && answer.contains("error") && answer["error"].is_object() &&
        answer["error"].contains("message") && answer["error"]["message"].is_string()) {
      text += " (" + answer["error"]["message"].get<std::string>() + ")";
    }
    if (response.status == 401 || response.status == 403) {
      if (response.status == 401) gcp::forgetToken(credential, gcs::kReadOnlyScope);
      text += "; " + gcp::refusalHint(credential);
    }
    return text;
  };

  std::vector<ListedObject> listing;
  std::string pageToken;
  do {
    std::string url = base + "?prefix=" + percentEncode(prefix, false);
    if (!pageToken.empty()) url += "&pageToken=" + percentEncode(pageToken, false);
    HttpRequest request;
    status = makeRequest(url, request);
    if (!status.ok) return status;
    HttpResponse response = httpFetch(request);
    if (response.status == 404) {
      return Status::failure("unable to download object/s because: storage: bucket doesn't exist");
    }
    if (!response.ok()) {
      return Status::failure("unable to list objects: " + failure(request, response));
    }
    nlohmann::json page = nlohmann::json::parse(response.body, nullptr, false);
    if (!page.is_object()) return Status::failure("unable to list objects: invalid JSON answer");
    if (page.contains("items") && page["items"].is_array()) {
      for (const auto& item : page["items"]) {
        if (!item.is_object() || !item.contains("name") || !item["name"].is_string()) continue;
        uint64_t size = 0;
        if (item.contains("size") && item["size"].is_string()) {
          size = std::strtoull(item["size"].get<std::string>().c_str(), nullptr, 10);
        }
        std::string generation;
        if (item.contains("generation") && item["generation"].is_string()) {
          generation = item["generation"].get<std::string>();
        }
        listing.push_back({item["name"].get<std::string>(), size, generation});
      }
    }
    pageToken = page.contains("nextPageToken") && page["nextPageToken"].is_string()
                    ? page["nextPageToken"].get<std::string>()
                    : "";
  } while (!pageToken.empty());

  std::vector<SelectedObject> selected;
  status = selectObjects(listing, prefix, options.patterns, selected);
  if (!status.ok) return status;
  if (selected.empty()) return Status::failure(kNotFound);

  ObjectSource source;
  source.request = [&](const SelectedObject& object, const ByteRange* range, HttpRequest& request) {
    Status made =
        makeRequest(base + "/" + percentEncode(object.key, false) + "?alt=media", request);
    if (made.ok && range != nullptr) request.headers.push_back("Range: " + range->header());
    return made;
  };
  source.failure = failure;
  status = fetchObjects(selected, destination, source, options.cancel);
  if (!status.ok) return status;
  for (const auto& object : selected)
    out.files.push_back(object.relative);
  return Status::success();
}

}  // namespace storage
