// Generic http(s) downloads: one GET of the whole URI, headers from the `<host>-headers`
// environment variable (a JSON object), redirects followed. An archive (by Content-Type or by
// file name) is unpacked; anything else is saved under the last segment of the URL path.
// An HTML page where a model file was expected (a repository's web page, a login page, a
// proxy's error page) fails the download instead of being saved as the model.

#include <fstream>

#include "core/http/head.h"
#include "core/http/url.h"
#include "puller/storage/archive.h"
#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

// Whether a downloaded body is a web page: by Content-Type, or by its first bytes, because
// servers answer "application/octet-stream" or nothing at all for pages too. A file that is
// meant to be HTML (the URI names an .html or .htm file) is kept.
bool isUnexpectedHtml(const std::string& contentType, const fs::path& file,
                      const std::string& fileName) {
  std::string name = toLower(fileName);
  if (name.ends_with(".html") || name.ends_with(".htm")) return false;
  std::string type = toLower(contentType);
  if (type.starts_with("text/html") || type.starts_with("application/xhtml")) return true;
  std::ifstream in(file, std::ios::binary);
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.starts_with("\xEF\xBB\xBF")) head.erase(0, 3);
  head = toLower(trim(head));
  return head.starts_with("<!doctype html") || head.starts_with("<html") ||
         (head.starts_with("<?xml") && head.find("<html") != std::string::npos);
}

}  // namespace

Status downloadHttp(const std::string& uri, const fs::path& destination,
                    const DownloadOptions& options, Downloaded& out) {
  std::string problem;
  auto parts = core::splitHttpUrl(uri, &problem);
  if (!parts) return Status::failure(problem + " in the URI", true);
  std::string host(parts->host);  // as Go's url.Hostname(): no port, no IPv6 brackets
  std::string path(parts->target.substr(0, parts->target.find('?')));
  std::string fileName = path.substr(path.rfind('/') + 1);
  auto relative = safeRelativePath(fileName);
  if (!relative) return Status::failure("no file name in the URI path", true);

  HttpRequest request;
  request.url = uri.substr(0, uri.find('#'));
  request.cancel = options.cancel;
  request.followRedirects = true;
  applyDefaultTls(request);
  const std::string headersVariable = host + "-headers";
  std::vector<std::pair<std::string, std::string>> headers;
  if (Status status = hostHeaders(host, headers); !status.ok) return status;
  for (const auto& [name, value] : headers)
    request.headers.push_back(name + ": " + value);

  fs::path file;
  Status status = prepareFile(destination, *relative, file);
  if (!status.ok) return status;
  HttpResponse response = httpFetchToFile(request, file.string());
  if (!response.error.empty()) return Status::failure(response.error);
  if (!response.ok()) {
    std::string text = "returned a " + std::to_string(response.status) + " response code";
    if (response.status == 401 || response.status == 403) {
      text += " (access denied; check the " + headersVariable + " variable)";
    } else if (response.status == 404) {
      text += " (not found)";
    }
    return Status::failure(text);
  }
  if (isUnexpectedHtml(response.contentType, file, fileName)) {
    std::error_code ec;
    fs::remove(file, ec);
    return Status::failure(
        "the server answered with an HTML page, not a model file (a git repository needs a URI "
        "ending in .git; a page that needs a login needs the " +
        headersVariable + " variable)");
  }
  out.files.push_back(*relative);
  out.archiveByContentType = isArchiveContentType(response.contentType);
  return Status::success();
}

}  // namespace storage
