// Azure Blob downloads. Credentials, first match wins: a SAS token in the URL's query; a service
// principal (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET, or their AZ_* aliases) whose
// token comes from the AAD endpoint (AZURE_AUTHORITY_HOST overrides login.microsoftonline.com);
// the account key AZURE_STORAGE_ACCESS_KEY (Shared Key); anonymous. AZURE_STORAGE_BLOB_ENDPOINT
// replaces https://<account>.blob.core.windows.net, e.g. http://127.0.0.1:10000/devstoreaccount1
// for azurite.
#include "puller/storage/azure.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"
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
  std::string clientId = envFirst({"AZURE_CLIENT_ID", "AZ_CLIENT_ID"});
  std::string tenant = envFirst({"AZURE_TENANT_ID", "AZ_TENANT_ID"});
  std::string secret = envFirst({"AZURE_CLIENT_SECRET", "AZ_CLIENT_SECRET"});
  if (tenant.empty() || secret.empty()) {
    return Status::failure(
        "AZURE_CLIENT_ID is set but AZURE_TENANT_ID or AZURE_CLIENT_SECRET is missing");
  }
  std::string authority = env("AZURE_AUTHORITY_HOST");
  if (authority.empty()) authority = "https://login.microsoftonline.com";
  while (!authority.empty() && authority.back() == '/')
    authority.pop_back();
  HttpRequest request;
  request.method = "POST";
  request.url = authority + "/" + percentEncode(tenant, false) + "/oauth2/v2.0/token";
  request.cancel = cancel;
  request.timeout = std::chrono::seconds(60);
  applyDefaultTls(request);
  request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  request.body = formEncode({{"grant_type", "client_credentials"},
                             {"client_id", clientId},
                             {"client_secret", secret},
                             {"scope", "https://storage.azure.com/.default"}});
  HttpResponse response = httpFetch(request);
  if (!response.ok()) {
    return Status::failure("cannot get an Azure AD token: " + describeFailure(request, response));
  }
  nlohmann::json answer = nlohmann::json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("access_token") ||
      !answer["access_token"].is_string()) {
    return Status::failure("the Azure AD token endpoint returned no access_token");
  }
  token = answer["access_token"].get<std::string>();
  return Status::success();
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
  AzureClient(AzureTarget target, std::string bearer, std::string key,
              const std::atomic<bool>* cancel)
      : target_(std::move(target)),
        bearer_(std::move(bearer)),
        key_(std::move(key)),
        cancel_(cancel) {}

  HttpRequest request(const std::string& blob,
                      std::vector<std::pair<std::string, std::string>> query) const {
    std::string path = target_.basePath + "/" + percentEncode(target_.container, false);
    if (!blob.empty()) path += "/" + percentEncode(blob, true);
    std::string queryText = formEncode(query);
    if (!target_.sas.empty()) {
      queryText += (queryText.empty() ? "" : "&") + target_.sas;
      auto sasParams = parseQuery(target_.sas);
      query.insert(query.end(), sasParams.begin(), sasParams.end());
    }
    HttpRequest http;
    http.url = target_.base.substr(0, target_.base.size() - target_.basePath.size()) + path +
               (queryText.empty() ? "" : "?" + queryText);
    http.cancel = cancel_;
    applyDefaultTls(http);
    std::map<std::string, std::string> headers{{"x-ms-date", azure::httpDateNow()},
                                               {"x-ms-version", azure::kApiVersion}};
    for (const auto& [name, value] : headers)
      http.headers.push_back(name + ": " + value);
    if (!target_.sas.empty()) return http;
    if (!bearer_.empty()) {
      http.headers.push_back("Authorization: Bearer " + bearer_);
    } else if (!key_.empty()) {
      http.headers.push_back("Authorization: " + azure::sharedKeyAuthorization(target_.account,
                                                                               key_, "GET", path,
                                                                               query, headers));
    }
    return http;
  }

 private:
  AzureTarget target_;
  std::string bearer_;
  std::string key_;
  const std::atomic<bool>* cancel_;
};

}  // namespace

Status downloadAzure(const std::string& uri, const fs::path& destination,
                     const DownloadOptions& options, Downloaded& out) {
  AzureTarget target;
  Status status = parseAzureUri(uri, target);
  if (!status.ok) return status;
  std::string bearer;
  std::string key;
  if (target.sas.empty()) {
    if (!envFirst({"AZURE_CLIENT_ID", "AZ_CLIENT_ID"}).empty()) {
      status = azure::aadToken(options.cancel, bearer);
      if (!status.ok) return status;
    } else {
      key = env("AZURE_STORAGE_ACCESS_KEY");
      if (!key.empty() && !base64Decode(key)) {
        return Status::failure("AZURE_STORAGE_ACCESS_KEY is not valid base64");
      }
    }
  }
  AzureClient client(target, bearer, key, options.cancel);

  std::vector<ListedObject> listing;
  std::string marker;
  do {
    std::vector<std::pair<std::string, std::string>> query{
        {"comp", "list"}, {"prefix", target.prefix}, {"restype", "container"}};
    if (!marker.empty()) query.emplace_back("marker", marker);
    HttpRequest request = client.request("", query);
    HttpResponse response = httpFetch(request);
    if (!response.ok()) {
      return Status::failure("unable to list blobs: " + azure::errorText(request, response));
    }
    for (const auto& blob : xmlElements(response.body, "Blob")) {
      listing.push_back({xmlFirst(blob, "Name"),
                         std::strtoull(xmlFirst(blob, "Content-Length").c_str(), nullptr, 10)});
    }
    marker = xmlFirst(response.body, "NextMarker");
  } while (!marker.empty());

  std::vector<SelectedObject> selected;
  status = selectObjects(listing, target.prefix, selected);
  if (!status.ok) return status;
  if (selected.empty()) return Status::failure("has no blobs or does not exist");

  status = runParallel(selected.size(), kFileConcurrency, [&](size_t i) {
    fs::path file;
    Status prepared = prepareFile(destination, selected[i].relative, file);
    if (!prepared.ok) return prepared;
    HttpRequest request = client.request(selected[i].key, {});
    HttpResponse response = httpFetchToFile(request, file.string());
    if (!response.ok()) {
      return Status::failure("failed to download " + selected[i].key + ": " +
                             azure::errorText(request, response));
    }
    return checkSize(selected[i], response.bytes);
  });
  if (!status.ok) return status;
  for (const auto& object : selected)
    out.files.push_back(object.relative);
  return Status::success();
}

}  // namespace storage
