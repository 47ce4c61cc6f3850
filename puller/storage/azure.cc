// Azure Blob and Azure Files downloads, with the credential chain of azure_credentials.h.
// AZURE_STORAGE_BLOB_ENDPOINT replaces https://<account>.blob.core.windows.net, e.g.
// http://127.0.0.1:10000/devstoreaccount1 for azurite; AZURE_STORAGE_FILE_ENDPOINT replaces
// https://<account>.file.core.windows.net.
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
  return utcNow("%a, %d %b %Y %H:%M:%S GMT");
}

}  // namespace azure

namespace {

enum class Service { Blob, File };

struct AzureTarget {
  Service service = Service::Blob;
  std::string account;
  std::string container;  // or the file share
  std::string prefix;
  std::string sas;   // query string without '?', "" when none
  std::string base;  // scheme://authority[/path] that precedes /<container>
  std::string basePath;
};

Status parseAzureUri(const std::string& uri, Service service, AzureTarget& target) {
  target.service = service;
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
    return Status::failure(
        service == Service::Blob
            ? "expected https://<account>.blob.core.windows.net/<container>/<path>"
            : "expected https://<account>.file.core.windows.net/<share>/<path>",
        true);
  }
  std::string endpoint =
      env(service == Service::Blob ? "AZURE_STORAGE_BLOB_ENDPOINT" : "AZURE_STORAGE_FILE_ENDPOINT");
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

  // The request for a blob or file (or the container or share root when `blob` is empty). A
  // bearer token is taken from the cache for each request, so one that expires during a long
  // download is replaced before it is refused.
  // `range` (a part) goes in x-ms-range, which Shared Key signs with the other x-ms- headers.
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
    // Azure Files takes OAuth tokens only for requests that say they back up (the file SDKs'
    // token intent), with the data-access roles that allow it.
    if (target_.service == Service::File && !credential_.cacheKey.empty()) {
      headers.emplace("x-ms-file-request-intent", "backup");
    }
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

// The bound on upstream's streams, files x chunks per file (4 x 4), when either variable is set;
// the default pool otherwise.
size_t azureConnections() {
  if (env("AZURE_MAX_FILE_CONCURRENCY").empty() && env("AZURE_MAX_CHUNK_CONCURRENCY").empty()) {
    return kFileConcurrency;
  }
  return std::min(concurrencyFromEnv("AZURE_MAX_FILE_CONCURRENCY", 4) *
                      concurrencyFromEnv("AZURE_MAX_CHUNK_CONCURRENCY", 4),
                  kMaxConnections);
}

// Fetches what was selected through the client, on the shared pool.
Status fetchSelected(const AzureClient& client, const std::vector<SelectedObject>& selected,
                     const fs::path& destination, const std::atomic<bool>* cancel,
                     Downloaded& out) {
  ObjectSource source;
  source.request = [&](const SelectedObject& object, const ByteRange* range, HttpRequest& request) {
    return client.request(object.key, {}, request, range);
  };
  source.failure = [&](const HttpRequest& request, const HttpResponse& response) {
    return client.failure(request, response);
  };
  source.connections = azureConnections();
  Status status = fetchObjects(selected, destination, source, cancel);
  if (!status.ok) return status;
  for (const auto& object : selected)
    out.files.push_back(object.relative);
  return Status::success();
}

// Deeper than any model tree; a share whose listing loops cannot walk forever.
constexpr int kMaxFolderDepth = 64;

// Lists the files below `folder` of the share (its path from the share's root, "" for the
// root), folder by folder. `missing` is set when the folder itself does not exist (404).
Status listShareFolder(const AzureClient& client, const std::string& folder, int depth,
                       std::vector<ListedObject>& listing, bool& missing) {
  if (depth > kMaxFolderDepth) {
    return Status::failure("folders nest deeper than " + std::to_string(kMaxFolderDepth) +
                           " levels below " + folder);
  }
  std::string marker;
  do {
    std::vector<std::pair<std::string, std::string>> query{{"comp", "list"},
                                                           {"restype", "directory"}};
    if (!marker.empty()) query.emplace_back("marker", marker);
    HttpRequest request;
    Status status = client.request(folder, query, request);
    if (!status.ok) return status;
    HttpResponse response = httpFetch(request);
    if (response.status == 404 && depth == 0) {
      missing = true;
      return Status::success();
    }
    if (!response.ok()) {
      return Status::failure("unable to list " + (folder.empty() ? "the share" : folder) + ": " +
                             client.failure(request, response));
    }
    std::string prefix = folder.empty() ? "" : folder + "/";
    for (const auto& file : xmlElements(response.body, "File")) {
      listing.push_back({prefix + xmlFirst(file, "Name"),
                         std::strtoull(xmlFirst(file, "Content-Length").c_str(), nullptr, 10),
                         xmlFirst(file, "Etag")});
    }
    for (const auto& directory : xmlElements(response.body, "Directory")) {
      std::string name = xmlFirst(directory, "Name");
      if (name.empty() || name == "." || name == "..") continue;
      bool gone = false;
      status = listShareFolder(client, prefix + name, depth + 1, listing, gone);
      if (!status.ok) return status;
    }
    marker = xmlFirst(response.body, "NextMarker");
  } while (!marker.empty());
  return Status::success();
}

}  // namespace

