// Google Cloud Storage through its JSON API. Credentials: GOOGLE_APPLICATION_CREDENTIALS naming
// a service-account key (a JWT signed RS256 is exchanged at the key's token_uri) or an
// authorized-user file (refresh token); anonymous otherwise. STORAGE_EMULATOR_HOST points the
// client at another endpoint, as the official client libraries allow.
#include "puller/storage/gcs.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <sstream>

#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"
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
  token.clear();
  std::string path = env("GOOGLE_APPLICATION_CREDENTIALS");
  if (path.empty()) return Status::success();
  std::ifstream in(path);
  if (!in) return Status::failure("cannot read GOOGLE_APPLICATION_CREDENTIALS file " + path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json key = nlohmann::json::parse(text.str(), nullptr, false);
  if (!key.is_object()) {
    return Status::failure("GOOGLE_APPLICATION_CREDENTIALS file " + path + " is not JSON");
  }
  std::string type = key.value("type", "");
  std::string tokenUri = key.value("token_uri", "https://oauth2.googleapis.com/token");
  HttpRequest request;
  request.method = "POST";
  request.url = tokenUri;
  request.cancel = cancel;
  request.timeout = std::chrono::seconds(60);
  request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  applyDefaultTls(request);
  if (type == "service_account") {
    std::string email = key.value("client_email", "");
    std::string pem = key.value("private_key", "");
    long now = static_cast<long>(std::time(nullptr));
    nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
    if (key.contains("private_key_id")) header["kid"] = key["private_key_id"];
    nlohmann::json claims = {
        {"iss", email}, {"scope", scope}, {"aud", tokenUri}, {"iat", now}, {"exp", now + 3600}};
    std::string unsignedJwt = base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
    auto signature = rs256Sign(pem, unsignedJwt);
    if (!signature) {
      return Status::failure("the private_key in GOOGLE_APPLICATION_CREDENTIALS is not usable");
    }
    request.body = formEncode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                               {"assertion", unsignedJwt + "." + base64UrlEncode(*signature)}});
  } else if (type == "authorized_user") {
    request.body = formEncode({{"grant_type", "refresh_token"},
                               {"client_id", key.value("client_id", "")},
                               {"client_secret", key.value("client_secret", "")},
                               {"refresh_token", key.value("refresh_token", "")}});
  } else {
    return Status::failure("unsupported credentials type \"" + type +
                           "\" in GOOGLE_APPLICATION_CREDENTIALS");
  }
  HttpResponse response = httpFetch(request);
  if (!response.ok()) {
    return Status::failure("cannot get a Google access token: " +
                           describeFailure(request, response));
  }
  nlohmann::json answer = nlohmann::json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("access_token") ||
      !answer["access_token"].is_string()) {
    return Status::failure("the Google token endpoint returned no access_token");
  }
  token = answer["access_token"].get<std::string>();
  return Status::success();
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
  std::string token;
  Status status = gcs::accessToken(options.cancel, token);
  if (!status.ok) return status;

  std::string base = gcs::endpoint() + "/storage/v1/b/" + percentEncode(bucket, false) + "/o";
  auto makeRequest = [&](const std::string& url) {
    HttpRequest request;
    request.url = url;
    request.cancel = options.cancel;
    applyDefaultTls(request);
    if (!token.empty()) request.headers.push_back("Authorization: Bearer " + token);
    return request;
  };

  std::vector<ListedObject> listing;
  std::string pageToken;
  do {
    std::string url = base + "?prefix=" + percentEncode(prefix, false);
    if (!pageToken.empty()) url += "&pageToken=" + percentEncode(pageToken, false);
    HttpRequest request = makeRequest(url);
    HttpResponse response = httpFetch(request);
    if (response.status == 404) {
      return Status::failure("unable to download object/s because: storage: bucket doesn't exist");
    }
    if (!response.ok()) {
      return Status::failure("unable to list objects: " + describeFailure(request, response));
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
        listing.push_back({item["name"].get<std::string>(), size});
      }
    }
    pageToken = page.contains("nextPageToken") && page["nextPageToken"].is_string()
                    ? page["nextPageToken"].get<std::string>()
                    : "";
  } while (!pageToken.empty());

  std::vector<SelectedObject> selected;
  status = selectObjects(listing, prefix, selected);
  if (!status.ok) return status;
  if (selected.empty()) return Status::failure(kNotFound);

  status = runParallel(selected.size(), kFileConcurrency, [&](size_t i) {
    fs::path file;
    Status prepared = prepareFile(destination, selected[i].relative, file);
    if (!prepared.ok) return prepared;
    HttpRequest request =
        makeRequest(base + "/" + percentEncode(selected[i].key, false) + "?alt=media");
    HttpResponse response = httpFetchToFile(request, file.string());
    if (!response.ok()) {
      return Status::failure("failed to download " + selected[i].key + ": " +
                             describeFailure(request, response));
    }
    return checkSize(selected[i], response.bytes);
  });
  if (!status.ok) return status;
  for (const auto& object : selected)
    out.files.push_back(object.relative);
  return Status::success();
}

}  // namespace storage
