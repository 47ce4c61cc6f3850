// Hugging Face Hub repositories, hf://owner/model[:revision], through the documented Hub API:
// the revision's file list from GET {endpoint}/api/models/{repo}/revision/{revision}
// (siblings[].rfilename), each file from {endpoint}/{repo}/resolve/{sha}/{file}. HF_TOKEN
// (or HUGGING_FACE_HUB_TOKEN) is sent as a bearer token; HF_ENDPOINT replaces huggingface.co.
#include <nlohmann/json.hpp>

#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

Status downloadHuggingFace(const std::string& uri, const fs::path& destination,
                           const DownloadOptions& options, Downloaded& out) {
  std::string repo = uri.substr(5);
  std::string revision = "main";
  size_t colon = repo.find(':');
  if (colon != std::string::npos) {
    revision = repo.substr(colon + 1);
    repo = repo.substr(0, colon);
  }
  size_t slash = repo.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo.size() ||
      repo.find('/', slash + 1) != std::string::npos || revision.empty()) {
    return Status::failure("expected hf://<owner>/<model>[:<revision>]", true);
  }
  std::string endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  std::string token = envFirst({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"});
  auto makeRequest = [&](const std::string& url) {
    HttpRequest request;
    request.url = url;
    request.cancel = options.cancel;
    request.followRedirects = true;  // files redirect to a CDN; curl drops Authorization there
    applyDefaultTls(request);
    if (!token.empty()) request.headers.push_back("Authorization: Bearer " + token);
    return request;
  };

  std::string repoPath = percentEncode(repo, true);
  HttpRequest request = makeRequest(endpoint + "/api/models/" + repoPath + "/revision/" +
                                    percentEncode(revision, false));
  HttpResponse response = httpFetch(request);
  if (response.status == 401 || response.status == 403) {
    return Status::failure("access denied to repository " + repo +
                           (token.empty() ? " (no HF_TOKEN set)" : " (check HF_TOKEN)"));
  }
  if (response.status == 404) {
    return Status::failure("repository " + repo + " or revision " + revision + " not found");
  }
  if (!response.ok()) {
    return Status::failure("cannot list the repository: " + describeFailure(request, response));
  }
  nlohmann::json info = nlohmann::json::parse(response.body, nullptr, false);
  if (!info.is_object() || !info.contains("siblings") || !info["siblings"].is_array()) {
    return Status::failure("the Hub answered without a siblings list");
  }
  std::string pinned =
      info.contains("sha") && info["sha"].is_string() ? info["sha"].get<std::string>() : revision;
  std::vector<std::string> files;
  for (const auto& sibling : info["siblings"]) {
    if (sibling.is_object() && sibling.contains("rfilename") && sibling["rfilename"].is_string()) {
      std::string name = sibling["rfilename"].get<std::string>();
      if (options.patterns.keeps(name)) files.push_back(std::move(name));
    }
  }
  if (files.empty()) {
    return Status::failure("repository " + repo +
                           (options.patterns.empty()
                                ? " has no files"
                                : " has no files that the allow/ignore patterns select"));
  }
  std::vector<fs::path> relatives;
  for (const auto& name : files) {
    auto relative = safeRelativePath(name);
    if (!relative) {
      return Status::failure("file \"" + name + "\" would be written outside the destination");
    }
    relatives.push_back(*relative);
  }

  Status status = runParallel(files.size(), kFileConcurrency, [&](size_t i) {
    fs::path file;
    Status prepared = prepareFile(destination, relatives[i], file);
    if (!prepared.ok) return prepared;
    HttpRequest fileRequest =
        makeRequest(endpoint + "/" + repoPath + "/resolve/" + percentEncode(pinned, false) + "/" +
                    percentEncode(files[i], true));
    HttpResponse fileResponse = httpFetchToFile(fileRequest, file.string());
    if (!fileResponse.ok()) {
      return Status::failure("failed to download " + files[i] + ": " +
                             describeFailure(fileRequest, fileResponse));
    }
    return Status::success();
  });
  if (!status.ok) return status;
  out.files = std::move(relatives);
  out.mayUnpack = false;
  return Status::success();
}

}  // namespace storage
