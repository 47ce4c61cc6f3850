// Hugging Face Hub repositories, hf://owner/model[:revision], through the documented Hub API:
// the revision's file list from GET {endpoint}/api/models/{repo}/revision/{revision}
// (siblings[].rfilename, with blobs=true their sizes and blob ids), each file from
// {endpoint}/{repo}/resolve/{sha}/{file}, large ones as ranged parts (fetch.h). The token
// huggingface_hub would use is sent as a bearer token; HF_ENDPOINT replaces huggingface.co.
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "puller/storage/fetch.h"
#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

// The token huggingface_hub sends when none is passed in: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then
// the token file (HF_TOKEN_PATH, else $HF_HOME/token, HF_HOME defaulting to
// ${XDG_CACHE_HOME:-~/.cache}/huggingface), where `huggingface-cli login` writes it and where a
// secret can be mounted. HF_HUB_DISABLE_IMPLICIT_TOKEN sends none. A missing file means no
// token; a file that exists but cannot be read is an error (the pod spec meant it to be used).
Status hubToken(std::string& token, std::string& source) {
  token.clear();
  if (envBool("HF_HUB_DISABLE_IMPLICIT_TOKEN", false)) return Status::success();
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    token = trim(env(name));
    source = name;
    if (!token.empty()) return Status::success();
  }
  std::string path = env("HF_TOKEN_PATH");
  if (path.empty()) {
    std::string home = env("HF_HOME");
    if (home.empty()) {
      std::string cache = env("XDG_CACHE_HOME");
      if (cache.empty()) cache = env("HOME") + "/.cache";
      home = cache + "/huggingface";
    }
    path = home + "/token";
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::success();
  std::optional<std::string> text = readTextFile(path);
  if (!text) {
    return Status::failure(
        "cannot read the Hugging Face token file " + path + ": " + std::strerror(errno), true);
  }
  token = trim(*text);
  source = "the token file " + path;
  return Status::success();
}

}  // namespace

Status downloadHuggingFace(const std::string& uri, const fs::path& destination,
                           const DownloadOptions& options, Downloaded& out) {
  std::string repo;
  std::string revision = "main";
  if (!splitHubRepository(uri, repo, revision)) {
    return Status::failure("expected hf://<owner>/<model>[:<revision>]", true);
  }
  std::string endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/')
    endpoint.pop_back();
  std::string token;
  std::string tokenSource;
  if (Status status = hubToken(token, tokenSource); !status.ok) return status;
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
                                    percentEncode(revision, false) + "?blobs=true");
  HttpResponse response = httpFetch(request);
  if (response.status == 401 || response.status == 403) {
    return Status::failure("access denied to repository " + repo +
                           (token.empty() ? std::string(" (no HF_TOKEN set, no token file)")
                                          : " (check the token from " + tokenSource + ")"));
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
  // With blobs=true the Hub gives each file's size and blob id (the LFS sha256 for large files):
  // the sizes let large files come as ranged parts and be checked, the ids tie a resumed file to
  // its content. A mirror that leaves them out gets one plain GET per file.
  std::vector<SelectedObject> selected;
  bool sized = true;
  for (const auto& sibling : info["siblings"]) {
    if (!sibling.is_object() || !sibling.contains("rfilename") ||
        !sibling["rfilename"].is_string()) {
      continue;
    }
    std::string name = sibling["rfilename"].get<std::string>();
    if (!options.patterns.keeps(name)) continue;
    auto relative = safeRelativePath(name);
    if (!relative) {
      return Status::failure("file \"" + name + "\" would be written outside the destination");
    }
    SelectedObject object{name, *relative};
    if (sibling.contains("size") && sibling["size"].is_number_unsigned()) {
      object.size = sibling["size"].get<uint64_t>();
    } else {
      sized = false;
    }
    const auto& lfs = sibling.contains("lfs") ? sibling["lfs"] : nlohmann::json();
    if (lfs.is_object() && lfs.contains("sha256") && lfs["sha256"].is_string()) {
      object.version = lfs["sha256"].get<std::string>();
    } else if (sibling.contains("blobId") && sibling["blobId"].is_string()) {
      object.version = sibling["blobId"].get<std::string>();
    }
    selected.push_back(std::move(object));
  }
  if (selected.empty()) {
    return Status::failure("repository " + repo +
                           (options.patterns.empty()
                                ? " has no files"
                                : " has no files that the allow/ignore patterns select"));
  }
  auto fileUrl = [&](const SelectedObject& object) {
    return endpoint + "/" + repoPath + "/resolve/" + percentEncode(pinned, false) + "/" +
           percentEncode(object.key, true);
  };

  Status status;
  if (sized) {
    ObjectSource source;
    source.request = [&](const SelectedObject& object, const ByteRange* range,
                         HttpRequest& fileRequest) {
      fileRequest = makeRequest(fileUrl(object));
      // Sent to the CDN the Hub redirects to as well (unlike Authorization).
      if (range != nullptr) fileRequest.headers.push_back("Range: " + range->header());
      return Status::success();
    };
    source.failure = describeFailure;
    status = fetchObjects(selected, destination, source, options.cancel);
  } else {
    status = runParallel(selected.size(), kFileConcurrency, [&](size_t i) {
      fs::path file;
      Status prepared = prepareFile(destination, selected[i].relative, file);
      if (!prepared.ok) return prepared;
      HttpRequest fileRequest = makeRequest(fileUrl(selected[i]));
      HttpResponse fileResponse = httpFetchToFile(fileRequest, file.string());
      if (!fileResponse.ok()) {
        return Status::failure("failed to download " + selected[i].key + ": " +
                               describeFailure(fileRequest, fileResponse));
      }
      return Status::success();
    });
  }
  if (!status.ok) return status;
  for (auto& object : selected)
    out.files.push_back(std::move(object.relative));
  out.mayUnpack = false;
  return Status::success();
}

}  // namespace storage
