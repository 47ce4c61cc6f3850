// Azure Blob downloads, with the credential chain of azure_credentials.h.
// AZURE_STORAGE_BLOB_ENDPOINT replaces https://<account>.blob.core.windows.net, e.g.
// http://127.0.0.1:10000/devstoreaccount1 for azurite.
#include "puller/storage/azure.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "puller/storage/azure_credentials.h"
#include "puller/storage/fetch.h"
#include "puller/storage/providers.h"
#include "puller/storage/token_cache.h"
#include "puller/storage/util.h"

namespace storage {
namespace azure {

std::string sharedKeyAuthorization(const std::string& account, const std::string& base64Key,
                                   const std::string& method, const std::string& path,
                                   const std::vector<std::pair<std::string, std::string>>& query,
                                   const std::map<std::string, std::string>& headers) {
  auto key = base64Decode(base64Key);
  if (!key) return "";
  auto header = [&](const char* name) {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  };
  std::string contentLength = header("content-length");
  if (contentLength == "0") contentLength.clear();
  std::string text = method + "\n" + header("content-encoding") + "\n" +
                     header("content-language") + "\n" + contentLength + "\n" +
                     header("content-md5") + "\n" + header("content-type") + "\n" + header("date") +
                     "\n" + header("if-modified-since") + "\n" + header("if-match") + "\n" +
                     header("if-none-match") + "\n" + header("if-unmodified-since") + "\n" +
                     header("range") + "\n";
  for (const auto& [name, value] : headers) {
    if (name.starts_with("x-ms-")) text += name + ":" + trim(value) + "\n";
  }
  text += "/" + account + path;
  std::map<std::string, std::vector<std::string>> params;
  for (const auto& [name, value] : query)
    params[toLower(name)].push_back(value);
  for (auto& [name, values] : params) {
    std::sort(values.begin(), values.end());
    text += "\n" + name + ":";
    for (size_t i = 0; i < values.size(); ++i)
      text += (i > 0 ? "," : "") + values[i];
  }
  return "SharedKey " + account + ":" + base64Encode(hmacSha256(*key, text));
}

Status aadToken(const std::atomic<bool>* cancel, std::string& token) {
  Credential credential;
  Status status = findCredential(false, cancel, credential);
  if (!status.ok) return status;
  if (credential.cacheKey.empty()) {
    return Status::failure("no Azure AD identity: " + credential.description);
  }
  return bearerToken(credential, cancel, token);
}

void forgetAadTokens() {
  tokens::invalidatePrefix("azure-");
}

std::string errorText(const HttpRequest& request, const HttpResponse& response) {
  if (!response.error.empty()) return describeFailure(request, response);
  std::string code = xmlFirst(response.body, "Code");
  std::string text = "HTTP " + std::to_string(response.status);
  if (!code.empty()) text = code + " (" + text + ")";
  if (response.status == 403) text += "; check the account key, SAS token or AAD credentials";
  return text;
}

std::string httpDateNow() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return buffer;
}

}  // namespace azure

namespace {

struct AzureTarget {
  std::string account;
  std::string container;
  std::string prefix;
  std::string sas;   // query string without '?', "" when none
  std::string base;  // scheme://authority[/path] that precedes /<container>
  std::string basePath;
};

Status parseAzureUri(const std::string& uri, AzureTarget& target) {
  std::string rest = uri.substr(8);
  size_t question = rest.find('?');
  if (question != std::string::npos) {
    target.sas = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  size_t slash = rest.find('/');
  std::string host = rest.substr(0, slash);
  target.account = host.substr(0, host.find('.'));
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);
  size_t containerEnd = path.find('/');
  target.container = path.substr(0, containerEnd);
  target.prefix = containerEnd == std::string::npos ? "" : path.substr(containerEnd + 1);
  if (target.account.empty() || target.container.empty()) {
    return Status::failure("expected https://<account>.blob.core.windows.net/<container>/<path>",
                           true);
  }
  std::string endpoint = env("AZURE_STORAGE_BLOB_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://" + host;
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  target.base = endpoint;
  size_t scheme = endpoint.find("://");
  size_t pathStart = endpoint.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  target.basePath = pathStart == std::string::npos ? "" : endpoint.substr(pathStart);
  return Status::success();
}

std::vector<std::pair<std::string, std::string>> parseQuery(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t amp = text.find('&', start);
    if (amp == std::string::npos) amp = text.size();
    std::string part = text.substr(start, amp - start);
    size_t eq = part.find('=');
    out.emplace_back(part.substr(0, eq), eq == std::string::npos ? "" : part.substr(eq + 1));
    start = amp + 1;
  }
  return out;
}

class AzureClient {
 public:
  AzureClient(AzureTarget target, azure::Credential credential, const std::atomic<bool>* cancel)
      : target_(std::move(target)), credential_(std::move(credential)), cancel_(cancel) {}