bool isAzureFileUri(std::string_view uri) {
  if (!uri.starts_with("https://")) return false;
  std::string_view rest = uri.substr(8);
  std::string_view host = rest.substr(0, rest.find_first_of("/?"));
  return host.ends_with(".file.core.windows.net");
}

Status downloadAzureFiles(const std::string& uri, const fs::path& destination,
                          const DownloadOptions& options, Downloaded& out) {
  AzureTarget target;
  Status status = parseAzureUri(uri, Service::File, target);
  if (!status.ok) return status;
  while (!target.prefix.empty() && target.prefix.back() == '/')
    target.prefix.pop_back();
  azure::Credential credential;
  status = azure::findCredential(!target.sas.empty(), options.cancel, credential);
  if (!status.ok) return status;
  spdlog::info("azure files {}/{}: using {}", target.account, target.container,
               credential.description);
  AzureClient client(target, credential, options.cancel);

  std::vector<ListedObject> listing;
  bool missing = false;
  status = listShareFolder(client, target.prefix, 0, listing, missing);
  if (!status.ok) return status;
  if (missing && !target.prefix.empty()) {
    // Not a folder: a file of the share. Its first byte's Content-Range gives its size (an
    // empty file answers 416: nothing to range over).
    HttpRequest request;
    ByteRange first{0, 0};
    status = client.request(target.prefix, {}, request, &first);
    if (!status.ok) return status;
    HttpResponse response = httpFetch(request);
    if (response.status == 404) return Status::failure("has no files or does not exist");
    uint64_t size = 0;
    if (response.status == 206) {
      size_t slash = response.contentRange.rfind('/');
      if (slash != std::string::npos) {
        size = std::strtoull(response.contentRange.c_str() + slash + 1, nullptr, 10);
      }
    } else if (response.status != 416) {
      return Status::failure("unable to read " + target.prefix + ": " +
                             client.failure(request, response));
    }
    listing.push_back({target.prefix, size, response.etag});
  } else if (missing) {
    return Status::failure("the share does not exist");
  }

  std::vector<SelectedObject> selected;
  status = selectObjects(listing, target.prefix, options.patterns, selected);
  if (!status.ok) return status;
  if (selected.empty()) return Status::failure("has no files or does not exist");
  return fetchSelected(client, selected, destination, options.cancel, out);
}

Status downloadAzure(const std::string& uri, const fs::path& destination,
                     const DownloadOptions& options, Downloaded& out) {
  AzureTarget target;
  Status status = parseAzureUri(uri, Service::Blob, target);
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
  return fetchSelected(client, selected, destination, options.cancel, out);
}

}  // namespace storage
