// ModelScope repositories, modelscope://owner/model[:revision], through the Hub's REST API as
// the modelscope SDK reads it: the revision's file list from
// GET {endpoint}/api/v1/models/{owner}/{model}/repo/files?Revision=&Recursive=true (Data.Files:
// Path, Type blob or tree, Size, Sha256; asked page by page), each file from
// GET {endpoint}/api/v1/models/{owner}/{model}/repo?Revision=&FilePath= (which redirects to
// object storage), large ones as ranged parts (fetch.h), every file checked against its Sha256.
// MODELSCOPE_DOMAIN names the site (default www.modelscope.cn, over https);
// MODELSCOPE_API_TOKEN is sent as the m_session_id cookie, as the SDK's login cookie is.
#include <nlohmann/json.hpp>

#include <set>

#include "puller/storage/fetch.h"
#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

constexpr size_t kPageSize = 1000;
constexpr size_t kMaxPages = 1000;

}  // namespace

Status downloadModelScope(const std::string& uri, const fs::path& destination,
                          const DownloadOptions& options, Downloaded& out) {
  std::string repo;
  std::string revision = "master";
  if (!splitHubRepository(uri, repo, revision)) {
    return Status::failure("expected modelscope://<owner>/<model>[:<revision>]", true);
  }
  std::string domain = trim(env("MODELSCOPE_DOMAIN"));
  if (domain.empty()) domain = "www.modelscope.cn";
  // A domain that names its scheme (a mirror on plain http) is taken as written.
  std::string endpoint = domain.find("://") == std::string::npos ? "https://" + domain : domain;
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  std::string token = env("MODELSCOPE_API_TOKEN");
  auto makeRequest = [&](const std::string& url) {
    HttpRequest request;
    request.url = url;
    request.cancel = options.cancel;
    request.followRedirects = true;  // files redirect to object storage
    applyDefaultTls(request);
    if (!token.empty()) request.headers.push_back("Cookie: m_session_id=" + token);
    return request;
  };
  std::string base = endpoint + "/api/v1/models/" + percentEncode(repo, true);
  std::string revisionQuery = "Revision=" + percentEncode(revision, false);

  std::vector<SelectedObject> selected;
  std::map<std::string, std::string> sha256;  // relative path -> expected digest
  std::set<std::string> seen;
  for (size_t page = 1;; ++page) {
    HttpRequest request = makeRequest(base + "/repo/files?" + revisionQuery +
                                      "&Recursive=true&PageNumber=" + std::to_string(page) +
                                      "&PageSize=" + std::to_string(kPageSize));
    HttpResponse response = httpFetch(request);
    if (response.status == 401 || response.status == 403) {
      return Status::failure(
          "access denied to repository " + repo +
          (token.empty() ? " (no MODELSCOPE_API_TOKEN set)" : " (check MODELSCOPE_API_TOKEN)"));
    }
    if (response.status == 404) {
      return Status::failure("repository " + repo + " or revision " + revision + " not found");
    }
    if (!response.ok()) {
      return Status::failure("cannot list the repository: " + describeFailure(request, response));
    }
    nlohmann::json answer = nlohmann::json::parse(response.body, nullptr, false);
    if (!answer.is_object() || answer.value("Code", 200) != 200 || !answer.contains("Data") ||
        !answer["Data"].is_object() || !answer["Data"].contains("Files") ||
        !answer["Data"]["Files"].is_array()) {
      std::string message =
          answer.is_object() && answer.contains("Message") && answer["Message"].is_string()
              ? ": " + answer["Message"].get<std::string>()
              : "";
      return Status::failure("ModelScope answered the file list of " + repo +
                             " without Data.Files" + message);
    }
    const nlohmann::json& files = answer["Data"]["Files"];
    size_t added = 0;
    for (const auto& file : files) {
      if (!file.is_object() || !file.contains("Path") || !file["Path"].is_string()) continue;
      std::string name = file["Path"].get<std::string>();
      std::string type = file.value("Type", "");
      if (!seen.insert(type + ":" + name).second) continue;
      ++added;
      if (type != "blob" || !options.patterns.keeps(name)) continue;
      auto relative = safeRelativePath(name);
      if (!relative) {
        return Status::failure("file \"" + name + "\" would be written outside the destination");
      }
      if (!file.contains("Size") || !file["Size"].is_number_unsigned()) {
        return Status::failure("ModelScope listed " + name + " without its size");
      }
      SelectedObject object{name, *relative, file["Size"].get<uint64_t>()};
      if (file.contains("Sha256") && file["Sha256"].is_string()) {
        object.version = file["Sha256"].get<std::string>();
        sha256[relative->generic_string()] = toLower(object.version);
      }
      selected.push_back(std::move(object));
    }
    // Listed until a page brings nothing new: the site may hold fewer per page than asked, and
    // one that ignores paging sends the same list again.
    if (added == 0 || page >= kMaxPages) break;
  }
  if (selected.empty()) {
    return Status::failure("repository " + repo +
                           (options.patterns.empty()
                                ? " has no files"
                                : " has no files that the allow/ignore patterns select"));
  }

  ObjectSource source;
  source.request = [&](const SelectedObject& object, const ByteRange* range,
                       HttpRequest& fileRequest) {
    fileRequest = makeRequest(base + "/repo?" + revisionQuery +
                              "&FilePath=" + percentEncode(object.key, true));
    // Sent on to the object store the site redirects to (unlike a cookie for another host).
    if (range != nullptr) fileRequest.headers.push_back("Range: " + range->header());
    return Status::success();
  };
  source.failure = describeFailure;
  Status status = fetchObjects(selected, destination, source, options.cancel);
  if (!status.ok) return status;
  status = runParallel(selected.size(), kFileConcurrency, [&](size_t i) {
    auto expected = sha256.find(selected[i].relative.generic_string());
    if (expected == sha256.end() || expected->second.empty()) return Status::success();
    std::optional<std::string> actual = sha256FileHex(destination / selected[i].relative);
    if (!actual) return Status::failure("cannot read " + selected[i].key + " to check it");
    if (*actual != expected->second) {
      return Status::failure(selected[i].key + " does not match the Sha256 ModelScope lists (" +
                             expected->second + ", got " + *actual + ")");
    }
    return Status::success();
  });
  if (!status.ok) return status;
  for (auto& object : selected)
    out.files.push_back(std::move(object.relative));
  out.mayUnpack = false;
  return Status::success();
}

}  // namespace storage