  // The request for a blob (or the container listing when `blob` is empty). A bearer token is
  // taken from the cache for each request, so one that expires during a long download is
  // replaced before it is refused.
  // `range` (a blob's part) goes in x-ms-range, which Shared Key signs with the other x-ms-
  // headers.
  Status request(const std::string& blob, std::vector<std::pair<std::string, std::string>> query,
                 HttpRequest& http, const ByteRange* range = nullptr) const {
    std::string path = target_.basePath + "/" + percentEncode(target_.container, false);
    if (!blob.empty()) path += "/" + percentEncode(blob, true);
    std::string queryText = formEncode(query);
    if (!target_.sas.empty()) {
      queryText += (queryText.empty() ? "" : "&") + target_.sas;
      auto sasParams = parseQuery(target_.sas);
      query.insert(query.end(), sasParams.begin(), sasParams.end());
    }
    http.url = target_.base.substr(0, target_.base.size() - target_.basePath.size()) + path +
               (queryText.empty() ? "" : "?" + queryText);
    http.cancel = cancel_;
    applyDefaultTls(http);
    std::map<std::string, std::string> headers{{"x-ms-date", azure::httpDateNow()},
                                               {"x-ms-version", azure::kApiVersion}};
    if (range != nullptr) headers.emplace("x-ms-range", range->header());
    for (const auto& [name, value] : headers)
      http.headers.push_back(name + ": " + value);
    if (credential_.kind == azure::Kind::SharedKey) {
      http.headers.push_back("Authorization: " +
                             azure::sharedKeyAuthorization(target_.account, credential_.accountKey,
                                                           "GET", path, query, headers));
    } else if (!credential_.cacheKey.empty()) {
      std::string token;
      Status status = azure::bearerToken(credential_, cancel_, token);
      if (!status.ok) return status;
      http.headers.push_back("Authorization: Bearer " + token);
    }
    return Status::success();
  }

  // errorText, plus on a refusal which credential was used (or why none was).
  std::string failure(const HttpRequest& request, const HttpResponse& response) const {
    std::string text = azure::errorText(request, response);
    const bool refused = response.status == 401 || response.status == 403 ||
                         (response.status == 404 && credential_.kind == azure::Kind::Anonymous);
    if (!refused) return text;
    if (response.status == 401) azure::forgetToken(credential_);
    return text + "; " + azure::refusalHint(credential_);
  }

 private:
  AzureTarget target_;
  azure::Credential credential_;
  const std::atomic<bool>* cancel_;
};

}  // namespace

Status downloadAzure(const std::string& uri, const fs::path& destination,
                     const DownloadOptions& options, Downloaded& out) {
  AzureTarget target;
  Status status = parseAzureUri(uri, target);
  if (!status.ok) return status;
  azure::Credential credential;
  status = azure::findCredential(!target.sas.empty(), options.cancel, credential);
  if (!status.ok) return status;
  spdlog::info("azure {}/{}: using {}", target.account, target.container, credential.description);
  AzureClient client(target, credential, options.cancel);

  std::vector<ListedObject> listing;
  std::string marker;
  do {
    std::vector<std::pair<std::string, std::string>> query{
        {"comp", "list"}, {"prefix", target.prefix}, {"restype", "container"}};
    if (!marker.empty()) query.emplace_back("marker", marker);
    HttpRequest request;
    status = client.request("", query, request);
    if (!status.ok) return status;
    HttpResponse response = httpFetch(request);
    if (!response.ok()) {
      return Status::failure("unable to list blobs: " + client.failure(request, response));
    }
    for (const auto& blob : xmlElements(response.body, "Blob")) {
      listing.push_back({xmlFirst(blob, "Name"),
                         std::strtoull(xmlFirst(blob, "Content-Length").c_str(), nullptr, 10),
                         xmlFirst(blob, "Etag")});
    }
    marker = xmlFirst(response.body, "NextMarker");
  } while (!marker.empty());

  std::vector<SelectedObject> selected;
  status = selectObjects(listing, target.prefix, options.patterns, selected);
  if (!status.ok) return status;
  if (selected.empty()) return Status::failure("has no blobs or does not exist");

  ObjectSource source;
  source.request = [&](const SelectedObject& object, const ByteRange* range, HttpRequest& request) {
    return client.request(object.key, {}, request, range);
  };
  source.failure = [&](const HttpRequest& request, const HttpResponse& response) {
    return client.failure(request, response);
  };
  // Upstream keeps up to files x chunks per file (4 x 4) streams open: the same bound here, for
  // files and parts alike, when either is set.
  if (!env("AZURE_MAX_FILE_CONCURRENCY").empty() || !env("AZURE_MAX_CHUNK_CONCURRENCY").empty()) {
    source.connections = std::min(concurrencyFromEnv("AZURE_MAX_FILE_CONCURRENCY", 4) *
                                      concurrencyFromEnv("AZURE_MAX_CHUNK_CONCURRENCY", 4),
                                  kMaxConnections);
  }
  status = fetchObjects(selected, destination, source, options.cancel);
  if (!status.ok) return status;
  for (const auto& object : selected)
    out.files.push_back(object.relative);
  return Status::success();
}

}  // namespace storage
